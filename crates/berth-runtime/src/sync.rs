//! The channel between the runtime process and the processes it forks.
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries, so each message is
//! one JSON datagram and no framing is needed. Both ends are close-on-exec:
//! nothing of it reaches the container's process.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One message on the channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// Parent to child: carry on (the cgroup is joined, ids are mapped, hooks
    /// ran).
    Go,
    /// First child to parent: the user namespace exists, write its id maps.
    MapIds,
    /// First child to parent: the host pid of the container process.
    Pid {
        /// Host pid.
        pid: i32,
    },
    /// Container process to parent: namespaces and mounts are ready, run
    /// the prestart and createRuntime hooks now.
    Hooks,
    /// Parent to container process: hooks ran; here is the state they got,
    /// for the createContainer and startContainer hooks.
    HooksDone {
        /// The OCI state JSON.
        state: String,
    },
    /// Container process to parent: everything is set up; waiting for start.
    Ready,
    /// Child to parent: setting up failed.
    Error {
        /// One line saying what went wrong.
        message: String,
    },
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair: (parent's end, child's end).
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(Error::sys("socketpair"))?;
        Ok((Channel(a), Channel(b)))
    }

    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).expect("message serialises");
        nix::unistd::write(&self.0, &data).map_err(Error::sys("write to sync channel"))?;
        Ok(())
    }

    /// Receives one message; `None` when the other end closed.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 1 << 16];
        let n = loop {
            match nix::unistd::read(&self.0, &mut buf) {
                Err(nix::Error::EINTR) => continue,
                r => break r.map_err(Error::sys("read from sync channel"))?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("garbled message from container process: {e}")))
    }

    /// Receives a message the protocol requires, turning `Error` messages and
    /// a closed channel into errors.
    pub fn expect(&self, what: &str) -> Result<Msg> {
        match self.recv()? {
            Some(Msg::Error { message }) => Err(Error::Init(message)),
            Some(m) => Ok(m),
            None => Err(Error::Init(format!(
                "container process exited before {what}"
            ))),
        }
    }

    /// The raw descriptor.
    pub fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }
}
