//! Terminals: a pty made inside the container, its master handed over a
//! unix socket as runc does (so containerd and conmon can hold it), its
//! slave becoming the process's stdio and controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::error::{Error, Result};

/// Connects to the `--console-socket` path (done on the host side, before
/// the container's namespaces hide the path).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(Error::io("connect to console socket", path))?;
    Ok(OwnedFd::from(s))
}

/// Opens a new pty in the current mount namespace's /dev/ptmx.
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open("/dev/ptmx")
        .map_err(Error::io("open", "/dev/ptmx"))?;
    let m = master.as_raw_fd();
    // SAFETY: ioctls on a pty master we own.
    unsafe {
        let unlock: libc::c_int = 0;
        if libc::ioctl(m, libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(Error::io("unlock pty", "/dev/ptmx")(
                std::io::Error::last_os_error(),
            ));
        }
        // TIOCGPTPEER opens the slave without a path lookup a container
        // could have tampered with.
        let s = libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if s < 0 {
            return Err(Error::io("open pty slave", "/dev/ptmx")(
                std::io::Error::last_os_error(),
            ));
        }
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(s, libc::TIOCSWINSZ, &ws);
        }
        Ok((OwnedFd::from(master), OwnedFd::from_raw_fd(s)))
    }
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
    }
}

/// Sends `fd` over the connected unix socket `sock`, with the pty's name as
/// the payload, as runc's console socket protocol has it.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<()> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(Error::sys("send pty master over console socket"))?;
    Ok(())
}

/// Receives a descriptor sent with [`send_fd`].
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(Error::sys("receive pty master"))?;
    for c in msg.cmsgs().map_err(Error::sys("read control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(Error::Init(
        "console socket message carried no descriptor".into(),
    ))
}

/// Makes `slave` the calling process's stdio and controlling terminal (the
/// caller must be a session leader).
pub fn become_tty(slave: &OwnedFd) -> Result<()> {
    let s = slave.as_raw_fd();
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(s, target) } < 0 {
            return Err(Error::io("dup pty onto stdio", "/dev/pts")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    // SAFETY: ioctl on our own stdin.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::io("set controlling terminal", "/dev/pts")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
