//! What the shim does to its host side: the container's loopback, and
//! its own memory.

/// Brings `lo` up in the network namespace of `pid`, when it has one of
/// its own (a new namespace's loopback starts down).
pub(super) fn loopback_up(pid: i32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let theirs = format!("/proc/{pid}/ns/net");
    let ino = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    match (ino(&theirs), ino("/proc/self/ns/net")) {
        (Ok(a), Ok(b)) if a != b => {}
        _ => return Ok(()),
    }
    let ours =
        std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("open our netns: {e}"))?;
    let target = std::fs::File::open(&theirs).map_err(|e| format!("open {theirs}: {e}"))?;
    nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("enter the container's network namespace: {e}"))?;
    let result = (|| {
        // SAFETY: a datagram socket for interface ioctls, closed below.
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if sock < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: ifreq is plain data; the name fits.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS with a valid ifreq.
        let r = unsafe {
            if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
                -1
            } else {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                libc::ioctl(sock, libc::SIOCSIFFLAGS, &req)
            }
        };
        let err = std::io::Error::last_os_error();
        // SAFETY: closing the socket made above.
        unsafe { libc::close(sock) };
        if r < 0 {
            return Err(format!("bring lo up: {err}"));
        }
        Ok(())
    })();
    nix::sched::setns(&ours, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("return to the shim's network namespace: {e}"))?;
    result
}

/// Unmaps from this process the pages of its read-only file mappings
/// (the binary's code and constants, touched while creating and starting
/// the container or serving an exec, and mostly not again): they stay in
/// the page cache, shared with every other berth process, and the few the
/// loop needs fault back in. What a shim then holds is what its loop
/// uses. Writable mappings are left alone: dropping their pages would lose
/// their contents.
pub(super) fn shed_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    // Each mapping: a header line, then `Key: value kB` lines.
    let mut candidate: Option<(usize, usize)> = None;
    let flush = |c: &mut Option<(usize, usize)>| {
        if let Some((start, end)) = c.take() {
            // SAFETY: a whole read-only, file-backed mapping of this process
            // with no private copies of its pages: MADV_DONTNEED only drops
            // pages the kernel reloads from the file on the next access.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            flush(&mut candidate);
            let perms = fields.next().unwrap_or("");
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or("");
            // File-backed and never writable; not [vdso] and the like.
            if inode != "0" && !perms.contains('w') && path.starts_with('/') {
                candidate = Some((start, end));
            }
        } else if first == "Anonymous:" && fields.next() != Some("0") {
            // Pages written once (relocations, then made read-only): their
            // contents are not the file's. Leave the mapping be.
            candidate = None;
        }
    }
    flush(&mut candidate);
}

/// Runs `f` in a forked child of the (single-threaded) shim and returns
/// what it returned; the child's pages, and the code it touched, are its
/// own and go with it.
pub(super) fn in_child(f: impl FnOnce() -> Result<i32, String>) -> Result<i32, String> {
    use std::io::{BufRead, Write};
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the shim is single-threaded, so the child may run Rust code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            // A panic must not unwind into the shim's loop in this child.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("the exec helper panicked".into()));
            let mut answer = serde_json::to_vec(&result).expect("answers serialise");
            answer.push(b'\n');
            let _ = std::fs::File::from(w).write_all(&answer);
            // SAFETY: ends the child without unwinding into the shim's loop.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            // One line, not end of file: the helper's children hold the
            // pipe until they execute.
            let mut answer = String::new();
            let read = std::io::BufReader::new(std::fs::File::from(r)).read_line(&mut answer);
            while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
            read.map_err(|e| format!("read the helper's answer: {e}"))?;
            serde_json::from_str(answer.trim_end())
                .unwrap_or_else(|_| Err("the shim's helper died before it answered".into()))
        }
    }
}
