use std::io;

/// Everything that can go wrong while making or using a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `unshare(CLONE_NEWNET)` was refused.
    #[error(
        "cannot create a network namespace (unshare(CLONE_NEWNET): {0}): run as root, or as a user allowed to create user namespaces"
    )]
    Unshare(#[source] nix::Error),
    /// `setns()` into a namespace of ours was refused.
    #[error("cannot enter network namespace (setns: {0})")]
    Setns(#[source] nix::Error),
    /// Neither root nor a user namespace is available.
    #[error(
        "not root, and no user namespace could be made ({what}: {source}): run as root, or allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1)"
    )]
    NoPrivileges {
        /// The step that failed.
        what: &'static str,
        /// The errno it failed with.
        #[source]
        source: io::Error,
    },
    /// A file under `/proc` could not be read or written.
    #[error("{what} {path}: {source}")]
    Proc {
        /// The operation ("read", "write", "open").
        what: &'static str,
        /// The file it was about.
        path: String,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The tokio runtime that drives rtnetlink could not start.
    #[error("cannot start the netlink runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A netlink request failed.
    #[error("netlink: {what}: {source}")]
    Netlink {
        /// What was asked of the kernel.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link named in a request does not exist.
    #[error("no link named {0:?} in the namespace")]
    NoSuchLink(String),
    /// A thread running code inside a namespace panicked.
    #[error("a thread running inside the namespace panicked: {0}")]
    Panicked(String),
}
