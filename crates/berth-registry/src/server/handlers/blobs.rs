//! Blobs: get (with ranges) and delete.

use super::*;

pub(super) async fn get_blob(
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
pub(super) fn parse_byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
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

pub(super) async fn delete_blob(
    shared: &Arc<Shared>,
    name: &str,
    digest: &str,
) -> Result<Response<Body>> {
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
