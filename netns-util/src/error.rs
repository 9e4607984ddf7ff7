use std::io;

/// Everything that can go wrong while making or using a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `unshare(CLONE_NEWNET)` failed for a reason other than missing
    /// privileges (those are [`Error::NoPrivileges`]): ENOSPC when
    /// `user.max_net_namespaces` is reached, ENOMEM, EINVAL without
    /// CONFIG_NET_NS.
    #[error(
        "cannot create a network namespace with unshare(CLONE_NEWNET): check the limit user.max_net_namespaces and that the kernel has CONFIG_NET_NS"
    )]
    Unshare(#[source] nix::Error),
    /// `setns()` into a namespace of ours was refused.
    #[error("cannot enter a network namespace with setns()")]
    Setns(#[source] nix::Error),
    /// The process lacks the privilege to make network namespaces: not
    /// root and the kernel refused it a user namespace (EPERM or EACCES),
    /// or refused `unshare(CLONE_NEWNET)` itself (no CAP_SYS_ADMIN). The
    /// one error that means "cannot run here" rather than "something
    /// broke".
    #[error(
        "no privilege to create network namespaces ({what} failed): run as root, or allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1 on Debian, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu, not in a chroot)"
    )]
    NoPrivileges {
        /// The step that failed.
        what: &'static str,
        /// The errno it failed with (EPERM or EACCES).
        #[source]
        source: io::Error,
    },
    /// Entering a user namespace of our own failed for a reason other than
    /// privileges: ENOSPC when `user.max_user_namespaces` is reached,
    /// EINVAL without CONFIG_USER_NS, a `uid_map` write the kernel
    /// rejected. A failure of the harness, never a skip.
    #[error("{}", user_namespace_failure(what, source))]
    UserNamespace {
        /// The step that failed (`unshare(CLONE_NEWUSER)`, `/proc/self/uid_map`).
        what: &'static str,
        /// The errno it failed with.
        #[source]
        source: io::Error,
    },
    /// A user namespace was asked for by a process that already has
    /// several threads, which `unshare(CLONE_NEWUSER)` refuses.
    #[error(
        "cannot make a user namespace: the process already has {0} threads and unshare(CLONE_NEWUSER) needs it to have one: call ensure_privileges before any thread starts"
    )]
    Threaded(usize),
    /// A file under `/proc` could not be read or written.
    #[error("{what} {path}")]
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
    #[error("cannot start the netlink runtime")]
    Runtime(#[source] io::Error),
    /// The kernel refused a netlink request (or the request never reached it).
    #[error("{}", kernel_answer(what, source, extack.as_deref()))]
    Netlink {
        /// What was asked of the kernel, naming the object
        /// (`add rule v4 dport 40000-40999 lookup 100 priority 10`).
        what: String,
        /// The kernel's answer, as rtnetlink reported it.
        #[source]
        source: rtnetlink::Error,
        /// The kernel's extended acknowledgement text, when it sent one
        /// (`"Invalid dest port range"`).
        extack: Option<String>,
    },
    /// A blocking netlink socket failed before the kernel could answer, or
    /// its answer did not parse.
    #[error("netlink: {what}")]
    NetlinkSocket {
        /// The request concerned.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A request was malformed before it reached the kernel (a prefix that
    /// does not parse, an IPv6 gateway for an IPv4 rule, ...).
    #[error("{what}: {reason}")]
    InvalidRequest {
        /// The request or value concerned.
        what: String,
        /// Why it cannot be sent.
        reason: String,
    },
    /// A link did not become operational in time.
    #[error("link {name:?} did not become operational (IFF_RUNNING) within {waited:?}")]
    NotRunning {
        /// The link.
        name: String,
        /// How long it was waited for.
        waited: std::time::Duration,
    },
    /// A link named in a request does not exist.
    #[error("no link named {0:?} in the namespace")]
    NoSuchLink(String),
    /// A thread running code inside a namespace panicked.
    #[error("a thread running inside the namespace panicked: {0}")]
    Panicked(String),
}

impl Error {
    /// Whether this is a lack of privileges ([`Error::NoPrivileges`]), the
    /// only setup failure that may turn into a skip.
    pub fn is_no_privileges(&self) -> bool {
        matches!(self, Error::NoPrivileges { .. })
    }

    /// The error for a thread that panicked, from its panic payload.
    pub fn panicked(payload: Box<dyn std::any::Any + Send>) -> Error {
        Error::Panicked(crate::panic::panic_text(&*payload))
    }

    /// The errno the kernel answered with, if this is a netlink refusal
    /// (`Some(libc::EEXIST)` for a rule that already exists).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink {
                source: rtnetlink::Error::NetlinkError(message),
                ..
            } => Some(-message.raw_code()),
            Error::NoSuchLink(_) => Some(nix::errno::Errno::ENODEV as i32),
            _ => None,
        }
    }
}

/// `error` and its causes on one line, `: `-separated (as anyhow's `{:#}`
/// prints them), for code that keeps an error as text: messages here
/// describe their own layer only and leave the cause to the source chain.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(&format!(": {error}"));
        cause = error.source();
    }
    text
}

/// What went wrong entering a user namespace, with what to do about the
/// errnos whose cause is known.
fn user_namespace_failure(what: &str, source: &io::Error) -> String {
    let errno = nix::errno::Errno::from_raw(source.raw_os_error().unwrap_or(0));
    let advice = match errno {
        nix::errno::Errno::ENOSPC => {
            "ENOSPC means the limit user.max_user_namespaces (of this user namespace or one \
             above it) is reached, or user namespaces nest 32 deep: raise the limit where it is \
             reached, or run as root"
        }
        nix::errno::Errno::EINVAL if what.starts_with("unshare") => {
            "EINVAL means a kernel without CONFIG_USER_NS: run as root"
        }
        _ => "run as root to need no user namespace",
    };
    format!("cannot make a user namespace to create network namespaces in: {what} failed: {advice}")
}

/// "netlink: add rule ...: the kernel answered EINVAL (Invalid dest port
/// range)" for a kernel refusal (the errno's name, which rtnetlink's text
/// in the source chain does not give, and the extended acknowledgement);
/// "netlink: add rule ..." otherwise, the source chain saying what failed.
fn kernel_answer(what: &str, source: &rtnetlink::Error, extack: Option<&str>) -> String {
    let mut text = format!("netlink: {what}");
    if let rtnetlink::Error::NetlinkError(message) = source {
        let errno = nix::errno::Errno::from_raw(-message.raw_code());
        text.push_str(&format!(": the kernel answered {errno:?}"));
    }
    if let Some(extack) = extack {
        text.push_str(&format!(" ({extack})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_each_cause_once() {
        let error = Error::Proc {
            what: "write",
            path: "/proc/sys/net/ipv4/ip_local_port_range".into(),
            source: io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32),
        };
        assert_eq!(
            error_chain(&error),
            "write /proc/sys/net/ipv4/ip_local_port_range: Permission denied (os error 13)"
        );
        let error = Error::Unshare(nix::errno::Errno::ENOSPC);
        assert_eq!(
            error_chain(&error),
            "cannot create a network namespace with unshare(CLONE_NEWNET): check the limit \
             user.max_net_namespaces and that the kernel has CONFIG_NET_NS: ENOSPC: No space left on device"
        );
    }
}
