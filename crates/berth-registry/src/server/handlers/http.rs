//! Small HTTP helpers: bodies, headers, query strings.

use super::*;

/// Reads a body of at most `limit` bytes.
pub(super) async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) => Err(ApiError::with_detail(
            ErrorCode::ManifestInvalid,
            format!("the manifest could not be read (at most {limit} bytes): {e}"),
        )),
    }
}

pub(super) fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|e| ApiError::internal(format!("header value {s:?}: {e}")))
}

pub(super) fn empty<const N: usize>(
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

pub(super) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
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
pub(crate) struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    pub(super) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }
}

pub(super) fn parse_query(query: Option<&str>) -> Query {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(urldecode(k)).or_default().push(urldecode(v));
    }
    Query(map)
}

pub(super) fn urldecode(s: &str) -> String {
    crate::wire::percent_decode(s)
}
