//! A reference model of ephemeral port selection under `IP_LOCAL_PORT_RANGE`:
//! from a namespace's settings, a socket's range, the ports other sockets
//! hold and an operation, the set of ports the kernel may pick, or the
//! error it must return.
//!
//! Derived from the Linux 6.12 sources (Debian's linux-source-6.12); each
//! rule names the function it comes from. The model is a set, not a
//! simulation: where the kernel picks at random (a random offset, a hash
//! perturbation) every port it could reach first is in the set.
//!
//! Assumptions, which the random-configuration case keeps true: every
//! socket is bound to the family's loopback address or the wildcard, none
//! to a device, none with `SO_REUSEPORT`; the namespace's
//! `net.ipv4.ip_autobind_reuse` is 0 (its default); no port is held by a
//! TCP socket in TIME_WAIT (the case closes with `SO_LINGER` 0); each port
//! is held by one kind of [`Holder`] (several [`Holder::AutoboundConnected`]
//! on one port are fine).

use std::collections::BTreeSet;
use std::fmt;

use harness::Proto;
use harness::profile::Profile;
use nix::errno::Errno;

use crate::port_set::show;

/// How a socket came to hold a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// `bind()` to the port and nothing more.
    Bound,
    /// `bind()` to the port, then `listen()`.
    Listener,
    /// `bind()` to the port, then `connect()` to loopback `remote`.
    BoundThenConnected {
        /// The remote port.
        remote: u16,
    },
    /// `connect()` to loopback `remote` with the port picked by connect()
    /// itself (TCP and MPTCP: a bind bucket connect() may share).
    AutoboundConnected {
        /// The remote port.
        remote: u16,
    },
}

/// A port held by another socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The local port held.
    pub port: u16,
    /// How it is held.
    pub holder: Holder,
    /// Whether that socket has `SO_REUSEADDR`.
    pub reuse_addr: bool,
}

/// The operation that makes the kernel pick a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `bind()` to loopback port 0.
    BindZero,
    /// `listen()` on an unbound socket (TCP, MPTCP, SCTP).
    Listen,
    /// `connect()` of an unbound socket to loopback `remote`.
    Connect {
        /// The remote port.
        remote: u16,
    },
    /// `sendto()` from an unbound UDP socket to loopback `remote`.
    SendTo {
        /// The remote port.
        remote: u16,
    },
}

/// Everything the kernel's choice depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The protocol of every socket involved.
    pub proto: Proto,
    /// `net.ipv4.ip_local_port_range` as `(L, H)`, `L <= H`.
    pub netns_range: (u16, u16),
    /// The socket's `IP_LOCAL_PORT_RANGE` as `(lo, hi)`, 0 = unset; a valid
    /// value (`lo <= hi` when both are set).
    pub socket_range: (u16, u16),
    /// `net.ipv4.ip_local_reserved_ports`.
    pub reserved: BTreeSet<u16>,
    /// Ports other sockets hold.
    pub taken: Vec<Taken>,
    /// Whether the socket that picks has `SO_REUSEADDR`.
    pub reuse_addr: bool,
    /// What makes it pick.
    pub op: Op,
}

impl Config {
    /// A configuration with nothing reserved, no port taken and no
    /// `SO_REUSEADDR`: the start of most worked examples and of a case's
    /// own configuration.
    pub fn new(proto: Proto, netns_range: (u16, u16), socket_range: (u16, u16), op: Op) -> Config {
        Config {
            proto,
            netns_range,
            socket_range,
            reserved: BTreeSet::new(),
            taken: Vec::new(),
            reuse_addr: false,
            op,
        }
    }
}

/// What the model allows: the kernel picks one of `ports`, or fails with
/// `error`. Both can be possible at once: TCP's scan of an odd-sized range
/// reaches different ports from different random offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Ports the kernel may pick.
    pub ports: BTreeSet<u16>,
    /// The error the kernel may return instead (the only outcome when
    /// `ports` is empty).
    pub error: Option<Errno>,
}

impl Expected {
    /// Whether the kernel's outcome is one the model allows.
    pub fn allows(&self, outcome: Result<u16, Errno>) -> bool {
        match outcome {
            Ok(port) => self.ports.contains(&port),
            Err(errno) => self.error == Some(errno),
        }
    }
}

/// The range the socket picks from, both ends inclusive
/// (`inet_sk_get_local_port_range`): the socket's low bound if it lies in
/// `[L, H]`, else `L`; then its high bound if it lies in `[lo, H]`, else `H`.
/// An unset bound (0) never lies in `[L, H]`, since `L` is at least
/// `ip_unprivileged_port_start`.
pub fn effective_range(netns: (u16, u16), socket: (u16, u16)) -> (u16, u16) {
    let (l, h) = netns;
    let (sl, sh) = socket;
    let lo = if l <= sl && sl <= h { sl } else { l };
    let hi = if lo <= sh && sh <= h { sh } else { h };
    (lo, hi)
}

/// The error an exhausted pick returns, or `None` for an operation the
/// model does not cover for `proto`.
pub fn exhaustion_error(proto: Proto, op: Op) -> Option<Errno> {
    match (proto, op) {
        // inet_csk_get_port() returns -EADDRINUSE; inet_csk_listen_start()
        // passes it on.
        (Proto::Tcp | Proto::Mptcp, Op::BindZero | Op::Listen) => Some(Errno::EADDRINUSE),
        // __inet_hash_connect() returns -EADDRNOTAVAIL.
        (Proto::Tcp | Proto::Mptcp, Op::Connect { .. }) => Some(Errno::EADDRNOTAVAIL),
        // udp_lib_get_port() -EADDRINUSE at bind(); inet_autobind() failing
        // makes inet_dgram_connect() and inet_send_prepare() say -EAGAIN.
        (Proto::Udp, Op::BindZero) => Some(Errno::EADDRINUSE),
        (Proto::Udp, Op::Connect { .. } | Op::SendTo { .. }) => Some(Errno::EAGAIN),
        // sctp_do_bind() -EADDRINUSE; sctp_autobind() failing is -EAGAIN in
        // sctp_connect_new_asoc() and sctp_inet_listen().
        (Proto::Sctp, Op::BindZero) => Some(Errno::EADDRINUSE),
        (Proto::Sctp, Op::Listen | Op::Connect { .. }) => Some(Errno::EAGAIN),
        (Proto::Udp, Op::Listen) | (_, Op::SendTo { .. }) => None,
    }
}

/// The ports a kernel of `profile` may pick for `config`, and the error it may return;
/// `None` for an operation the model does not cover (UDP `listen()`,
/// `sendto()` on a connection-oriented socket).
///
/// Every random start the kernel could draw is tried, so the cost is
/// quadratic in the size of the range when most ports are busy.
pub fn expected_on(config: &Config, profile: Profile) -> Option<Expected> {
    let errno = exhaustion_error(config.proto, config.op)?;
    let (lo, hi) = effective_range(config.netns_range, config.socket_range);
    let (lo, hi) = (u32::from(lo), u32::from(hi));
    let free = |port: u32| {
        let port = narrow(port);
        !config.reserved.contains(&port) && is_free(config, port)
    };
    let mut ports = BTreeSet::new();
    let mut fails = false;
    match (config.proto, config.op) {
        (Proto::Tcp | Proto::Mptcp, Op::BindZero | Op::Listen) => {
            // inet_csk_find_open_port(): with SO_REUSEADDR and at least 4
            // ports, the lower "half" first (`low + (((high - low) >> 2) <<
            // 1)`), then the rest; each part on its own random offset.
            let high = hi + 1;
            let parts = if config.reuse_addr && high - lo >= 4 {
                let half = lo + (((high - lo) >> 2) << 1);
                vec![(lo, half), (half, high)]
            } else {
                vec![(lo, high)]
            };
            fails = true;
            for (low, high) in parts {
                let (found, missed) = csk_part(low, high, &free);
                ports.extend(found);
                if !missed {
                    fails = false;
                    break;
                }
            }
        }
        (Proto::Tcp | Proto::Mptcp, _) => {
            // __inet_hash_connect(): on the upstream profile (6.8 and
            // later) any non-zero IP_LOCAL_PORT_RANGE (even one the clamp
            // ignores) scans every port with step 1; otherwise (and always
            // on the stable-6.1 profile) ports at an even offset first,
            // then odd, over a count rounded down to even.
            let high = hi + 1;
            let set = config.socket_range != (0, 0) && profile == Profile::Upstream;
            let remaining = if set {
                high - lo
            } else {
                even_count(high - lo)
            };
            for offset in 0..remaining {
                let found = if set {
                    scan(lo, high, remaining, offset, 1, &free)
                } else {
                    let even = offset & !1;
                    scan(lo, high, remaining, even, 2, &free).or_else(|| {
                        (remaining > 1)
                            .then(|| scan(lo, high, remaining, even + 1, 2, &free))
                            .flatten()
                    })
                };
                match found {
                    Some(port) => {
                        ports.insert(port);
                    }
                    None => fails = true,
                }
            }
        }
        // udp_lib_get_port() and sctp_get_port_local() walk every port of
        // [lo, hi] from a random start: any free port, no parity, no
        // rounding; they fail only when none is free.
        (Proto::Udp | Proto::Sctp, _) => {
            ports.extend((lo..=hi).filter(|&p| free(p)).map(narrow));
            fails = ports.is_empty();
        }
    }
    Some(Expected {
        ports,
        error: fails.then_some(errno),
    })
}

/// One part of inet_csk_find_open_port()'s scan over `[low, high)`: the
/// count rounded down to even (`remaining &= ~1U`, unless it is 1), a
/// random odd start (`offset |= 1U`) scanned with step 2, then the even
/// offset below it. A port at or past `high` wraps back by `remaining`, so
/// in an odd-sized part the top port is reached from some starts but not
/// others. Returns the ports some start finds and whether some start finds
/// none.
fn csk_part(low: u32, high: u32, free: &impl Fn(u32) -> bool) -> (BTreeSet<u16>, bool) {
    let remaining = even_count(high - low);
    let mut found = BTreeSet::new();
    let mut missed = false;
    for random in 0..remaining {
        let odd = random | 1;
        match scan(low, high, remaining, odd, 2, free)
            .or_else(|| scan(low, high, remaining, odd - 1, 2, free))
        {
            Some(port) => {
                found.insert(port);
            }
            None => missed = true,
        }
    }
    (found, missed)
}

/// The kernel's scan loop: `remaining / step` ports from `low + offset`,
/// stepping by `step`, a port at or past `high` moved back by `remaining`;
/// the first free one.
fn scan(
    low: u32,
    high: u32,
    remaining: u32,
    offset: u32,
    step: u32,
    free: &impl Fn(u32) -> bool,
) -> Option<u16> {
    let mut port = low + offset;
    let mut i = 0;
    while i < remaining {
        if port >= high {
            port -= remaining;
        }
        if free(port) {
            return Some(narrow(port));
        }
        i += step;
        port += step;
    }
    None
}

/// `remaining &= ~1U` for counts above 1.
fn even_count(count: u32) -> u32 {
    if count > 1 { count & !1 } else { count }
}

fn narrow(port: u32) -> u16 {
    u16::try_from(port).expect("ports stay below 65536")
}

/// Whether `port` is free for the operation, given the other sockets.
fn is_free(config: &Config, port: u16) -> bool {
    let mut holders = config.taken.iter().filter(|t| t.port == port);
    match (config.proto, config.op) {
        // __inet_hash_connect(): a bucket made by bind() (fastreuse >= 0) is
        // skipped; one made by connect() is shared when the 4-tuple is
        // unique (check_established).
        (Proto::Tcp | Proto::Mptcp, Op::Connect { remote }) => holders
            .all(|t| matches!(t.holder, Holder::AutoboundConnected { remote: r } if r != remote)),
        // inet_csk_find_open_port() calls the bind-conflict check with
        // relax = false: any socket on an overlapping address conflicts,
        // SO_REUSEADDR or not. sctp_get_port_local() skips any port that
        // has a bind bucket at all.
        (Proto::Tcp | Proto::Mptcp | Proto::Sctp, _) => holders.next().is_none(),
        // udp_lib_lport_inuse(): no conflict when both sockets have
        // SO_REUSEADDR.
        (Proto::Udp, _) => holders.all(|t| t.reuse_addr && config.reuse_addr),
    }
}

/// What a deterministic case that fills a range sees on a kernel of
/// `profile`: sockets configured as `config` keep picking by `config.op`
/// (each holding its port) until a pick fails; the ports picked and the
/// errno of that failure. Panics where the model lets a pick fail while
/// ports are free or pick a port twice, as the case would then not be
/// deterministic.
#[cfg(test)]
pub fn fill(config: &Config, profile: Profile) -> (BTreeSet<u16>, Errno) {
    let holder = match config.op {
        Op::BindZero => Holder::Bound,
        Op::Listen => Holder::Listener,
        Op::Connect { remote } | Op::SendTo { remote } => Holder::AutoboundConnected { remote },
    };
    let mut config = config.clone();
    let mut picked = BTreeSet::new();
    loop {
        let expected = expected_on(&config, profile).expect("an operation the model covers");
        let Some(&port) = expected.ports.first() else {
            return (picked, expected.error.expect("no port means an error"));
        };
        assert!(
            expected.error.is_none(),
            "{config}: may fail while {expected}"
        );
        assert!(picked.insert(port), "{config}: {port} picked twice");
        config.taken.push(Taken {
            port,
            holder,
            reuse_addr: config.reuse_addr,
        });
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Bound => write!(f, "bound"),
            Holder::Listener => write!(f, "listener"),
            Holder::BoundThenConnected { remote } => write!(f, "bound+connected->{remote}"),
            Holder::AutoboundConnected { remote } => write!(f, "autobound+connected->{remote}"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::BindZero => write!(f, "bind(port 0)"),
            Op::Listen => write!(f, "listen() unbound"),
            Op::Connect { remote } => write!(f, "connect(->{remote}) unbound"),
            Op::SendTo { remote } => write!(f, "sendto(->{remote}) unbound"),
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, h) = self.netns_range;
        let (sl, sh) = self.socket_range;
        let reserved: Vec<String> = self.reserved.iter().map(u16::to_string).collect();
        let taken: Vec<String> = self
            .taken
            .iter()
            .map(|t| {
                let reuse = if t.reuse_addr { " reuseaddr" } else { "" };
                format!("{} {}{reuse}", t.port, t.holder)
            })
            .collect();
        write!(
            f,
            "{} with netns range {l}-{h}, socket range {sl}-{sh}, reserved [{}], taken [{}], SO_REUSEADDR {}",
            self.op,
            reserved.join(","),
            taken.join(", "),
            if self.reuse_addr { "on" } else { "off" },
        )
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ports.is_empty(), self.error) {
            (false, None) => write!(f, "one of {}", show(self.ports.iter().copied())),
            (false, Some(errno)) => {
                write!(
                    f,
                    "one of {} or {errno:?}",
                    show(self.ports.iter().copied())
                )
            }
            (true, Some(errno)) => write!(f, "{errno:?}"),
            (true, None) => write!(f, "nothing"),
        }
    }
}

#[cfg(test)]
mod tests;
