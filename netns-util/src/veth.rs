//! A veth pair between two namespaces, configured in one call.

use crate::{Error, Netns, Prefix};

/// A veth pair joining two namespaces, with addresses on either end; both
/// ends come up. A building block for topologies, not a topology.
///
/// ```no_run
/// # use netns_util::{Netns, VethPair};
/// # fn main() -> Result<(), netns_util::Error> {
/// let (a, b) = (Netns::new()?, Netns::new()?);
/// VethPair::new(&a, "a0", &b, "b0")
///     .address_a("10.0.0.1/24".parse()?)
///     .address_b("10.0.0.2/24".parse()?)
///     .create()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VethPair<'a> {
    ends: [End<'a>; 2],
}

#[derive(Debug)]
struct End<'a> {
    netns: &'a Netns,
    name: String,
    addresses: Vec<Prefix>,
}

impl<'a> VethPair<'a> {
    /// A pair with end `a_name` in `a` and end `b_name` in `b` (`a` and `b`
    /// may be the same namespace).
    pub fn new(a: &'a Netns, a_name: &str, b: &'a Netns, b_name: &str) -> Self {
        let end = |netns, name: &str| End {
            netns,
            name: name.to_owned(),
            addresses: Vec::new(),
        };
        Self {
            ends: [end(a, a_name), end(b, b_name)],
        }
    }

    /// Adds `prefix` to end a (IPv6 without duplicate address detection).
    pub fn address_a(mut self, prefix: Prefix) -> Self {
        self.ends[0].addresses.push(prefix);
        self
    }

    /// Adds `prefix` to end b (IPv6 without duplicate address detection).
    pub fn address_b(mut self, prefix: Prefix) -> Self {
        self.ends[1].addresses.push(prefix);
        self
    }

    /// Creates the pair in a's namespace with b's end born in b's, adds the
    /// addresses and sets both ends up.
    pub fn create(self) -> Result<(), Error> {
        let [a, b] = &self.ends;
        a.netns.netlink(async |nl| {
            nl.link()
                .add_veth(&a.name, &b.name)
                .peer_netns(b.netns)
                .execute()
                .await
        })?;
        for end in &self.ends {
            end.netns.netlink(async |nl| {
                for prefix in &end.addresses {
                    nl.address().add(&end.name, *prefix).execute().await?;
                }
                nl.link().up(&end.name).await
            })?;
        }
        Ok(())
    }
}
