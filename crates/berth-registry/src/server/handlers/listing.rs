//! Listings: the catalog, tags and referrers, paginated.

use super::*;

/// `n` and `last` of a paginated listing: the page after `last`, at most
/// `n` long, and whether more follow.
pub(super) fn paginate(all: Vec<String>, query: &Query) -> Result<(Vec<String>, Option<String>)> {
    let n = match query.get("n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::with_detail(ErrorCode::PaginationNumberInvalid, format!("invalid n={n}"))
        })?),
        None => None,
    };
    let after: Vec<String> = match query.get("last") {
        Some(last) => all.into_iter().filter(|t| t.as_str() > last).collect(),
        None => all,
    };
    match n {
        Some(n) if after.len() > n => {
            let page: Vec<String> = after.into_iter().take(n).collect();
            let next = page.last().cloned();
            Ok((page, next.filter(|_| n > 0)))
        }
        _ => Ok((after, None)),
    }
}

pub(super) fn link_next(path: &str, n: Option<&str>, last: &str) -> Option<HeaderValue> {
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "<{path}?{n}last={}>; rel=\"next\"",
        crate::wire::percent_encode(last)
    ))
    .ok()
}

pub(super) async fn catalog(shared: &Arc<Shared>, query: &Query) -> Result<Response<Body>> {
    let storage = shared.storage.clone();
    let all = blocking(move || storage.catalog()).await?;
    let (page, next) = paginate(all, query)?;
    let mut response = json(StatusCode::OK, &Catalog { repositories: page });
    if let Some(link) = next.and_then(|last| link_next("/v2/_catalog", query.get("n"), &last)) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

pub(super) async fn tags(
    shared: &Arc<Shared>,
    name: &str,
    query: &Query,
) -> Result<Response<Body>> {
    let Some(all) = shared.in_repo(name, |s, repo| s.tags(repo)).await? else {
        return Err(ApiError::with_detail(
            ErrorCode::NameUnknown,
            format!("repository {name} not found"),
        ));
    };
    let (page, next) = paginate(all, query)?;
    let mut response = json(
        StatusCode::OK,
        &TagList {
            name: name.to_owned(),
            tags: page,
        },
    );
    let path = format!("/v2/{name}/tags/list");
    if let Some(link) = next.and_then(|last| link_next(&path, query.get("n"), &last)) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

pub(super) async fn referrers(
    shared: &Arc<Shared>,
    name: &str,
    digest: &str,
    query: &Query,
) -> Result<Response<Body>> {
    let subject = parse_digest(digest)?;
    let mut manifests = shared
        .in_repo(name, move |s, repo| s.referrers(repo, &subject))
        .await?;
    let filter = query.get("artifactType");
    if let Some(wanted) = filter {
        manifests.retain(|d| d.artifact_type.as_deref() == Some(wanted));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": berth_image::manifest::media_types::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json(StatusCode::OK, &index);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(berth_image::manifest::media_types::OCI_INDEX),
    );
    if filter.is_some() {
        response.headers_mut().insert(
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}
