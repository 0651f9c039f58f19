//! The endpoints of the distribution API: dispatch and access control
//! here, the endpoints by kind in the submodules.

mod blobs;
mod http;
mod listing;
mod manifests;
mod uploads;

#[cfg(test)]
mod tests;

use blobs::*;
use http::*;
use listing::*;
use manifests::*;
use uploads::*;

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
                // An upload's status is part of pushing it.
                Method::GET if matches!(route, Route::Upload { .. }) => {
                    vec![repo(name, "pull"), repo(name, "push")]
                }
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
                Some((user, password)) => shared.verify(users, user, password).await,
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
            let realm = issuer.realm.clone().unwrap_or_else(|| {
                format!(
                    "{}://{}{}",
                    scheme(request),
                    host(request),
                    super::route::TOKEN_PATH
                )
            });
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
            let ok = shared
                .verify(issuer.users().clone(), user.clone(), password)
                .await;
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
