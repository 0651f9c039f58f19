//! The client against a registry that misbehaves on purpose: a blob
//! download cut off half way resumes with `Range` where it stopped, and a
//! registry that sends other bytes than the digest names is refused.

use std::sync::{Arc, Mutex};

use berth_image::{ContentStore, Descriptor};
use berth_registry::client::{Client, ClientError, ClientOptions, CredentialStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-blob registry over raw TCP: the first GET of the blob sends half
/// of it and hangs up; later ones honour `Range`. Returns its address and
/// the request heads it saw.
async fn flaky_registry(blob: Vec<u8>, digest: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut blob_requests = 0;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            // A TLS hello (the client probing for HTTPS): hang up, as a
            // plain HTTP server would refuse it.
            if conn.peek(&mut byte).await.is_ok() && byte[0] == 0x16 {
                continue;
            }
            while !head.ends_with(b"\r\n\r\n") {
                if conn.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            log.lock().unwrap().push(head.clone());
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            if path == "/v2/" {
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
                continue;
            }
            if path != format!("/v2/repo/blobs/{digest}") {
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            blob_requests += 1;
            let range_start = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(str::to_owned)
                })
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            if blob_requests == 1 {
                let half = blob.len() / 2;
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            blob.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = conn.write_all(&blob[..half]).await;
                continue; // hang up mid-body
            }
            let start = range_start.unwrap_or(0);
            let rest = &blob[start..];
            let status = if start > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let _ = conn
                .write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
                        rest.len(),
                        blob.len() - 1,
                        blob.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = conn.write_all(rest).await;
        }
    });
    (addr, seen)
}

fn client(dir: &std::path::Path) -> Client {
    Client::new(ClientOptions {
        credentials: CredentialStore::at(dir.join("config.json")),
        certs_dirs: Vec::new(),
        ..ClientOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_resumes_where_it_stopped() {
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = berth_image::sha256_of(&blob);
    let (addr, seen) = flaky_registry(blob.clone(), digest.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let repo = client(dir.path()).repo(&addr, "repo").unwrap();
    let descriptor = Descriptor::new(
        "application/octet-stream",
        digest.clone(),
        blob.len() as u64,
    );
    repo.fetch_blob(&descriptor, &store, &|_| {}).await.unwrap();
    let mut stored = Vec::new();
    std::io::Read::read_to_end(&mut store.read(&digest).unwrap(), &mut stored).unwrap();
    assert!(stored == blob, "the resumed blob differs");
    let heads = seen.lock().unwrap().clone();
    let blob_heads: Vec<&String> = heads.iter().filter(|h| h.contains("/blobs/")).collect();
    assert_eq!(blob_heads.len(), 2, "{heads:?}");
    assert!(!blob_heads[0].to_ascii_lowercase().contains("range:"));
    let resumed_at = blob_heads[1]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("range: bytes=")
                .map(str::to_owned)
        })
        .expect("the second request asks for a range");
    let start: usize = resumed_at.trim_end_matches('-').parse().unwrap();
    assert!(start > 0 && start <= blob.len() / 2, "resumed at {start}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_does_not_match_its_digest_is_refused() {
    let blob = b"what the registry sends".to_vec();
    let claimed = berth_image::sha256_of(b"what was asked for, same size!!");
    let (addr, _) = flaky_registry(blob.clone(), claimed.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let repo = client(dir.path()).repo(&addr, "repo").unwrap();
    let descriptor = Descriptor::new(
        "application/octet-stream",
        claimed.clone(),
        blob.len() as u64,
    );
    let err = repo
        .fetch_blob(&descriptor, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::DigestMismatch { .. }), "{err}");
    assert!(
        store.info(&claimed).unwrap().is_none(),
        "nothing was stored"
    );
}
