//! Blob uploads: monolithic, chunked and streamed, and mounts.

use super::*;
use crate::server::storage::Storage;

pub(super) fn upload_location(name: &str, uuid: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{uuid}")
}

/// The `Range` header of an upload holding `offset` bytes.
pub(super) fn upload_range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

pub(super) fn upload_response(
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

pub(super) fn blob_created(name: &str, digest: &Digest) -> Result<Response<Body>> {
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

pub(super) async fn start_upload(
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

pub(super) async fn require_upload(shared: &Arc<Shared>, name: &str, uuid: &str) -> Result<()> {
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

pub(super) async fn upload_status(
    shared: &Arc<Shared>,
    name: &str,
    uuid: &str,
) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    let writer = shared.take_writer(uuid).await?;
    let offset = writer.offset();
    shared.put_writer(uuid, writer);
    upload_response(StatusCode::NO_CONTENT, name, uuid, offset)
}

/// The start offset a chunk's `Content-Range` names (`a-b`, or `bytes a-b/*`).
pub(super) fn chunk_start(headers: &HeaderMap) -> Result<Option<(u64, Option<u64>)>> {
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

pub(super) async fn patch_upload(
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

pub(super) async fn finish_upload(
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
pub(super) async fn commit_upload(
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
        // Uploads hash as sha256 while data arrives; another algorithm
        // needs the data hashed again with it.
        let writer = if wanted.algorithm() == berth_model::DigestAlgorithm::Sha256 {
            writer
        } else {
            drop(writer);
            storage
                .content()
                .writer(&Storage::ingest_ref(&id), Some((wanted.clone(), size)))
                .map_err(ApiError::content)?
        };
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

pub(super) async fn cancel_upload(
    shared: &Arc<Shared>,
    name: &str,
    uuid: &str,
) -> Result<Response<Body>> {
    require_upload(shared, name, uuid).await?;
    shared.drop_writer(uuid);
    let id = uuid.to_owned();
    shared
        .in_repo(name, move |s, repo| s.end_upload(repo, &id))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT, []))
}

/// Streams `body` into `writer`; see [`crate::pipe::pipe`].
pub(super) async fn pipe_body(writer: Writer, body: Body) -> (Writer, Result<()>) {
    let (writer, result) = pipe(writer, body.into_data_stream(), None, &|_| {}).await;
    let result = result.map_err(|e| match e {
        PipeError::Write(e) => ApiError::io(e),
        e => ApiError::with_detail(ErrorCode::BlobUploadInvalid, e.to_string()),
    });
    (writer, result)
}
