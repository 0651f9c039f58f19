//! Streaming bytes into a content-store writer on a blocking thread, so
//! hashing and disk writes overlap with the network. The server uses it for
//! uploads, the client for downloads.

use std::fmt::Display;
use std::io::Write;

use berth_image::Writer;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// How a piped stream ended badly.
#[derive(Debug)]
pub enum PipeError {
    /// The stream broke off (network error), with its message.
    Stream(String),
    /// Writing to the ingest failed.
    Write(std::io::Error),
    /// More than the allowed number of bytes arrived.
    TooLong(u64),
}

impl Display for PipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipeError::Stream(e) => write!(f, "the transfer broke off: {e}"),
            PipeError::Write(e) => write!(f, "write: {e}"),
            PipeError::TooLong(limit) => write!(f, "more than the expected {limit} bytes arrived"),
        }
    }
}

/// Writes every chunk of `stream` to `writer` until it ends, fails, or more
/// than `limit` bytes have come from it. `progress` sees how many bytes
/// came so far. Returns the writer, holding whatever arrived
/// even on error, so a retry can resume from [`Writer::offset`].
pub async fn pipe<S, E>(
    writer: Writer,
    stream: S,
    limit: Option<u64>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> (Writer, Result<(), PipeError>)
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    pipe_tee(writer, stream, limit, progress, &mut None).await
}

/// [`pipe`], also sending every chunk to `tee` while it takes them; a tee
/// that goes away is dropped (set to `None`) and the transfer goes on.
pub async fn pipe_tee<S, E>(
    writer: Writer,
    stream: S,
    limit: Option<u64>,
    progress: &(dyn Fn(u64) + Send + Sync),
    tee: &mut Option<mpsc::Sender<Bytes>>,
) -> (Writer, Result<(), PipeError>)
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Display,
{
    let (tx, mut rx) = mpsc::channel::<Bytes>(32);
    let sink = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut result = Ok(());
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = writer.write_all(&chunk) {
                result = Err(PipeError::Write(e));
                break;
            }
        }
        (writer, result)
    });
    let mut received = Ok(());
    let mut offset = 0u64;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                offset += chunk.len() as u64;
                if limit.is_some_and(|limit| offset > limit) {
                    received = Err(PipeError::TooLong(limit.unwrap_or_default()));
                    break;
                }
                if let Some(t) = tee.as_ref()
                    && t.send(chunk.clone()).await.is_err()
                {
                    *tee = None;
                }
                if tx.send(chunk).await.is_err() {
                    break;
                }
                progress(offset);
            }
            Err(e) => {
                received = Err(PipeError::Stream(e.to_string()));
                break;
            }
        }
    }
    drop(tx);
    let (writer, written) = sink.await.expect("the writer thread does not panic");
    (writer, received.and(written))
}
