//! What a namespace looks like, to check that something left it alone.

use std::thread;

use crate::netlink::{Link, Netlink, Rule};
use crate::{Error, IpVersion, sysctl};

/// The sysctls a [`Snapshot`] records.
pub const SNAPSHOT_SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
];

/// The links, rules and port sysctls of one namespace at one moment.
///
/// Taking one only reads; compare two with `==` to show that the
/// namespace (typically the host's) was left alone in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every link.
    pub links: Vec<Link>,
    /// Every IPv4 rule, then every IPv6 rule.
    pub rules: Vec<Rule>,
    /// `(key, value)` for each of [`SNAPSHOT_SYSCTLS`].
    pub sysctls: Vec<(String, String)>,
}

impl Snapshot {
    /// A snapshot of the namespace the calling thread is in (the host's,
    /// for a thread that never entered one). It is taken on a new thread,
    /// which inherits that namespace, so calling this from inside an async
    /// runtime is fine.
    pub fn current() -> Result<Self, Error> {
        thread::scope(|scope| scope.spawn(Self::take).join().map_err(Error::panicked)?)
    }

    pub(crate) fn take() -> Result<Self, Error> {
        let (links, rules) = Netlink::block_on(async |nl| {
            let links = nl.link().list().await?;
            let mut rules = nl.rule().list(IpVersion::V4).await?;
            rules.extend(nl.rule().list(IpVersion::V6).await?);
            Ok((links, rules))
        })?;
        let sysctls = SNAPSHOT_SYSCTLS
            .iter()
            .map(|key| Ok((key.to_string(), sysctl::read(key)?)))
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            links,
            rules,
            sysctls,
        })
    }
}
