//! The few system calls rtnetlink does not wrap: entering, creating and removing network
//! namespaces, and signalling processes. Nothing here knows about labs.
#![allow(
    unsafe_code,
    reason = "setns, unshare, mount and kill have no safe std wrapper"
)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Moves the calling thread into the network namespace bound at `path`.
pub(crate) fn enter_netns(path: &Path) -> io::Result<()> {
    enter_netns_fd(&File::open(path)?)
}

/// Moves the calling thread into the network namespace `file` refers to.
pub(crate) fn enter_netns_fd(file: &File) -> io::Result<()> {
    // SAFETY: setns only reads the fd, which stays open for the call.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })
}

/// Moves the calling thread into a fresh network namespace.
pub(crate) fn unshare_netns() -> io::Result<()> {
    // SAFETY: no pointers; affects only the calling thread's namespace.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })
}

/// `mount --bind source target`.
pub(crate) fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    let (source, target) = (c_path(source)?, c_path(target)?);
    // SAFETY: both strings are valid NUL-terminated paths for the duration of the call.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
}

/// Makes `dir` a shared mount point (binding it onto itself first if it is not a mount point),
/// as `ip netns add` does so namespace mounts propagate to other mount namespaces.
pub(crate) fn make_shared(dir: &Path) -> io::Result<()> {
    let c_dir = c_path(dir)?;
    let none = c"none";
    let shared = |c_dir: &CString| {
        // SAFETY: valid NUL-terminated strings; null data is allowed for propagation changes.
        check(unsafe {
            libc::mount(
                none.as_ptr(),
                c_dir.as_ptr(),
                std::ptr::null(),
                libc::MS_SHARED | libc::MS_REC,
                std::ptr::null(),
            )
        })
    };
    match shared(&c_dir) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above; a recursive bind of the directory onto itself.
            check(unsafe {
                libc::mount(
                    c_dir.as_ptr(),
                    c_dir.as_ptr(),
                    none.as_ptr(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                )
            })?;
            shared(&c_dir)
        }
        Err(err) => Err(err),
    }
}

/// Lazily unmounts `target` (`umount -l`).
pub(crate) fn unmount(target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
}

/// Sends `signal` to `pid`.
pub(crate) fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::kill(pid, signal) })
}
