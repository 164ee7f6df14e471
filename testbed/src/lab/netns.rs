//! Network namespaces in the iproute2 layout (`/run/netns/NAME`, bind-mounted nsfs files), so
//! `ip netns exec` works on them; threads enter them with `setns`. Also the sweep that removes
//! namespaces and processes left behind by killed runs.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use super::names;
use crate::{Error, Result, sys};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Creates the namespace `name` and returns its path.
pub fn create(name: &str) -> Result<PathBuf> {
    let dir = Path::new(NETNS_DIR);
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {NETNS_DIR}"), e))?;
    // Like `ip netns add`: propagate namespace mounts to other mount namespaces. Failing is
    // harmless for this process, so only log it.
    if let Err(err) = sys::make_shared(dir) {
        debug!(%err, "cannot make {NETNS_DIR} a shared mount");
    }
    let path = dir.join(name);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    let target = path.clone();
    let bound = std::thread::spawn(move || -> std::io::Result<()> {
        // This thread moves to a fresh namespace and pins it with a bind mount; the thread then
        // ends, the namespace lives on in the mount.
        sys::unshare_netns()?;
        sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &target)
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")));
    if let Err(err) = bound {
        let _ = fs::remove_file(&path);
        return Err(Error::io(format!("create namespace {name}"), err));
    }
    Ok(path)
}

/// Removes the namespace at `path` (its veths go with it once no process is left inside).
pub fn remove(path: &Path) {
    if let Err(err) = sys::unmount(path) {
        debug!(%err, path = %path.display(), "unmount namespace");
    }
    if let Err(err) = fs::remove_file(path) {
        warn!(%err, path = %path.display(), "remove namespace file");
    }
}

/// Runs `f` on a new thread that has entered the namespace at `path`, and waits for it.
pub(crate) fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sys::enter_netns(path)
                    .map_err(|e| Error::io(format!("enter {}", path.display()), e))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The inode of a namespace file, which is what `/proc/PID/ns/net` names as `net:[INODE]`.
fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| m.ino())
}

/// Pids of every process whose network namespace is the one at `path`.
pub fn processes_in(path: &Path) -> Vec<u32> {
    let Some(ino) = inode(path) else {
        return Vec::new();
    };
    let wanted = format!("net:[{ino}]");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.as_os_str() == wanted.as_str())
        })
        .collect()
}

/// SIGKILLs every process inside the namespace at `path` except this one.
pub(crate) fn kill_all_in(path: &Path) {
    let me = std::process::id();
    for pid in processes_in(path) {
        if pid != me {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }
}

/// Whether process `pid` exists.
pub(crate) fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and runtime directories of testbed runs whose process is gone, with the
/// processes still running inside them.
pub fn sweep(runtime_root: &Path) {
    if let Ok(entries) = fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = names::owner_pid(&name)
                && !alive(pid)
            {
                debug!(name, "sweeping namespace of a dead run");
                kill_all_in(&entry.path());
                remove(&entry.path());
            }
        }
    }
    if let Ok(entries) = fs::read_dir(runtime_root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = names::owner_pid(&name)
                && !alive(pid)
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}
