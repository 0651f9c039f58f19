//! The endpoints of the distribution API.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use crate::pipe::{PipeError, pipe};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use berth_image::Writer;
use berth_model::Digest;
use http_body_util::BodyExt;

use super::auth::{self, Access, Auth};
use super::route::Route;
use super::{ApiError, Scheme, Shared, blocking, finish};
use crate::names::{self, Reference};
use crate::wire::{
    CONTENT_DIGEST, Catalog, ErrorCode, OCI_FILTERS_APPLIED, OCI_SUBJECT, TagList, UPLOAD_UUID,
};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The largest manifest accepted, as distribution limits it.
const MAX_MANIFEST: usize = 4 << 20;
/// How much of a blob one read takes when streaming it out.
const READ_CHUNK: usize = 256 << 10;

/// Every request enters here.
pub(super) async fn dispatch(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let response = match Route::parse(&path) {
        None => ApiError::with_detail(ErrorCode::Unsupported, format!("no endpoint at {path}"))
            .with_status(StatusCode::NOT_FOUND)
            .into_response(),
        Some(route) => match handle(&shared, route, request).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
    };
    finish(response)
}

async fn handle(
    shared: &Arc<Shared>,
    route: Route<'_>,
    request: Request,
) -> Result<Response<Body>> {
    // Only the head is held across awaits: a body is Send but not Sync.
    let (parts, body) = request.into_parts();
    let request = &parts;
    if let Some(name) = route.name()
        && !names::is_valid_name(name)
    {
        return Err(ApiError::with_detail(
            ErrorCode::NameInvalid,
            format!("invalid repository name {name:?}"),
        ));
    }
    let query = parse_query(request.uri.query());
    if route == Route::Token {
        return token(shared, request, &query).await;
    }
    authorize(shared, &route, request, &query).await?;
    let method = request.method.clone();
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        (Route::Catalog, Method::GET) => catalog(shared, &query).await,
        (Route::Tags { name }, Method::GET) => tags(shared, name, &query).await,
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            get_manifest(shared, name, reference, request.method == Method::HEAD).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(shared, name, reference, request, body).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            delete_manifest(shared, name, reference).await
        }
        (Route::Referrers { name, digest }, Method::GET) => {
            referrers(shared, name, digest, &query).await
        }
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            get_blob(shared, name, digest, request).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => delete_blob(shared, name, digest).await,
        (Route::UploadStart { name }, Method::POST) => {
            start_upload(shared, name, &query, body).await
        }
        (Route::Upload { name, uuid }, Method::GET) => upload_status(shared, name, uuid).await,
        (Route::Upload { name, uuid }, Method::PATCH) => {
            patch_upload(shared, name, uuid, request, body).await
        }
        (Route::Upload { name, uuid }, Method::PUT) => {
            finish_upload(shared, name, uuid, &query, request, body).await
        }
        (Route::Upload { name, uuid }, Method::DELETE) => cancel_upload(shared, name, uuid).await,
        (route, method) => Err(ApiError::with_detail(
            ErrorCode::Unsupported,
            format!("{method} is not supported on {route:?}"),
        )
        .with_status(StatusCode::METHOD_NOT_ALLOWED)),
    }
}

// --- auth ----------------------------------------------------------------

/// What `route` needs: `(type, name, action)`.
fn required(route: &Route<'_>, method: &Method, query: &Query) -> Vec<(String, String, String)> {
    let repo =
        |name: &str, action: &str| ("repository".to_owned(), name.to_owned(), action.to_owned());
    match route {
        Route::Base | Route::Token => Vec::new(),
        Route::Catalog => vec![("registry".into(), "catalog".into(), "*".into())],
        _ => {
            let name = route.name().unwrap_or_default();
            let mut needs = match *method {
                Method::GET | Method::HEAD => vec![repo(name, "pull")],
                Method::DELETE => vec![repo(name, "delete")],
                _ => vec![repo(name, "pull"), repo(name, "push")],
            };
            if let Route::UploadStart { .. } = route
                && let Some(from) = query.get("from")
            {
                needs.push(repo(from, "pull"));
            }
            needs
        }
    }
}

async fn authorize(
    shared: &Arc<Shared>,
    route: &Route<'_>,
    request: &Parts,
    query: &Query,
) -> Result<()> {
    let authorization = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match &shared.auth {
        Auth::None => Ok(()),
        Auth::Basic(users) => {
            let users = users.clone();
            let ok = match authorization.as_deref().and_then(auth::parse_basic) {
                Some((user, password)) => {
                    tokio::task::spawn_blocking(move || users.verify(&user, &password))
                        .await
                        .unwrap_or(false)
                }
                None => false,
            };
            if ok {
                Ok(())
            } else {
                Err(ApiError::new(ErrorCode::Unauthorized).header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"berth-registry\""),
                ))
            }
        }
        Auth::Token(issuer) => {
            let needs = required(route, &request.method, query);
            let grants = authorization
                .as_deref()
                .and_then(auth::parse_bearer)
                .and_then(|t| issuer.check(t));
            let allowed = grants.as_ref().is_some_and(|grants| {
                needs
                    .iter()
                    .all(|(k, n, a)| grants.iter().any(|g| g.allows(k, n, a)))
            });
            if allowed {
                return Ok(());
            }
            let realm = format!(
                "{}://{}{}",
                scheme(request),
                host(request),
                super::route::TOKEN_PATH
            );
            let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{}\"", auth::SERVICE);
            let mut scopes: Vec<String> = Vec::new();
            for (kind, name, action) in &needs {
                match scopes
                    .iter_mut()
                    .find(|s| s.starts_with(&format!("{kind}:{name}:")))
                {
                    Some(s) => {
                        s.push(',');
                        s.push_str(action);
                    }
                    None => scopes.push(format!("{kind}:{name}:{action}")),
                }
            }
            if !scopes.is_empty() {
                challenge.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
            }
            // A token that lacks a scope gets the challenge again, marked
            // as distribution's token auth does, so the client can fetch a
            // wider token (or tell its user to log in).
            if grants.is_some() {
                challenge.push_str(",error=\"insufficient_scope\"");
            }
            let error = ApiError::new(ErrorCode::Unauthorized);
            Err(match HeaderValue::from_str(&challenge) {
                Ok(v) => error.header(header::WWW_AUTHENTICATE, v),
                Err(_) => error,
            })
        }
    }
}

fn host(request: &Parts) -> String {
    request
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into())
}

fn scheme(request: &Parts) -> &'static str {
    if request.uri.scheme_str() == Some("https") || request.version == axum::http::Version::HTTP_2 {
        "https"
    } else {
        // Plain connections carry no scheme in their request line; a TLS
        // listener is told apart by the extension the server adds.
        match request.extensions.get::<Scheme>() {
            Some(Scheme::Https) => "https",
            _ => "http",
        }
    }
}

/// `GET /token?service=..&scope=..`: a bearer token for the caller.
async fn token(shared: &Arc<Shared>, request: &Parts, query: &Query) -> Result<Response<Body>> {
    let Auth::Token(issuer) = &shared.auth else {
        return Err(ApiError::with_detail(
            ErrorCode::Unsupported,
            "this registry issues no tokens",
        ));
    };
    let subject = match request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse_basic)
    {
        Some((user, password)) => {
            let users = issuer.users().clone();
            let check_user = user.clone();
            let ok = tokio::task::spawn_blocking(move || users.verify(&check_user, &password))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::with_detail(
                    ErrorCode::Unauthorized,
                    "incorrect username or password",
                )
                .header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"berth-registry\""),
                ));
            }
            Some(user)
        }
        None => None,
    };
    let requested: Vec<Access> = query
        .all("scope")
        .flat_map(|s| s.split(' '))
        .filter_map(Access::parse_scope)
        .collect();
    let token = issuer.issue(subject.as_deref(), &requested);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": auth::TOKEN_LIFETIME.as_secs(),
        "issued_at": berth_model::time::now_rfc3339_nanos(),
    });
    Ok(json(StatusCode::OK, &body))
}

// --- listing ---------------------------------------------------------------

/// `n` and `last` of a paginated listing: the page after `last`, at most
/// `n` long, and whether more follow.
fn paginate(all: Vec<String>, query: &Query) -> Result<(Vec<String>, Option<String>)> {
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

fn link_next(path: &str, n: Option<&str>, last: &str) -> Option<HeaderValue> {
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "<{path}?{n}last={}>; rel=\"next\"",
        crate::wire::percent_encode(last)
    ))
    .ok()
}

async fn catalog(shared: &Arc<Shared>, query: &Query) -> Result<Response<Body>> {
    let storage = shared.storage.clone();
    let all = blocking(move || storage.catalog()).await?;
    let (page, next) = paginate(all, query)?;
    let mut response = json(StatusCode::OK, &Catalog { repositories: page });
    if let Some(link) = next.and_then(|last| link_next("/v2/_catalog", query.get("n"), &last)) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

async fn tags(shared: &Arc<Shared>, name: &str, query: &Query) -> Result<Response<Body>> {
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

async fn referrers(
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

// --- manifests -------------------------------------------------------------

fn parse_reference(reference: &str) -> Result<Reference> {
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
fn existing_reference(name: &str, reference: &str) -> Result<Reference> {
    Reference::parse(reference).ok_or_else(|| {
        ApiError::with_detail(
            ErrorCode::ManifestUnknown,
            format!("manifest {reference:?} not found in {name}"),
        )
    })
}

fn parse_digest(digest: &str) -> Result<Digest> {
    digest.parse().map_err(|e| {
        ApiError::with_detail(
            ErrorCode::DigestInvalid,
            format!("invalid digest {digest:?}: {e}"),
        )
    })
}

async fn get_manifest(
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

async fn put_manifest(
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

async fn delete_manifest(
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

// --- blobs -----------------------------------------------------------------

async fn get_blob(
    shared: &Arc<Shared>,
    name: &str,
    digest: &str,
    request: &Parts,
) -> Result<Response<Body>> {
    let digest = parse_digest(digest)?;
    let storage = shared.storage.clone();
    let repo = name.to_owned();
    let wanted = digest.clone();
    let opened = blocking(move || {
        let Some(size) = storage.blob(&repo, &wanted)? else {
            return Ok(None);
        };
        let file = storage.content().read(&wanted).map_err(ApiError::content)?;
        Ok(Some((size, file)))
    })
    .await?;
    let Some((size, mut file)) = opened else {
        return Err(ApiError::with_detail(
            ErrorCode::BlobUnknown,
            format!("blob {digest} not found in {name}"),
        ));
    };
    let head = request.method == Method::HEAD;
    let range = request
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_byte_range(r, size));
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(None) => {
            return Err(ApiError::new(ErrorCode::RangeInvalid).header(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}"))?,
            ));
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(CONTENT_DIGEST, digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    let body = if head || len == 0 {
        Body::empty()
    } else {
        if start > 0 {
            file.seek(SeekFrom::Start(start)).map_err(ApiError::io)?;
        }
        let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), len);
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file, READ_CHUNK,
        ))
    };
    builder
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The inclusive range a `Range: bytes=a-b` header asks for, clamped to
/// `size`; `None` when it cannot be satisfied.
fn parse_byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && start < size).then_some((start, end))
}

async fn delete_blob(shared: &Arc<Shared>, name: &str, digest: &str) -> Result<Response<Body>> {
    let digest = parse_digest(digest)?;
    let wanted = digest.clone();
    if shared
        .in_repo(name, move |s, repo| s.unlink_blob(repo, &wanted))
        .await?
    {
        Ok(empty(
            StatusCode::ACCEPTED,
            [(
                header::HeaderName::from_static(CONTENT_DIGEST),
                header_value(&digest.to_string())?,
            )],
        ))
    } else {
        Err(ApiError::with_detail(
            ErrorCode::BlobUnknown,
            format!("blob {digest} not found in {name}"),
        ))
    }
}

// --- uploads ---------------------------------------------------------------

fn upload_location(name: &str, uuid: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{uuid}")
}

/// The `Range` header of an upload holding `offset` bytes.
fn upload_range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn upload_response(
    status: StatusCode,
    name: &str,
    uuid: &str,
    offset: u64,
) -> Result<Response<Body>> {
    Ok(empty(
        status,
        [
            (
                header::LOCATION,
                header_value(&upload_location(name, uuid))?,
            ),
            (header::RANGE, header_value(&upload_range(offset))?),
            (
                header::HeaderName::from_static(UPLOAD_UUID),
                header_value(uuid)?,
            ),
        ],
    ))
}

fn blob_created(name: &str, digest: &Digest) -> Result<Response<Body>> {
    Ok(empty(
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&format!("/v2/{name}/blobs/{digest}"))?,
            ),
            (
                header::HeaderName::from_static(CONTENT_DIGEST),
                header_value(&digest.to_string())?,
            ),
        ],
    ))
}

async fn start_upload(
    shared: &Arc<Shared>,
    name: &str,
    query: &Query,
    body: Body,
) -> Result<Response<Body>> {
    // Cross-repository mount: link a blob another repository holds. A
    // mount without `from` (automatic content discovery) links any blob the
    // registry holds, but only where every client may read every
    // repository, or it would leak blobs across token scopes.
    let mount = match (query.get("mount"), query.get("from")) {
        (Some(mount), Some(from)) => Some((mount, Some(from.to_owned()))),
        (Some(mount), None) if !matches!(shared.auth, Auth::Token(_)) => Some((mount, None)),
        _ => None,
    };
    if let Some((mount, from)) = mount {
        let digest = parse_digest(mount)?;
        if from.as_deref().is_none_or(names::is_valid_name) {
            let wanted = digest.clone();
            let mounted = shared
                .in_repo(name, move |s, repo| {
                    let present = match &from {
                        Some(from) => s.blob(from, &wanted)?.is_some(),
                        None => s
                            .content()
                            .info(&wanted)
                            .map_err(ApiError::content)?
                            .is_some(),
                    };
                    if present {
                        s.link_blob(repo, &wanted)?;
                    }
                    Ok(present)
                })
                .await?;
            if mounted {
                return blob_created(name, &digest);
            }
        }
        // Not mountable: a plain upload session instead.
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let id = uuid.clone();
    shared
        .in_repo(name, move |s, repo| s.start_upload(repo, &id))
        .await?;

    // Monolithic upload: the whole blob in the POST.
    if let Some(digest) = query.get("digest") {
        let digest = parse_digest(digest)?;
        let writer = shared.take_writer(&uuid).await?;
        let (writer, received) = pipe_body(writer, body).await;
        received?;
        return commit_upload(shared, name, &uuid, writer, digest).await;
    }
    upload_response(StatusCode::ACCEPTED, name, &uuid, 0)
}

async fn require_upload(shared: &Arc<Shared>, name: &str, uuid: &str) -> Result<()> {
    let id = uuid.to_owned();
    if shared
        .in_repo(name, move |s, repo| Ok(s.upload_exists(repo, &id)))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::with_detail(
            ErrorCode::BlobUploadUnknown,
            format!("upload {uuid} not found in {name}"),
        ))
    }
}

async fn upload_status(shared: &Arc<Shared>, name: &str, uuid: &str) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    let writer = shared.take_writer(uuid).await?;
    let offset = writer.offset();
    shared.put_writer(uuid, writer);
    upload_response(StatusCode::NO_CONTENT, name, uuid, offset)
}

/// The start offset a chunk's `Content-Range` names (`a-b`, or `bytes a-b/*`).
fn chunk_start(headers: &HeaderMap) -> Result<Option<(u64, Option<u64>)>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let spec = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or("");
    let parsed = spec
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok())));
    match parsed {
        Some(range) => Ok(Some(range)),
        None => Err(ApiError::with_detail(
            ErrorCode::RangeInvalid,
            format!("invalid Content-Range {text:?}"),
        )),
    }
}

async fn patch_upload(
    shared: &Arc<Shared>,
    name: &str,
    uuid: &str,
    request: &Parts,
    body: Body,
) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    let range = chunk_start(&request.headers)?;
    let writer = shared.take_writer(uuid).await?;
    let offset = writer.offset();
    if let Some((start, _)) = range
        && start != offset
    {
        shared.put_writer(uuid, writer);
        return Err(ApiError::with_detail(
            ErrorCode::RangeInvalid,
            format!("the upload holds {offset} bytes; a chunk must start there, not at {start}"),
        )
        .header(
            header::LOCATION,
            header_value(&upload_location(name, uuid))?,
        )
        .header(header::RANGE, header_value(&upload_range(offset))?));
    }
    let (writer, received) = pipe_body(writer, body).await;
    let offset = writer.offset();
    shared.put_writer(uuid, writer);
    received?;
    upload_response(StatusCode::ACCEPTED, name, uuid, offset)
}

async fn finish_upload(
    shared: &Arc<Shared>,
    name: &str,
    uuid: &str,
    query: &Query,
    request: &Parts,
    body: Body,
) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    let Some(digest) = query.get("digest") else {
        return Err(ApiError::with_detail(
            ErrorCode::DigestInvalid,
            "finishing an upload needs ?digest=",
        ));
    };
    let digest = parse_digest(digest)?;
    let range = chunk_start(&request.headers)?;
    let writer = shared.take_writer(uuid).await?;
    if let Some((start, _)) = range
        && start != writer.offset()
    {
        let offset = writer.offset();
        shared.put_writer(uuid, writer);
        return Err(ApiError::new(ErrorCode::RangeInvalid)
            .header(header::RANGE, header_value(&upload_range(offset))?));
    }
    let (writer, received) = pipe_body(writer, body).await;
    if let Err(e) = received {
        shared.put_writer(uuid, writer);
        return Err(e);
    }
    commit_upload(shared, name, uuid, writer, digest).await
}

/// Verifies and publishes the upload's data as `digest`, links it into the
/// repository and ends the session, whatever the outcome.
async fn commit_upload(
    shared: &Arc<Shared>,
    name: &str,
    uuid: &str,
    writer: Writer,
    digest: Digest,
) -> Result<Response<Body>> {
    let storage = shared.storage.clone();
    let (repo, id, wanted) = (name.to_owned(), uuid.to_owned(), digest.clone());
    blocking(move || {
        let size = writer.offset();
        let committed = writer
            .commit(Some((wanted.clone(), size)))
            .map_err(ApiError::content);
        let ended = storage.end_upload(&repo, &id);
        committed?;
        ended?;
        storage.link_blob(&repo, &wanted)
    })
    .await?;
    blob_created(name, &digest)
}

async fn cancel_upload(shared: &Arc<Shared>, name: &str, uuid: &str) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    shared.drop_writer(uuid);
    let id = uuid.to_owned();
    shared
        .in_repo(name, move |s, repo| s.end_upload(repo, &id))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT, []))
}

/// Streams `body` into `writer`; see [`crate::pipe::pipe`].
async fn pipe_body(writer: Writer, body: Body) -> (Writer, Result<()>) {
    let (writer, result) = pipe(writer, body.into_data_stream(), None, &|_| {}).await;
    let result = result.map_err(|e| match e {
        PipeError::Write(e) => ApiError::io(e),
        e => ApiError::with_detail(ErrorCode::BlobUploadInvalid, e.to_string()),
    });
    (writer, result)
}

// --- helpers -----------------------------------------------------------------

/// Reads a body of at most `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) => Err(ApiError::with_detail(
            ErrorCode::ManifestInvalid,
            format!("the manifest could not be read (at most {limit} bytes): {e}"),
        )),
    }
}

fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|e| ApiError::internal(format!("header value {s:?}: {e}")))
}

fn empty<const N: usize>(
    status: StatusCode,
    headers: [(header::HeaderName, HeaderValue); N],
) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("responses serialise");
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A query string's parameters, percent-decoded; a key may repeat.
#[derive(Debug, Default)]
pub(super) struct Query(HashMap<String, Vec<String>>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }
}

fn parse_query(query: Option<&str>) -> Query {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(urldecode(k)).or_default().push(urldecode(v));
    }
    Query(map)
}

fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_byte_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_byte_range("bytes=100-", 100), None);
        assert_eq!(parse_byte_range("bytes=5-1", 100), None);
        assert_eq!(parse_byte_range("items=0-1", 100), None);
    }

    #[test]
    fn queries_decode() {
        let q = parse_query(Some("scope=repository%3Aa%2Fb%3Apull&scope=x&n=10&last="));
        assert_eq!(
            q.all("scope").collect::<Vec<_>>(),
            ["repository:a/b:pull", "x"]
        );
        assert_eq!(q.get("n"), Some("10"));
        assert_eq!(q.get("last"), Some(""));
        assert_eq!(urldecode("a%2"), "a%2");
    }

    #[test]
    fn pages_follow_last_and_n() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = parse_query(Some("n=2"));
        assert_eq!(
            paginate(all.clone(), &q).unwrap(),
            (vec!["a".into(), "b".into()], Some("b".into()))
        );
        let q = parse_query(Some("n=2&last=b"));
        assert_eq!(
            paginate(all.clone(), &q).unwrap(),
            (vec!["c".into(), "d".into()], None)
        );
        let q = parse_query(Some("n=0"));
        assert_eq!(paginate(all, &q).unwrap(), (vec![], None));
    }
}
