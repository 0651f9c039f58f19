//! The container's output: to attached clients and to the log.

use std::os::fd::AsRawFd;

use super::stdio::read_fd;
use super::{MAX_CLIENT_BACKLOG, Role, Shim};
use crate::logfile::MAX_LINE;
use crate::protocol::{frame_header, stream};

impl Shim<'_> {
    /// Reads the output `i`; false once it has ended.
    pub(super) fn read_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let fd = self.outputs[i].fd.as_raw_fd();
        let stream = self.outputs[i].stream;
        let n = match read_fd(fd, buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            // EIO: the pty's last slave is closed.
            Err(_) => return false,
        };
        let data = &buf[..n];
        if let Some(key) = self.outputs[i].owner {
            if let Some(c) = self
                .clients
                .iter_mut()
                .find(|c| c.role == Role::Exec { key })
            {
                c.output.extend_from_slice(&frame_header(stream, n));
                c.output.extend_from_slice(data);
            }
            self.clients
                .retain(|c| c.output.len() <= MAX_CLIENT_BACKLOG);
            return true;
        }
        let tty = self.config.tty;
        for c in &mut self.clients {
            if let Role::Attached { stdout, stderr, .. } = c.role {
                let wanted = if stream == stream::STDERR {
                    stderr
                } else {
                    stdout
                };
                if !wanted {
                    continue;
                }
                if !tty {
                    c.output.extend_from_slice(&frame_header(stream, n));
                }
                c.output.extend_from_slice(data);
            }
        }
        // A client too far behind is cut off rather than let the shim grow.
        self.clients
            .retain(|c| c.output.len() <= MAX_CLIENT_BACKLOG);
        self.log_output(i, data);
        true
    }

    fn log_output(&mut self, i: usize, data: &[u8]) {
        let Some(log) = &mut self.log else { return };
        let out = &mut self.outputs[i];
        if out.owner.is_some() {
            return;
        }
        let name = if out.stream == stream::STDERR {
            "stderr"
        } else {
            "stdout"
        };
        out.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = out.pending[start..].iter().position(|&b| b == b'\n') {
            let _ = log.write(name, &out.pending[start..start + nl + 1]);
            start += nl + 1;
        }
        while out.pending.len() - start >= MAX_LINE {
            let _ = log.write(name, &out.pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        out.pending.drain(..start);
    }

    pub(super) fn flush_pending(&mut self, i: usize) {
        let out = &mut self.outputs[i];
        if out.pending.is_empty() || out.owner.is_some() {
            return;
        }
        let name = if out.stream == stream::STDERR {
            "stderr"
        } else {
            "stdout"
        };
        if let Some(log) = &mut self.log {
            let _ = log.write(name, &out.pending);
        }
        out.pending.clear();
    }
}
