//! Getting the right to make network namespaces.

use std::fs;
use std::io;

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getegid, geteuid};

use crate::Error;

/// How this process is allowed to create network namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privileges {
    /// The process runs as root.
    Root,
    /// The process moved itself into a new user namespace in which it is
    /// root; its network namespaces belong to that user namespace.
    UserNamespace,
}

/// Makes sure this process may create network namespaces.
///
/// As root this does nothing. Otherwise the process enters a new user
/// namespace mapping its own uid and gid to root. That is only possible
/// while the process has a single thread, so call this first thing in
/// `main`.
pub fn ensure_privileges() -> Result<Privileges, Error> {
    if geteuid().is_root() {
        return Ok(Privileges::Root);
    }
    let (uid, gid) = (geteuid(), getegid());
    if thread_count() != Some(1) {
        return Err(Error::NoPrivileges {
            what: "unshare(CLONE_NEWUSER)",
            source: io::Error::other("the process already has several threads"),
        });
    }
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| Error::NoPrivileges {
        what: "unshare(CLONE_NEWUSER)",
        source: e.into(),
    })?;
    let write = |what: &'static str, value: String| {
        fs::write(what, value).map_err(|source| Error::NoPrivileges { what, source })
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(Privileges::UserNamespace)
}

fn thread_count() -> Option<usize> {
    fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}
