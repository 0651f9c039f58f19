//! Manifests: get, put, delete.

use super::*;

pub(super) fn parse_reference(reference: &str) -> Result<Reference> {
    Reference::parse(reference).ok_or_else(|| {
        let code = if reference.contains(':') {
            ErrorCode::DigestInvalid
        } else {
            ErrorCode::TagInvalid
        };
        ApiError::with_detail(code, format!("invalid reference {reference:?}"))
    })
}

/// `reference` when it is well-formed; a malformed one cannot name a stored
/// manifest, so it is unknown rather than invalid.
pub(super) fn existing_reference(name: &str, reference: &str) -> Result<Reference> {
    Reference::parse(reference).ok_or_else(|| {
        ApiError::with_detail(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference:?} not found in {name}"),
        )
    })
}

pub(super) fn parse_digest(digest: &str) -> Result<Digest> {
    digest.parse().map_err(|e| {
        ApiError::with_detail(
            ErrorCode::DigestInvalid,
            format!("invalid digest {digest:?}: {e}"),
        )
    })
}

pub(super) async fn get_manifest(
    shared: &Arc<Shared>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response<Body>> {
    // A reference that cannot name a manifest names none: 404, not 400.
    let reference = existing_reference(name, reference)?;
    let wanted = reference.clone();
    let Some(stored) = shared
        .in_repo(name, move |s, repo| s.manifest(repo, &wanted))
        .await?
    else {
        return Err(ApiError::with_detail(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} not found in {name}"),
        ));
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &stored.media_type)
        .header(header::CONTENT_LENGTH, stored.bytes.len())
        .header(CONTENT_DIGEST, stored.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", stored.digest))
        .body(if head {
            Body::empty()
        } else {
            Body::from(stored.bytes)
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if head {
        // Keep Content-Length: a HEAD answers with what a GET would send.
        response.headers_mut().remove(header::TRANSFER_ENCODING);
    }
    Ok(response)
}

pub(super) async fn put_manifest(
    shared: &Arc<Shared>,
    name: &str,
    reference: &str,
    request: &Parts,
    body: Body,
) -> Result<Response<Body>> {
    let reference = parse_reference(reference)?;
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(body, MAX_MANIFEST).await?;
    let storage = shared.storage.clone();
    let repo = name.to_owned();
    let put =
        blocking(move || storage.put_manifest(&repo, &reference, content_type.as_deref(), &bytes))
            .await?;
    let mut response = empty(
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&format!("/v2/{name}/manifests/{}", put.digest))?,
            ),
            (
                header::HeaderName::from_static(CONTENT_DIGEST),
                header_value(&put.digest.to_string())?,
            ),
        ],
    );
    if let Some(subject) = put.subject {
        response
            .headers_mut()
            .insert(OCI_SUBJECT, header_value(&subject.to_string())?);
    }
    Ok(response)
}

pub(super) async fn delete_manifest(
    shared: &Arc<Shared>,
    name: &str,
    reference: &str,
) -> Result<Response<Body>> {
    let reference = existing_reference(name, reference)?;
    let wanted = reference.clone();
    if shared
        .in_repo(name, move |s, repo| s.delete_manifest(repo, &wanted))
        .await?
    {
        Ok(empty(StatusCode::ACCEPTED, []))
    } else {
        Err(ApiError::with_detail(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference} not found in {name}"),
        ))
    }
}
