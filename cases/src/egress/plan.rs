//! The numbers of the scenario: who gets which ports, addresses, tables,
//! server ports. Pure, so every choice is visible and unit-tested.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use netns_util::{IpVersion, Prefix};

use crate::model::effective_range;

/// First port of the shared pool (the clients' netns range starts here).
pub const POOL_START: u16 = 20000;
/// Highest number of client hosts (one /24 and one /64 each).
pub const MAX_HOSTS: usize = 64;
/// Largest slice: the exhaustion check opens this many sockets per family.
pub const MAX_SLICE: u16 = 1024;
/// The routing table that holds client `k`'s return route is `TABLE_BASE + k`.
pub const TABLE_BASE: u32 = 100;
/// Client `k`'s policy rule has priority `RULE_PRIORITY_BASE + k`.
pub const RULE_PRIORITY_BASE: u32 = 1000;
/// Client `k`'s flows go to server port `FLOW_PORT_BASE + k` (TCP and UDP).
pub const FLOW_PORT_BASE: u16 = 7000;
/// Client `k`'s exhaustion flows go to server port `EXHAUST_PORT_BASE + k`.
pub const EXHAUST_PORT_BASE: u16 = 8000;

/// How a host's requested socket range relates to the netns range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Inside the netns range and narrower: used as asked.
    Inside,
    /// Starts below the netns range: the low bound is raised to it.
    OverlapBelow,
    /// Ends above the netns range: the high bound is lowered to it.
    OverlapAbove,
    /// Wholly outside: the netns range wins, the host's ports are not its
    /// own and its return traffic is not steered back to it.
    Outside,
}

/// One client host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// Its index, from 0.
    pub index: usize,
    /// The range it asks for with IP_LOCAL_PORT_RANGE.
    pub asked: (u16, u16),
    /// How `asked` relates to the netns range.
    pub fit: Fit,
    /// The range the kernel must use ([`effective_range`] of `asked`).
    pub effective: RangeInclusive<u16>,
    /// The destination ports the router steers back to this host.
    pub rule: RangeInclusive<u16>,
}

/// The whole scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The client hosts.
    pub hosts: Vec<HostPlan>,
    /// Every client's `net.ipv4.ip_local_port_range`.
    pub netns_range: (u16, u16),
    /// The families exercised.
    pub versions: Vec<IpVersion>,
    /// TCP and UDP flows per host and family.
    pub flows: usize,
    /// How long to wait for handshakes and replies.
    pub wait: Duration,
    /// The host whose slice is exhausted.
    pub exhaust: usize,
    /// A host whose policy rules are deleted after setup (to show that the
    /// scenario then fails).
    pub remove_rule: Option<usize>,
}

/// What the command line asks for, before validation.
#[derive(Debug, Clone)]
pub struct Request {
    /// Number of client hosts.
    pub hosts: usize,
    /// Ports per host.
    pub slice: u16,
    /// Families.
    pub versions: Vec<IpVersion>,
    /// Flows per host, protocol and family.
    pub flows: usize,
    /// Handshake and reply timeout.
    pub wait: Duration,
    /// A host asking for a range outside the netns range.
    pub outside: Option<usize>,
    /// A host whose policy rules are removed.
    pub remove_rule: Option<usize>,
}

impl Plan {
    /// Lays the hosts out: slices of `slice` ports tile the netns range from
    /// [`POOL_START`]; host 0 asks for a range reaching below it, the last
    /// host for one reaching above it (both clamped back to their slice),
    /// the others for exactly their slice; the `outside` host asks for the
    /// ports just above the netns range.
    pub fn new(request: &Request) -> Result<Plan, String> {
        let Request {
            hosts,
            slice,
            flows,
            outside,
            remove_rule,
            ..
        } = *request;
        if !(2..=MAX_HOSTS).contains(&hosts) {
            return Err(format!("--hosts {hosts}: between 2 and {MAX_HOSTS}"));
        }
        if !(2..=MAX_SLICE).contains(&slice) {
            return Err(format!("--slice {slice}: between 2 and {MAX_SLICE}"));
        }
        if flows == 0 || flows > usize::from(slice) {
            return Err(format!(
                "--flows {flows}: between 1 and the slice ({slice})"
            ));
        }
        if request.versions.is_empty() {
            return Err("no address family selected".to_owned());
        }
        for (name, host) in [("--outside", outside), ("--remove-rule", remove_rule)] {
            if let Some(host) = host
                && host >= hosts
            {
                return Err(format!("{name} {host}: hosts are 0..{}", hosts - 1));
            }
        }
        let total = u32::from(slice) * hosts as u32;
        let low = u32::from(POOL_START);
        let high = low + total - 1;
        // The outside host asks for the slice above the netns range.
        if high + u32::from(slice) > u32::from(u16::MAX) {
            return Err(format!(
                "--hosts {hosts} x --slice {slice}: {total} ports do not fit above {POOL_START}"
            ));
        }
        let (low, high) = (low as u16, high as u16);
        let netns_range = (low, high);
        let hosts = (0..hosts)
            .map(|index| {
                let start = low + slice * index as u16;
                let end = start + slice - 1;
                let (asked, fit) = if outside == Some(index) {
                    ((high + 1, high + slice), Fit::Outside)
                } else if index == 0 {
                    ((start - slice, end), Fit::OverlapBelow)
                } else if end == high {
                    ((start, high + slice), Fit::OverlapAbove)
                } else {
                    ((start, end), Fit::Inside)
                };
                let rule = if fit == Fit::Outside {
                    asked.0..=asked.1
                } else {
                    start..=end
                };
                let (lo, hi) = effective_range(netns_range, asked);
                HostPlan {
                    index,
                    asked,
                    fit,
                    effective: lo..=hi,
                    rule,
                }
            })
            .collect::<Vec<_>>();
        let exhaust = (0..hosts.len())
            .find(|&k| Some(k) != outside)
            .unwrap_or_default();
        Ok(Plan {
            hosts,
            netns_range,
            versions: request.versions.clone(),
            flows,
            wait: request.wait,
            exhaust,
            remove_rule,
        })
    }

    /// The hosts that share their slice fairly (all but an outside one).
    pub fn well_placed(&self) -> impl Iterator<Item = &HostPlan> {
        self.hosts.iter().filter(|h| h.fit != Fit::Outside)
    }
}

/// The address every client holds and every flow leaves from.
pub fn shared(version: IpVersion) -> IpAddr {
    match version {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1)),
    }
}

/// [`shared`] as a host prefix (`/32`, `/128`).
pub fn shared_prefix(version: IpVersion) -> Prefix {
    host_prefix(shared(version))
}

/// `addr` as a host prefix.
pub fn host_prefix(addr: IpAddr) -> Prefix {
    Prefix::new(addr, IpVersion::of(addr).max_prefix_len()).expect("host prefix")
}

/// The router's end and the client's end of client `k`'s link
/// (`10.1.k.1/24`, `10.1.k.2/24`; `2001:db8:1:k::1/64`, `::2/64`).
pub fn client_link(version: IpVersion, k: usize) -> (Prefix, Prefix) {
    let end = |host: u8| {
        match version {
            IpVersion::V4 => Prefix::new(Ipv4Addr::new(10, 1, k as u8, host), 24),
            IpVersion::V6 => Prefix::new(
                Ipv6Addr::new(0x2001, 0xdb8, 1, k as u16, 0, 0, 0, u16::from(host)),
                64,
            ),
        }
        .expect("link prefix")
    };
    (end(1), end(2))
}

/// The router's end and the server's end of the server link
/// (`10.2.0.1/24`, `10.2.0.2/24`; `2001:db8:2::1/64`, `::2/64`).
pub fn server_link(version: IpVersion) -> (Prefix, Prefix) {
    let end = |host: u8| {
        match version {
            IpVersion::V4 => Prefix::new(Ipv4Addr::new(10, 2, 0, host), 24),
            IpVersion::V6 => Prefix::new(
                Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, u16::from(host)),
                64,
            ),
        }
        .expect("link prefix")
    };
    (end(1), end(2))
}

/// The server's address.
pub fn server_addr(version: IpVersion) -> IpAddr {
    server_link(version).1.addr()
}

/// The router's interface towards client `k`.
pub fn router_link_name(k: usize) -> String {
    format!("c{k}")
}

/// What a server port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The host's ordinary flows.
    Flow,
    /// The host's exhaustion flows.
    Exhaust,
}

/// The server port client `k` sends its `purpose` flows to.
pub fn server_port(k: usize, purpose: Purpose) -> u16 {
    let base = match purpose {
        Purpose::Flow => FLOW_PORT_BASE,
        Purpose::Exhaust => EXHAUST_PORT_BASE,
    };
    base + k as u16
}

/// The host and purpose a server port belongs to.
pub fn port_owner(port: u16, hosts: usize) -> Option<(usize, Purpose)> {
    [Purpose::Flow, Purpose::Exhaust]
        .into_iter()
        .find_map(|purpose| {
            let k = usize::from(port.checked_sub(server_port(0, purpose))?);
            (k < hosts).then_some((k, purpose))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(hosts: usize, slice: u16, outside: Option<usize>) -> Request {
        Request {
            hosts,
            slice,
            versions: vec![IpVersion::V4, IpVersion::V6],
            flows: 2,
            wait: Duration::from_secs(1),
            outside,
            remove_rule: None,
        }
    }

    #[test]
    fn slices_tile_the_netns_range_and_clamp_back() {
        let plan = Plan::new(&request(4, 16, None)).unwrap();
        assert_eq!(plan.netns_range, (20000, 20063));
        let fits: Vec<Fit> = plan.hosts.iter().map(|h| h.fit).collect();
        use Fit::*;
        assert_eq!(fits, [OverlapBelow, Inside, Inside, OverlapAbove]);
        assert_eq!(plan.hosts[0].asked, (19984, 20015));
        assert_eq!(plan.hosts[3].asked, (20048, 20079));
        for (k, host) in plan.hosts.iter().enumerate() {
            let start = 20000 + 16 * k as u16;
            assert_eq!(host.effective, start..=start + 15);
            assert_eq!(host.rule, host.effective);
        }
        assert_eq!(plan.exhaust, 0);
    }

    #[test]
    fn outside_host_gets_the_netns_range_and_keeps_its_rule() {
        let plan = Plan::new(&request(4, 16, Some(0))).unwrap();
        let host = &plan.hosts[0];
        assert_eq!(host.fit, Fit::Outside);
        assert_eq!(host.asked, (20064, 20079));
        assert_eq!(host.effective, 20000..=20063);
        assert_eq!(host.rule, 20064..=20079);
        assert_eq!(plan.exhaust, 1);
    }

    #[test]
    fn bad_requests_name_the_option() {
        assert!(
            Plan::new(&request(1, 16, None))
                .unwrap_err()
                .contains("--hosts")
        );
        assert!(
            Plan::new(&request(4, 1, None))
                .unwrap_err()
                .contains("--slice")
        );
        assert!(
            Plan::new(&request(4, 16, Some(4)))
                .unwrap_err()
                .contains("--outside")
        );
        assert!(
            Plan::new(&request(64, 1024, None))
                .unwrap_err()
                .contains("do not fit")
        );
    }

    #[test]
    fn server_ports_name_their_host() {
        assert_eq!(
            port_owner(server_port(3, Purpose::Flow), 4),
            Some((3, Purpose::Flow))
        );
        assert_eq!(
            port_owner(server_port(0, Purpose::Exhaust), 4),
            Some((0, Purpose::Exhaust))
        );
        assert_eq!(port_owner(7004, 4), None);
        assert_eq!(port_owner(20000, 4), None);
    }
}
