use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;

use nix::sched::{CloneFlags, setns, unshare};

use crate::Error;
use crate::loopback;
use crate::netlink::Netlink;
use crate::privileges;
use crate::residue::{self, FreshState, Residue, SocketCount};
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
    /// The namespace's cookie (`SO_NETNS_COOKIE`, Linux 5.14 and later),
    /// for a cheap [`Netns::is_current`].
    cookie: Option<u64>,
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
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
            if privileges::denies_privilege(e) {
                Error::NoPrivileges {
                    what: "unshare(CLONE_NEWNET)",
                    source: e.into(),
                }
            } else {
                Error::Unshare(e)
            }
        })?;
        let path = "/proc/thread-self/ns/net";
        let file = File::open(path).map_err(|source| Error::Proc {
            what: "open",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            fd: OwnedFd::from(file),
            cookie: current_cookie(),
        })
    }

    /// Moves the calling thread into this namespace for the rest of its life.
    ///
    /// Meant for threads dedicated to one namespace (a test case's thread);
    /// use [`Netns::run`] for anything else.
    pub fn enter_current_thread(&self) -> Result<(), Error> {
        setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(Error::Setns)
    }

    /// Whether the calling thread is inside this namespace: the same
    /// namespace cookie as a socket the thread opens (a few microseconds),
    /// or, on kernels without cookies, the same inode as its
    /// `/proc/thread-self/ns/net` (whose first lookup from a new thread
    /// costs about 1 ms here).
    pub fn is_current(&self) -> bool {
        if let (Some(ours), Some(current)) = (self.cookie, current_cookie()) {
            return ours == current;
        }
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

    /// Records what this namespace looks like, to compare others with
    /// ([`Netns::residue`]); meant for a namespace no case has used yet,
    /// with `lo` up.
    pub fn fresh_state(&self) -> Result<FreshState, Error> {
        self.inside(FreshState::record)?
    }

    /// Writes the port sysctls back to `fresh`'s values and lists what this
    /// namespace holds that a fresh one does not (sockets of any protocol,
    /// TIME_WAIT, sysctls, links, addresses, routes, rules); empty means
    /// proven clean. See [`residue`](crate::residue) for how.
    /// `count` is this namespace's ([`Netns::socket_count`]).
    pub fn residue(&self, fresh: &FreshState, count: &SocketCount) -> Result<Vec<Residue>, Error> {
        self.inside(|| residue::check(fresh, count))?
    }

    /// This namespace's socket and TIME_WAIT counts, readable from any
    /// thread without entering it or opening a socket.
    pub fn socket_count(&self) -> Result<SocketCount, Error> {
        self.inside(SocketCount::open)?
    }

    /// Brings the loopback device up (one rtnetlink request, no runtime).
    pub fn loopback_up(&self) -> Result<(), Error> {
        self.inside(loopback::up)?
    }
}

/// The cookie of the calling thread's network namespace, from a socket
/// opened and closed for the purpose: an unbound AF_UNIX one, so that no
/// port is taken and no inet state touched; `None` where the kernel has no
/// `SO_NETNS_COOKIE`.
fn current_cookie() -> Option<u64> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    /// From the kernel's uapi `asm-generic/socket.h`; libc does not name it.
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let socket = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` describe a valid, writable buffer of the
    // size the option returns, and the descriptor is open for the call.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(cookie)
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
