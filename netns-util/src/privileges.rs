//! Getting the right to make network namespaces.

use std::fs;
use std::io;

use nix::errno::Errno;
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
///
/// Only a refusal (EPERM or EACCES) is [`Error::NoPrivileges`]; any
/// other failure (a user namespace limit reached, a process that already
/// has threads) is [`Error::UserNamespace`], a failure of the harness.
pub fn ensure_privileges() -> Result<Privileges, Error> {
    if geteuid().is_root() {
        return Ok(Privileges::Root);
    }
    let (uid, gid) = (geteuid(), getegid());
    if let Some(threads) = thread_count().filter(|&threads| threads > 1) {
        return Err(Error::Threaded(threads));
    }
    unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|errno| classify("unshare(CLONE_NEWUSER)", errno.into()))?;
    let write = |what: &'static str, value: String| {
        fs::write(what, value).map_err(|source| classify(what, source))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(Privileges::UserNamespace)
}

/// Whether `errno`, from a step of making a namespace, is the kernel
/// refusing the caller the privilege: EPERM (no capability, a chroot,
/// Debian's `kernel.unprivileged_userns_clone=0`, a map the caller may not
/// write) or EACCES (a security module's denial, as AppArmor's
/// restriction of unprivileged user namespaces). Every other errno means
/// something is broken or exhausted, not forbidden.
pub(crate) fn denies_privilege(errno: Errno) -> bool {
    matches!(errno, Errno::EPERM | Errno::EACCES)
}

/// The error for step `what` of entering a user namespace failing with
/// `source`: a lack of privileges, or a failure of the harness.
fn classify(what: &'static str, source: io::Error) -> Error {
    let errno = Errno::from_raw(source.raw_os_error().unwrap_or(0));
    if denies_privilege(errno) {
        Error::NoPrivileges { what, source }
    } else {
        Error::UserNamespace { what, source }
    }
}

fn thread_count() -> Option<usize> {
    fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno as i32)
    }

    #[test]
    fn only_a_refusal_is_a_lack_of_privileges() {
        for errno in [Errno::EPERM, Errno::EACCES] {
            let error = classify("unshare(CLONE_NEWUSER)", os_error(errno));
            assert!(error.is_no_privileges(), "{errno}: {error:?}");
        }
        for errno in [Errno::ENOSPC, Errno::EUSERS, Errno::EINVAL, Errno::ENOMEM] {
            let error = classify("unshare(CLONE_NEWUSER)", os_error(errno));
            assert!(
                matches!(
                    error,
                    Error::UserNamespace {
                        what: "unshare(CLONE_NEWUSER)",
                        ..
                    }
                ),
                "{errno}: {error:?}"
            );
        }
    }

    #[test]
    fn a_map_write_is_classified_by_its_errno_too() {
        let error = classify("/proc/self/uid_map", os_error(Errno::EPERM));
        assert!(error.is_no_privileges(), "{error:?}");
        let error = classify("/proc/self/uid_map", os_error(Errno::EINVAL));
        assert!(!error.is_no_privileges(), "{error:?}");
    }

    #[test]
    fn a_user_namespace_failure_names_the_call_and_what_to_check() {
        let error = classify("unshare(CLONE_NEWUSER)", os_error(Errno::ENOSPC));
        assert_eq!(
            crate::error_chain(&error),
            "cannot make a user namespace to create network namespaces in: \
             unshare(CLONE_NEWUSER) failed: ENOSPC means the limit user.max_user_namespaces \
             (of this user namespace or one above it) is reached, or user namespaces nest \
             32 deep: raise the limit where it is reached, or run as root: \
             No space left on device (os error 28)"
        );
    }
}
