//! The namespaces and their wiring, built over rtnetlink with netns-util.
//!
//! ```text
//!  client 0 (eth0: 10.1.0.2, 192.0.2.1) --c0--+
//!  client 1 (eth0: 10.1.1.2, 192.0.2.1) --c1--+-- router --srv-- server (10.2.0.2)
//!  ...                                        |
//! ```
//! Every client holds the shared address; the router's main table knows
//! no route to it. Return traffic finds its client only through the
//! policy rules: `dport <client k's slice> lookup <100 + k>`, where table
//! `100 + k` sends the shared address out of `ck`. No NAT, no conntrack.

use netns_util::{Error, IpVersion, Netns, Prefix, VethPair};

use super::plan::{
    self, Plan, RULE_PRIORITY_BASE, TABLE_BASE, client_link, router_link_name, server_link,
    shared_prefix,
};

/// The namespaces of one run; dropping it releases them.
#[derive(Debug)]
pub struct Topology {
    /// Forwards between clients and server, steers replies by port.
    pub router: Netns,
    /// Runs the echo services.
    pub server: Netns,
    /// One per host, in host order.
    pub clients: Vec<Netns>,
}

/// How long a new veth end may take to become operational.
const LINK_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Topology {
    /// Creates and wires every namespace for `plan`.
    pub fn build(plan: &Plan) -> Result<Topology, Error> {
        let topology = Topology {
            router: Netns::new()?,
            server: Netns::new()?,
            clients: (0..plan.hosts.len())
                .map(|_| Netns::new())
                .collect::<Result<_, _>>()?,
        };
        // Link-local addresses usable at once: no DAD on links made later.
        for ns in topology.all() {
            ns.loopback_up()?;
            for scope in ["all", "default"] {
                ns.sysctl_write(&format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
            }
        }
        let router = &topology.router;
        router.sysctl_write("net.ipv4.ip_forward", "1")?;
        router.sysctl_write("net.ipv6.conf.all.forwarding", "1")?;
        // A client's packets arrive on its own link while the main table has
        // no route back to the shared address: keep reverse-path filtering
        // (which a new namespace may inherit from the host) out of the way,
        // so that what is tested is the return path alone.
        for scope in ["all", "default"] {
            router.sysctl_write(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")?;
        }
        let (low, high) = plan.netns_range;
        for client in &topology.clients {
            client.sysctl_write("net.ipv4.ip_local_port_range", &format!("{low} {high}"))?;
        }

        let mut server_link_pair = VethPair::new(router, "srv", &topology.server, "eth0");
        for &version in &plan.versions {
            let (near, far) = server_link(version);
            server_link_pair = server_link_pair.address_a(near).address_b(far);
        }
        server_link_pair.create()?;
        let versions = &plan.versions;
        default_routes(&topology.server, versions, |v| server_link(v).0.addr())?;

        for (k, client) in topology.clients.iter().enumerate() {
            let name = router_link_name(k);
            let mut pair = VethPair::new(router, &name, client, "eth0");
            for &version in versions {
                let (near, far) = client_link(version, k);
                pair = pair
                    .address_a(near)
                    .address_b(far)
                    .address_b(shared_prefix(version));
            }
            pair.create()?;
            default_routes(client, versions, |v| client_link(v, k).0.addr())?;
            let rule = plan.hosts[k].rule.clone();
            router.netlink(async |nl| {
                for &version in versions {
                    let table = TABLE_BASE + k as u32;
                    nl.route()
                        .add(shared_prefix(version))
                        .dev(&name)
                        .table(table)
                        .execute()
                        .await?;
                    nl.rule()
                        .add(version)
                        .dport(rule.clone())
                        .table(table)
                        .priority(RULE_PRIORITY_BASE + k as u32)
                        .execute()
                        .await?;
                }
                Ok(())
            })?;
        }
        topology.wait_until_running(plan.hosts.len())?;
        Ok(topology)
    }

    /// Waits until every veth end is operational: the first flows (IPv6 in
    /// particular) would otherwise race the kernel's link watcher.
    fn wait_until_running(&self, hosts: usize) -> Result<(), Error> {
        let router_links: Vec<String> = std::iter::once("srv".to_owned())
            .chain((0..hosts).map(router_link_name))
            .collect();
        let ends = std::iter::once((&self.router, router_links)).chain(
            self.clients
                .iter()
                .chain([&self.server])
                .map(|ns| (ns, vec!["eth0".to_owned()])),
        );
        for (ns, links) in ends {
            ns.netlink(async |nl| {
                for link in &links {
                    nl.link().wait_running(link, LINK_READY_TIMEOUT).await?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Deletes host `k`'s policy rules (every family) from the router;
    /// returns how many it deleted.
    pub fn remove_rules(&self, k: usize, versions: &[IpVersion]) -> Result<usize, Error> {
        let table = TABLE_BASE + k as u32;
        self.router.netlink(async |nl| {
            let mut deleted = 0;
            for &version in versions {
                for rule in nl.rule().list(version).await? {
                    if rule.table == table {
                        nl.rule().del(&rule).await?;
                        deleted += 1;
                    }
                }
            }
            Ok(deleted)
        })
    }

    fn all(&self) -> impl Iterator<Item = &Netns> {
        [&self.router, &self.server]
            .into_iter()
            .chain(&self.clients)
    }
}

/// Adds a default route per family in `ns`, via `gateway(version)`.
fn default_routes(
    ns: &Netns,
    versions: &[IpVersion],
    gateway: impl Fn(IpVersion) -> std::net::IpAddr + Sync,
) -> Result<(), Error> {
    ns.netlink(async |nl| {
        for &version in versions {
            nl.route()
                .add(default_route(version))
                .via(gateway(version))
                .execute()
                .await?;
        }
        Ok(())
    })
}

fn default_route(version: IpVersion) -> Prefix {
    match version {
        IpVersion::V4 => Prefix::DEFAULT_V4,
        IpVersion::V6 => Prefix::DEFAULT_V6,
    }
}

/// The addresses a report names.
pub fn describe_addresses(plan: &Plan) -> String {
    plan.versions
        .iter()
        .map(|&v| format!("shared {} server {}", plan::shared(v), plan::server_addr(v)))
        .collect::<Vec<_>>()
        .join("; ")
}
