//! A container's stdio in the daemon: the pump from the shim into the
//! broadcast channel, and attach sessions of API clients.

use std::sync::Arc;

use berth_shim::protocol::{frame_header, stream};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

use super::{Container, END_OF_OUTPUT};

/// Copies the shim's output into `tx` until the shim closes it, then
/// sends [`END_OF_OUTPUT`].
pub async fn pump(mut from: impl AsyncRead + Unpin, tty: bool, tx: broadcast::Sender<(u8, Bytes)>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if tty {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = tx.send((stream::STDOUT, Bytes::copy_from_slice(&buf[..n])));
                }
            }
        } else {
            let Some((s, data)) = read_frame(&mut from).await else {
                break;
            };
            let _ = tx.send((s, Bytes::from(data)));
        }
    }
    let _ = tx.send((END_OF_OUTPUT, Bytes::new()));
}

/// Reads one multiplexed frame: its stream and data (none at the end).
pub async fn read_frame(from: &mut (impl AsyncRead + Unpin)) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 8];
    from.read_exact(&mut header).await.ok()?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut data = vec![0u8; len];
    from.read_exact(&mut data).await.ok()?;
    Some((header[0], data))
}

/// The response that upgrades an attach or exec to the raw stream.
pub fn upgraded_response(tty: bool) -> axum::http::Response<axum::body::Body> {
    use axum::http::{HeaderValue, StatusCode, header};
    let mut r = axum::http::Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Parses Docker's detach keys (`ctrl-p,ctrl-q`, `a`, `ctrl-@`).
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for k in keys.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("invalid detach key {k:?}")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("invalid detach key {k:?}"));
        }
    }
    Ok(out)
}

/// Finds the detach sequence in a client's input, across reads.
pub struct DetachScanner {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachScanner {
    /// A scanner for `keys` (none: never detaches).
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner {
            keys,
            held: Vec::new(),
        }
    }

    /// The bytes of `input` to forward, and whether the sequence was typed.
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.append(&mut self.held);
                if b == self.keys[0] {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// What an attach session wants.
pub struct AttachOptions {
    /// Forward the client's input.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// The detach sequence.
    pub detach_keys: Vec<u8>,
}

/// Runs an attach session over `io` until the output ends, the client
/// detaches, or it goes.
pub async fn session(
    io: impl AsyncRead + AsyncWrite + Send + 'static,
    c: Arc<Container>,
    mut rx: broadcast::Receiver<(u8, Bytes)>,
    opts: AttachOptions,
) {
    let (tty, stdin_once) = {
        let r = c.record();
        (r.config.tty, r.config.stdin_once)
    };
    let (mut r, mut w) = tokio::io::split(io);
    let mut reading = opts.stdin;
    let mut scanner = DetachScanner::new(opts.detach_keys);
    let mut buf = vec![0u8; 32 * 1024];
    let mut changes = c.watch();
    loop {
        // Input waits until the container runs with its stdin connected
        // (an attach comes before the start).
        let stdin_ready = reading && c.running();
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok((END_OF_OUTPUT, _)) | Err(broadcast::error::RecvError::Closed) => break,
                Ok((s, data)) => {
                    let wanted = if s == stream::STDERR { opts.stderr } else { opts.stdout };
                    if !wanted {
                        continue;
                    }
                    let written = if tty {
                        w.write_all(&data).await
                    } else {
                        match w.write_all(&frame_header(s, data.len())).await {
                            Ok(()) => w.write_all(&data).await,
                            Err(e) => Err(e),
                        }
                    };
                    if written.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
            },
            n = r.read(&mut buf), if stdin_ready => match n {
                Ok(0) | Err(_) => {
                    reading = false;
                    // As Docker: a terminal's input is never closed by a
                    // client going (the CLI detaches by closing its side).
                    if stdin_once && !tty {
                        c.close_stdin().await;
                    }
                }
                Ok(n) => {
                    let (data, detach) = scanner.scan(&buf[..n]);
                    if !data.is_empty() {
                        c.write_stdin(&data).await;
                    }
                    if detach {
                        let _ = w.shutdown().await;
                        return;
                    }
                }
            },
            changed = changes.changed() => {
                if changed.is_err() || c.removed() {
                    break;
                }
            }
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_across_reads() {
        let keys = parse_detach_keys("ctrl-p,ctrl-q").unwrap();
        assert_eq!(keys, vec![16, 17]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        let mut s = DetachScanner::new(keys.clone());
        assert_eq!(s.scan(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.scan(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.scan(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(s.scan(b"\x11rest"), (Vec::new(), true));
        let mut s = DetachScanner::new(keys);
        assert_eq!(s.scan(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}
