use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;

use nix::sched::{CloneFlags, setns, unshare};

use crate::Error;
use crate::loopback;
use crate::netlink::Netlink;
use crate::snapshot::Snapshot;
use crate::sysctl;

/// A network namespace created by this process, alive while this value is.
///
/// The namespace has only a loopback device, down, and the kernel's default
/// sysctls. Dropping the value closes the last reference this process holds;
/// sockets still open inside keep the kernel object alive until they close.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
}

impl Netns {
    /// Creates a fresh network namespace.
    ///
    /// The namespace is made on a short-lived thread so that no thread of
    /// the caller ever leaves the namespace it runs in.
    pub fn new() -> Result<Self, Error> {
        thread::spawn(Self::unshare_current_thread)
            .join()
            .map_err(Error::panicked)?
    }

    /// Moves the calling thread into a fresh network namespace for the rest
    /// of its life and returns that namespace.
    ///
    /// Meant for threads dedicated to one namespace (a test case's thread):
    /// it saves the thread [`Netns::new`] starts and the `setns()` into it.
    pub fn unshare_current_thread() -> Result<Self, Error> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| match e {
            nix::Error::EPERM => Error::NoPrivileges {
                what: "unshare(CLONE_NEWNET)",
                source: e.into(),
            },
            other => Error::Unshare(other),
        })?;
        let path = "/proc/thread-self/ns/net";
        let file = File::open(path).map_err(|source| Error::Proc {
            what: "open",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            fd: OwnedFd::from(file),
        })
    }

    /// Moves the calling thread into this namespace for the rest of its life.
    ///
    /// Meant for threads dedicated to one namespace (a test case's thread);
    /// use [`Netns::run`] for anything else.
    pub fn enter_current_thread(&self) -> Result<(), Error> {
        setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(Error::Setns)
    }

    /// Whether the calling thread is inside this namespace (same inode as
    /// its `/proc/thread-self/ns/net`).
    pub fn is_current(&self) -> bool {
        let ours = nix::sys::stat::fstat(&self.fd);
        let current = nix::sys::stat::stat("/proc/thread-self/ns/net");
        matches!((ours, current), (Ok(a), Ok(b)) if a.st_ino == b.st_ino && a.st_dev == b.st_dev)
    }

    /// Runs `f` inside this namespace and returns its result: on the
    /// calling thread when it is already inside, else on a new thread.
    fn inside<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        if self.is_current() {
            Ok(f())
        } else {
            self.run(f)
        }
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    self.enter_current_thread()?;
                    Ok(f())
                })
                .join()
                .map_err(Error::panicked)?
        })
    }

    /// Writes a sysctl of this namespace, `key` in dotted form
    /// (`net.ipv4.ip_local_port_range`).
    /// A thread already inside the namespace (a case's own) writes
    /// directly; any other thread hands the write to a new thread inside.
    /// An empty value clears a list sysctl (`ip_local_reserved_ports`).
    pub fn sysctl_write(&self, key: &str, value: &str) -> Result<(), Error> {
        self.inside(|| sysctl::write(key, value))?
    }

    /// Reads a sysctl of this namespace, without the trailing newline.
    pub fn sysctl_read(&self, key: &str) -> Result<String, Error> {
        self.inside(|| sysctl::read(key))?
    }

    /// Opens an rtnetlink connection inside this namespace and runs `f` with
    /// it on a current-thread tokio runtime.
    pub fn netlink<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send,
        F: AsyncFnOnce(&Netlink) -> Result<T, Error> + Send,
    {
        self.run(|| Netlink::block_on(f))?
    }

    /// Takes a [`Snapshot`] of this namespace: links, rules, port sysctls.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        self.run(Snapshot::take)?
    }

    /// Brings the loopback device up (one rtnetlink request, no runtime).
    pub fn loopback_up(&self) -> Result<(), Error> {
        self.inside(loopback::up)?
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
