//! Addresses with a prefix length, and the IP version they belong to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

/// IPv4 or IPv6: the family of a rule, a route or a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl IpVersion {
    /// The version of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }

    /// The longest prefix length of this version: 32 or 128.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            IpVersion::V4 => 32,
            IpVersion::V6 => 128,
        }
    }

    pub(crate) fn rtnetlink(self) -> rtnetlink::IpVersion {
        match self {
            IpVersion::V4 => rtnetlink::IpVersion::V4,
            IpVersion::V6 => rtnetlink::IpVersion::V6,
        }
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpVersion::V4 => "v4",
            IpVersion::V6 => "v6",
        })
    }
}

/// An address with a prefix length: `10.0.0.1/24`, `2001:db8::/32`.
///
/// Host bits are kept, so the same type serves for interface addresses
/// (`10.0.0.1/24`) and for route or rule destinations (`10.0.0.0/24`); the
/// kernel decides whether host bits are acceptable where they appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// `0.0.0.0/0`, the IPv4 default destination.
    pub const DEFAULT_V4: Prefix = Prefix {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
    /// `::/0`, the IPv6 default destination.
    pub const DEFAULT_V6: Prefix = Prefix {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        len: 0,
    };

    /// `addr/len`; fails when `len` is longer than the address.
    pub fn new(addr: impl Into<IpAddr>, len: u8) -> Result<Self, Error> {
        let addr = addr.into();
        if len > IpVersion::of(addr).max_prefix_len() {
            return Err(Error::InvalidRequest {
                what: format!("prefix {addr}/{len}"),
                reason: format!(
                    "the prefix length is longer than {} bits",
                    IpVersion::of(addr).max_prefix_len()
                ),
            });
        }
        Ok(Self { addr, len })
    }

    /// A single host: `/32` for IPv4, `/128` for IPv6.
    pub fn host(addr: impl Into<IpAddr>) -> Self {
        let addr = addr.into();
        Self {
            addr,
            len: IpVersion::of(addr).max_prefix_len(),
        }
    }

    /// The default destination of `version` (`0.0.0.0/0` or `::/0`).
    pub fn default_route(version: IpVersion) -> Self {
        match version {
            IpVersion::V4 => Self::DEFAULT_V4,
            IpVersion::V6 => Self::DEFAULT_V6,
        }
    }

    /// The address, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is a `/0` prefix (the default destination).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// IPv4 or IPv6.
    pub fn version(&self) -> IpVersion {
        IpVersion::of(self.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parses `addr/len`; a bare address is a host prefix (`/32`, `/128`).
impl FromStr for Prefix {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidRequest {
            what: format!("prefix {text:?}"),
            reason: reason.to_owned(),
        };
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
        match len {
            None => Ok(Self::host(addr)),
            Some(len) => {
                let len = len
                    .parse()
                    .map_err(|_| bad("the prefix length is not a number"))?;
                Self::new(addr, len).map_err(|e| match e {
                    Error::InvalidRequest { reason, .. } => bad(&reason),
                    other => other,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let cases = [
            // with a length
            ("10.0.0.1/24", "10.0.0.1/24"),
            // a bare IPv4 address is a host
            ("192.0.2.2", "192.0.2.2/32"),
            // a bare IPv6 address is a host
            ("2001:db8::1", "2001:db8::1/128"),
            // the default
            ("::/0", "::/0"),
        ];
        for (text, shown) in cases {
            assert_eq!(text.parse::<Prefix>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn rejects_bad_prefixes() {
        let cases = [
            // too long for IPv4
            ("10.0.0.1/33", "the prefix length is longer than 32 bits"),
            // not an address
            ("eth0/24", "not an IPv4 or IPv6 address"),
            // not a number
            ("10.0.0.0/x", "the prefix length is not a number"),
        ];
        for (text, reason) in cases {
            let err = text.parse::<Prefix>().unwrap_err();
            assert_eq!(err.to_string(), format!("prefix {text:?}: {reason}"));
        }
    }
}
