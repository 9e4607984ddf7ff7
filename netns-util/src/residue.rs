//! Whether a namespace is back to the state a fresh one has, for everything
//! that picking a local port depends on: sockets of any protocol, the port
//! sysctls, links, addresses, routes and policy rules.
//!
//! The proof has two layers for sockets. `/proc/thread-self/net/sockstat`
//! counts every socket user space opened in the namespace, of any family
//! and protocol (TCP, UDP, SCTP, MPTCP, raw, netlink, ...; a TCP request
//! socket holds its listener, which is counted), and its TIME_WAIT sockets;
//! it is per namespace and needs no module. The sock_diag dumps (TCP in
//! every state, TIME_WAIT and request sockets included, and UDP, both
//! families) name what is left; where the kernel has no inet_diag
//! (a module the guest may not load) the count alone decides.
//!
//! The requests go over blocking netlink sockets with hand-built dumps:
//! one datagram loop serves both rtnetlink and sock_diag, where the tokio
//! connection [`Netlink`](crate::Netlink) uses would cost a runtime per
//! check. The sock_diag messages are netlink-packet-sock-diag's.

use std::fmt;
use std::fs;
use std::io::{self, Read, Seek};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::Socket;
use rtnetlink::sys::protocols::{NETLINK_ROUTE, NETLINK_SOCK_DIAG};

use crate::{Error, sysctl};

/// Sysctls a case may change and that a check writes back to the fresh
/// value and reads back.
pub const RESTORED_SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
];

/// Sysctls that also steer port choice (or, for MPTCP, whether its
/// sockets exist at all); a check only compares them, so a namespace in
/// which one changed is never reused. Those a kernel lacks (no MPTCP, an
/// older kernel without `ip_autobind_reuse`) are left out for it.
pub const COMPARED_SYSCTLS: [&str; 6] = [
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_autobind_reuse",
    "net.ipv4.ip_nonlocal_bind",
    "net.ipv6.ip_nonlocal_bind",
    "net.ipv4.tcp_tw_reuse",
    "net.mptcp.enabled",
];

/// The sockstat file of the calling thread's namespace (`/proc/net` is the
/// main thread's).
const SOCKSTAT: &str = "/proc/thread-self/net/sockstat";

/// Every TCP state bit, beyond the crate's named ones: 12 is
/// TCP_NEW_SYN_RECV (request sockets), 13 TCP_BOUND_INACTIVE (6.6 and
/// later: bound, neither listening nor connected).
const ALL_TCP_STATES: u32 = u32::MAX;

/// What a fresh namespace (with `lo` up) looks like; recorded once from a
/// namespace no case has used, compared with every namespace a case left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshState {
    sysctls: Vec<(String, String)>,
    objects: Vec<(&'static str, String)>,
    diag: bool,
}

impl FreshState {
    /// Whether the kernel answered sock_diag dumps for TCP and UDP; without
    /// them the sockstat count alone proves that no socket is left.
    pub fn has_sock_diag(&self) -> bool {
        self.diag
    }

    /// Records the calling thread's namespace.
    pub(crate) fn record() -> Result<Self, Error> {
        let mut sysctls = RESTORED_SYSCTLS
            .iter()
            .map(|key| Ok((key.to_string(), sysctl::read(key)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        for key in COMPARED_SYSCTLS {
            match sysctl::read(key) {
                Ok(value) => sysctls.push((key.to_owned(), value)),
                Err(Error::Proc { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let diag = match inet_sockets() {
            Ok(_) => true,
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOENT as i32) => false,
            Err(source) => return Err(diag_error(source)),
        };
        Ok(FreshState {
            sysctls,
            objects: objects()?,
            diag,
        })
    }
}

/// Something a case left that a fresh namespace does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Residue {
    /// Sockets still counted in the namespace ("sockets: used"). Closed
    /// sockets of some kinds stay counted until an RCU grace period has
    /// passed, so a caller may look again a little later.
    SocketsInUse(u64),
    /// TCP sockets in TIME_WAIT.
    TimeWait(u64),
    /// A socket a sock_diag dump listed, as `tcp6 LISTEN [::1]:40000`.
    Socket(String),
    /// A sysctl that differs from a fresh namespace's (after the write-back
    /// for [`RESTORED_SYSCTLS`]).
    Sysctl {
        /// The key, dotted.
        key: String,
        /// A fresh namespace's value.
        fresh: String,
        /// This namespace's value.
        now: String,
    },
    /// A link, address, route or rule a fresh namespace does not have.
    Extra {
        /// `link`, `address`, `route` or `rule`.
        kind: &'static str,
        /// The object, as the kernel listed it.
        item: String,
    },
    /// A link, address, route or rule of a fresh namespace that is gone.
    Missing {
        /// `link`, `address`, `route` or `rule`.
        kind: &'static str,
        /// The object, as a fresh namespace lists it.
        item: String,
    },
}

impl Residue {
    /// A short name of the kind of residue, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Residue::SocketsInUse(_) => "sockets in use",
            Residue::TimeWait(_) => "TIME_WAIT",
            Residue::Socket(_) => "socket",
            Residue::Sysctl { .. } => "sysctl",
            Residue::Extra { .. } | Residue::Missing { .. } => "rtnetlink object",
        }
    }
}

impl fmt::Display for Residue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Residue::SocketsInUse(n) => write!(f, "{n} socket(s) still counted in sockstat"),
            Residue::TimeWait(n) => write!(f, "{n} TCP socket(s) in TIME_WAIT"),
            Residue::Socket(socket) => write!(f, "socket {socket}"),
            Residue::Sysctl { key, fresh, now } => {
                write!(f, "sysctl {key} is {now:?}, fresh {fresh:?}")
            }
            Residue::Extra { kind, item } => write!(f, "extra {kind} {item}"),
            Residue::Missing { kind, item } => write!(f, "{kind} {item} is gone"),
        }
    }
}

/// Writes [`RESTORED_SYSCTLS`] back to the fresh values, then lists what
/// the calling thread's namespace holds that `fresh` does not; empty means
/// proven clean. The sockstat count is read first, before this check opens
/// sockets of its own.
pub(crate) fn check(fresh: &FreshState, count: &SocketCount) -> Result<Vec<Residue>, Error> {
    let mut residue = sockstat(count)?;
    if fresh.diag {
        residue.extend(inet_sockets().map_err(diag_error)?);
    }
    for (key, value) in &fresh.sysctls {
        if RESTORED_SYSCTLS.contains(&key.as_str()) {
            sysctl::write(key, value)?;
        }
        let now = sysctl::read(key)?;
        if normalized(&now) != normalized(value) {
            residue.push(Residue::Sysctl {
                key: key.clone(),
                fresh: value.clone(),
                now,
            });
        }
    }
    let now = objects()?;
    residue.extend(
        now.iter()
            .filter(|object| !fresh.objects.contains(object))
            .map(|(kind, item)| Residue::Extra {
                kind,
                item: item.clone(),
            }),
    );
    residue.extend(
        fresh
            .objects
            .iter()
            .filter(|object| !now.contains(object))
            .map(|(kind, item)| Residue::Missing {
                kind,
                item: item.clone(),
            }),
    );
    Ok(residue)
}

/// Whitespace-insensitive: the kernel prints the port range with a tab.
fn normalized(value: &str) -> Vec<&str> {
    value.split_whitespace().collect()
}

fn diag_error(source: io::Error) -> Error {
    Error::NetlinkSocket {
        what: "sock_diag dump of TCP and UDP sockets",
        source,
    }
}

/// A namespace's sockstat file, opened once from inside it and readable
/// from any thread after that: the file stays bound to the namespace it was
/// opened in. Opening `/proc/thread-self/net/...` from a new thread costs
/// about 1 ms here (the kernel builds that thread's `/proc` entries); a
/// read of the open file about 2 us.
#[derive(Debug)]
pub struct SocketCount {
    file: fs::File,
}

impl SocketCount {
    /// Opens the calling thread's namespace's sockstat.
    pub(crate) fn open() -> Result<Self, Error> {
        fs::File::open(SOCKSTAT)
            .map(|file| SocketCount { file })
            .map_err(|source| Error::Proc {
                what: "open",
                path: SOCKSTAT.to_owned(),
                source,
            })
    }

    /// Sockets the namespace counts ("sockets: used": every socket user
    /// space opened in it, of any family and protocol, until freed; closed
    /// UDP and netlink sockets only after an RCU grace period), and its TCP
    /// sockets in TIME_WAIT.
    pub fn read(&self) -> Result<(u64, u64), Error> {
        let error = |source| Error::Proc {
            what: "read",
            path: SOCKSTAT.to_owned(),
            source,
        };
        let mut file = &self.file;
        file.rewind().map_err(error)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(error)?;
        parse_sockstat(&text).ok_or_else(|| Error::InvalidRequest {
            what: SOCKSTAT.to_owned(),
            reason: format!("no \"sockets: used\" or TCP \"tw\" count in {text:?}"),
        })
    }
}

fn sockstat(count: &SocketCount) -> Result<Vec<Residue>, Error> {
    let (used, tw) = count.read()?;
    let mut residue = Vec::new();
    if used > 0 {
        residue.push(Residue::SocketsInUse(used));
    }
    if tw > 0 {
        residue.push(Residue::TimeWait(tw));
    }
    Ok(residue)
}

/// `(sockets used, TCP TIME_WAIT)` from sockstat's text.
fn parse_sockstat(text: &str) -> Option<(u64, u64)> {
    let field = |line: &str, name: &str| {
        let mut words = line.split_whitespace();
        words.find(|word| *word == name)?;
        words.next()?.parse::<u64>().ok()
    };
    let used = text
        .lines()
        .find(|line| line.starts_with("sockets:"))
        .and_then(|line| field(line, "used"))?;
    let tw = text
        .lines()
        .find(|line| line.starts_with("TCP:"))
        .and_then(|line| field(line, "tw"))?;
    Some((used, tw))
}

fn inet_sockets() -> Result<Vec<Residue>, io::Error> {
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    let mut residue = Vec::new();
    for (family, family_name) in [(AF_INET, ""), (AF_INET6, "6")] {
        for (protocol, protocol_name) in [(IPPROTO_TCP, "tcp"), (IPPROTO_UDP, "udp")] {
            let request = SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::from_bits_retain(ALL_TCP_STATES),
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            });
            for answer in dump(&socket, request)? {
                if let SockDiagMessage::InetResponse(response) = answer {
                    let header = &response.header;
                    let local = std::net::SocketAddr::new(
                        header.socket_id.source_address,
                        header.socket_id.source_port,
                    );
                    residue.push(Residue::Socket(format!(
                        "{protocol_name}{family_name} {} {local}",
                        tcp_state_name(header.state)
                    )));
                }
            }
        }
    }
    Ok(residue)
}

fn tcp_state_name(state: u8) -> String {
    const NAMES: [&str; 14] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
        "BOUND_INACTIVE",
    ];
    NAMES
        .get(usize::from(state))
        .map_or_else(|| format!("state {state}"), |name| (*name).to_owned())
}

/// Links, addresses, routes and rules, each as a stable line (no counters,
/// no timestamps).
fn objects() -> Result<Vec<(&'static str, String)>, Error> {
    let route_error = |source| Error::NetlinkSocket {
        what: "rtnetlink dump of links, addresses, routes and rules",
        source,
    };
    let socket = Socket::new(NETLINK_ROUTE).map_err(route_error)?;
    let mut objects = Vec::new();
    for message in dump(
        &socket,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )
    .map_err(route_error)?
    {
        if let RouteNetlinkMessage::NewLink(link) = message {
            objects.push(("link", link_line(&link)));
        }
    }
    for message in dump(
        &socket,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    )
    .map_err(route_error)?
    {
        if let RouteNetlinkMessage::NewAddress(address) = message {
            objects.push(("address", address_line(&address)));
        }
    }
    for message in dump(
        &socket,
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
    )
    .map_err(route_error)?
    {
        if let RouteNetlinkMessage::NewRoute(route) = message {
            objects.push(("route", route_line(&route)));
        }
    }
    for message in dump(
        &socket,
        RouteNetlinkMessage::GetRule(RuleMessage::default()),
    )
    .map_err(route_error)?
    {
        if let RouteNetlinkMessage::NewRule(rule) = message {
            objects.push(("rule", format!("{:?} {:?}", rule.header, rule.attributes)));
        }
    }
    Ok(objects)
}

fn link_line(link: &LinkMessage) -> String {
    let name = link
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.as_str()),
            _ => None,
        });
    let state = if link.header.flags.contains(LinkFlags::Up) {
        "up"
    } else {
        "down"
    };
    format!("{} {} {state}", link.header.index, name.unwrap_or("?"))
}

fn address_line(address: &AddressMessage) -> String {
    let ip = address
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            AddressAttribute::Address(ip) => Some(ip.to_string()),
            _ => None,
        });
    format!(
        "{}/{} on link {}",
        ip.as_deref().unwrap_or("?"),
        address.header.prefix_len,
        address.header.index
    )
}

fn route_line(route: &RouteMessage) -> String {
    let header = &route.header;
    let mut table = u32::from(header.table);
    let (mut destination, mut oif) = (String::from("default"), None);
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(address) => destination = format!("{address:?}"),
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    let family = match header.address_family {
        AddressFamily::Inet => "inet",
        AddressFamily::Inet6 => "inet6",
        _ => "other",
    };
    format!(
        "{family} {:?} {destination}/{} table {table} scope {:?} oif {oif:?}",
        header.kind, header.destination_prefix_length, header.scope
    )
}

/// Sends one dump request on `socket` (blocking) and collects every answer
/// until the kernel's `NLMSG_DONE`. One socket serves several dumps in a
/// row: fewer sockets to free, and closed netlink sockets stay in the
/// namespace's count for an RCU grace period.
fn dump<T>(socket: &Socket, payload: T) -> Result<Vec<T>, io::Error>
where
    T: NetlinkSerializable + NetlinkDeserializable + fmt::Debug,
{
    let mut request =
        NetlinkMessage::new(Default::default(), NetlinkPayload::InnerMessage(payload));
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.sequence_number = 1;
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    let mut answers = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < datagram.len() {
            let message = NetlinkMessage::<T>::deserialize(&datagram[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::Error(error) => {
                    let code = error.code.map_or(0, |code| -code.get());
                    return Err(io::Error::from_raw_os_error(code));
                }
                NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_counts_are_read_from_their_lines() {
        let text =
            "sockets: used 3\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 1\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat(text), Some((3, 2)));
    }

    #[test]
    fn sockstat_without_counts_is_not_read_as_clean() {
        assert_eq!(parse_sockstat("TCP: inuse 0\n"), None);
    }

    #[test]
    fn port_range_compares_without_regard_to_tabs() {
        assert_eq!(normalized("32768\t60999"), normalized("32768 60999"));
    }
}
