//! Policy routing rules (`ip rule`): add, list, delete.

use std::fmt::Write;
use std::ops::RangeInclusive;

use futures::TryStreamExt;
use netlink_packet_route::route::RouteHeader;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage, RulePortRange};
use netlink_packet_route::{AddressFamily, IpProtocol};

use super::{Netlink, refused};
use crate::{Error, IpVersion, Prefix};

/// A policy routing rule as the kernel lists it.
///
/// Only the selectors this crate sets are decoded; the whole message is
/// kept so that [`RuleHandle::del`] deletes exactly this rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// IPv4 or IPv6.
    pub version: IpVersion,
    /// The rule's priority (`pref`); lower matches first.
    pub priority: u32,
    /// The table it looks up (`lookup T`); 0 for rules that do not.
    pub table: u32,
    /// What the rule does (`FR_ACT_TO_TBL` for a lookup).
    pub action: RuleAction,
    /// Source prefix selector (`from`).
    pub from: Option<Prefix>,
    /// Destination prefix selector (`to`).
    pub to: Option<Prefix>,
    /// Source port range selector (`sport`, `FRA_SPORT_RANGE`).
    pub sport: Option<RangeInclusive<u16>>,
    /// Destination port range selector (`dport`, `FRA_DPORT_RANGE`).
    pub dport: Option<RangeInclusive<u16>>,
    /// IP protocol selector (`ipproto`), as its number.
    pub ip_proto: Option<u8>,
    message: RuleMessage,
}

impl Rule {
    fn from_message(message: RuleMessage) -> Self {
        let version = if message.header.family == AddressFamily::Inet6 {
            IpVersion::V6
        } else {
            IpVersion::V4
        };
        let mut rule = Rule {
            version,
            priority: 0,
            table: u32::from(message.header.table),
            action: message.header.action,
            from: None,
            to: None,
            sport: None,
            dport: None,
            ip_proto: None,
            message: RuleMessage::default(),
        };
        let range = |r: &RulePortRange| Some(r.start..=r.end);
        for attr in &message.attributes {
            match attr {
                RuleAttribute::Priority(p) => rule.priority = *p,
                RuleAttribute::Table(t) => rule.table = *t,
                RuleAttribute::Source(addr) => {
                    rule.from = Prefix::new(*addr, message.header.src_len).ok()
                }
                RuleAttribute::Destination(addr) => {
                    rule.to = Prefix::new(*addr, message.header.dst_len).ok()
                }
                RuleAttribute::SourcePortRange(r) => rule.sport = range(r),
                RuleAttribute::DestinationPortRange(r) => rule.dport = range(r),
                RuleAttribute::IpProtocol(p) => rule.ip_proto = u8::try_from(i32::from(*p)).ok(),
                _ => {}
            }
        }
        rule.message = message;
        rule
    }

    /// The rule as the kernel sent it.
    pub fn message(&self) -> &RuleMessage {
        &self.message
    }
}

/// Requests about the policy routing rules of one namespace; from
/// [`Netlink::rule`].
pub struct RuleHandle<'a> {
    netlink: &'a Netlink,
}

impl<'a> RuleHandle<'a> {
    pub(super) fn new(netlink: &'a Netlink) -> Self {
        Self { netlink }
    }

    /// A rule of `version` to add (`ip -4 rule add` / `ip -6 rule add`);
    /// without selectors it matches every packet, without
    /// [`table`](RuleAddRequest::table) it looks up the main table.
    pub fn add(&self, version: IpVersion) -> RuleAddRequest<'a> {
        RuleAddRequest {
            netlink: self.netlink,
            version,
            priority: None,
            table: super::route::MAIN_TABLE,
            from: None,
            to: None,
            sport: None,
            dport: None,
            ip_proto: None,
        }
    }

    /// Every rule of `version`, the kernel's defaults included, in
    /// priority order.
    pub async fn list(&self, version: IpVersion) -> Result<Vec<Rule>, Error> {
        self.netlink
            .handle
            .rule()
            .get(version.rtnetlink())
            .execute()
            .map_ok(Rule::from_message)
            .try_collect()
            .await
            .map_err(refused(format!("list {version} rules")))
    }

    /// Deletes `rule`, as listed by [`list`](RuleHandle::list)
    /// (`ip rule del`); ENOENT when it is gone already.
    pub async fn del(&self, rule: &Rule) -> Result<(), Error> {
        self.netlink
            .handle
            .rule()
            .del(rule.message.clone())
            .execute()
            .await
            .map_err(refused(format!(
                "delete {} rule priority {} lookup {}",
                rule.version, rule.priority, rule.table
            )))
    }
}

/// A rule to add; from [`RuleHandle::add`]. The rule looks up a table
/// (`FR_ACT_TO_TBL`).
pub struct RuleAddRequest<'a> {
    netlink: &'a Netlink,
    version: IpVersion,
    priority: Option<u32>,
    table: u32,
    from: Option<Prefix>,
    to: Option<Prefix>,
    sport: Option<RangeInclusive<u16>>,
    dport: Option<RangeInclusive<u16>>,
    ip_proto: Option<u8>,
}

impl RuleAddRequest<'_> {
    /// The rule's priority (`pref P`); without it the kernel puts the rule
    /// just before the last one it has.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The table to look up (`lookup T`).
    pub fn table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }

    /// Matches packets from `prefix` (`from PREFIX`).
    pub fn from(mut self, prefix: Prefix) -> Self {
        self.from = Some(prefix);
        self
    }

    /// Matches packets to `prefix` (`to PREFIX`).
    pub fn to(mut self, prefix: Prefix) -> Self {
        self.to = Some(prefix);
        self
    }

    /// Matches source ports in `ports` (`sport A-B`, `FRA_SPORT_RANGE`).
    pub fn sport(mut self, ports: RangeInclusive<u16>) -> Self {
        self.sport = Some(ports);
        self
    }

    /// Matches destination ports in `ports` (`dport A-B`,
    /// `FRA_DPORT_RANGE`).
    pub fn dport(mut self, ports: RangeInclusive<u16>) -> Self {
        self.dport = Some(ports);
        self
    }

    /// Matches IP protocol number `proto` only (`ipproto`; 6 is TCP, 17 UDP).
    pub fn ip_proto(mut self, proto: u8) -> Self {
        self.ip_proto = Some(proto);
        self
    }

    fn describe(&self) -> String {
        let mut what = format!("add {} rule", self.version);
        if let Some(p) = self.from {
            let _ = write!(what, " from {p}");
        }
        if let Some(p) = self.to {
            let _ = write!(what, " to {p}");
        }
        if let Some(p) = self.ip_proto {
            let _ = write!(what, " ipproto {p}");
        }
        if let Some(r) = &self.sport {
            let _ = write!(what, " sport {}-{}", r.start(), r.end());
        }
        if let Some(r) = &self.dport {
            let _ = write!(what, " dport {}-{}", r.start(), r.end());
        }
        let _ = write!(what, " lookup {}", self.table);
        if let Some(p) = self.priority {
            let _ = write!(what, " priority {p}");
        }
        what
    }

    fn message(&self, what: &str) -> Result<RuleMessage, Error> {
        let mut message = RuleMessage::default();
        message.header.family = match self.version {
            IpVersion::V4 => AddressFamily::Inet,
            IpVersion::V6 => AddressFamily::Inet6,
        };
        message.header.action = RuleAction::ToTable;
        message.header.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        let attrs = &mut message.attributes;
        attrs.push(RuleAttribute::Table(self.table));
        if let Some(p) = self.priority {
            attrs.push(RuleAttribute::Priority(p));
        }
        for (prefix, is_from) in [(self.from, true), (self.to, false)] {
            let Some(prefix) = prefix else { continue };
            if prefix.version() != self.version {
                return Err(Error::InvalidRequest {
                    what: what.to_owned(),
                    reason: format!("{prefix} is not an IP{} prefix", self.version),
                });
            }
            if is_from {
                message.header.src_len = prefix.len();
                attrs.push(RuleAttribute::Source(prefix.addr()));
            } else {
                message.header.dst_len = prefix.len();
                attrs.push(RuleAttribute::Destination(prefix.addr()));
            }
        }
        if let Some(p) = self.ip_proto {
            attrs.push(RuleAttribute::IpProtocol(IpProtocol::from(i32::from(p))));
        }
        let range = |r: &RangeInclusive<u16>| RulePortRange {
            start: *r.start(),
            end: *r.end(),
        };
        if let Some(r) = &self.sport {
            attrs.push(RuleAttribute::SourcePortRange(range(r)));
        }
        if let Some(r) = &self.dport {
            attrs.push(RuleAttribute::DestinationPortRange(range(r)));
        }
        Ok(message)
    }

    /// Sends the request.
    pub async fn execute(self) -> Result<(), Error> {
        let what = self.describe();
        let message = self.message(&what)?;
        let mut request = self.netlink.handle.rule().add();
        *request.message_mut() = message;
        request.execute().await.map_err(refused(what))
    }
}
