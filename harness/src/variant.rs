//! The protocol x address family matrix every case is expanded over.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};

/// A transport protocol the option applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP, one-to-one style (`SOCK_STREAM`).
    Sctp,
    /// Multipath TCP.
    Mptcp,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// `AF_INET`.
    V4,
    /// `AF_INET6`.
    V6,
    /// `AF_INET6` sockets talking to IPv4-mapped addresses
    /// (`::ffff:127.0.0.1`).
    V4Mapped,
}

/// One cell of the matrix: a protocol over a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Variant {
    /// The transport protocol.
    pub proto: Proto,
    /// The address family.
    pub family: Family,
}

const IPPROTO_SCTP: i32 = 132;
const IPPROTO_MPTCP: i32 = 262;

impl Proto {
    /// Every protocol, in report order.
    pub const ALL: &'static [Proto] = &[Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Mptcp];
    /// The connection-oriented protocols (those with `listen()`).
    pub const STREAM: &'static [Proto] = &[Proto::Tcp, Proto::Sctp, Proto::Mptcp];

    /// Lower-case name used in case names (`tcp`).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Mptcp => "mptcp",
        }
    }

    fn socket_type(self) -> Type {
        match self {
            Proto::Udp => Type::DGRAM,
            Proto::Tcp | Proto::Sctp | Proto::Mptcp => Type::STREAM,
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Proto::Tcp => Protocol::TCP,
            Proto::Udp => Protocol::UDP,
            Proto::Sctp => Protocol::from(IPPROTO_SCTP),
            Proto::Mptcp => Protocol::from(IPPROTO_MPTCP),
        }
    }
}

impl Family {
    /// IPv4 and IPv6, in report order.
    pub const BOTH: &'static [Family] = &[Family::V4, Family::V6];
    /// IPv4, IPv6 and IPv4-mapped IPv6, for properties about addresses.
    pub const ALL: &'static [Family] = &[Family::V4, Family::V6, Family::V4Mapped];

    /// The suffix used in case names (`4`, `6`, `4in6`).
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
            Family::V4Mapped => "4in6",
        }
    }

    /// The family's name for people (`IPv4`).
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
            Family::V4Mapped => "IPv4-mapped IPv6",
        }
    }

    /// The loopback address of this family.
    pub fn loopback(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Family::V4Mapped => IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        }
    }

    fn domain(self) -> Domain {
        match self {
            Family::V4 => Domain::IPV4,
            Family::V6 | Family::V4Mapped => Domain::IPV6,
        }
    }
}

impl Variant {
    /// Every variant of the given protocols and families, protocol-major.
    pub fn matrix(protos: &[Proto], families: &[Family]) -> Vec<Variant> {
        protos
            .iter()
            .flat_map(|&proto| {
                families
                    .iter()
                    .map(move |&family| Variant { proto, family })
            })
            .collect()
    }

    /// Opens a socket of this variant in the calling thread's namespace.
    pub fn socket(self) -> io::Result<Socket> {
        Socket::new(
            self.family.domain(),
            self.proto.socket_type(),
            Some(self.proto.protocol()),
        )
    }

    /// The loopback address of this variant's family with `port`.
    pub fn loopback(self, port: u16) -> SocketAddr {
        SocketAddr::new(self.family.loopback(), port)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.proto.name(), self.family.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_is_protocol_major_and_named_like_the_reports() {
        let names: Vec<String> = Variant::matrix(Proto::ALL, Family::BOTH)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            [
                "tcp4", "tcp6", "udp4", "udp6", "sctp4", "sctp6", "mptcp4", "mptcp6"
            ]
        );
    }
}
