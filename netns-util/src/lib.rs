//! Network namespaces for tests.
//!
//! A [`Netns`] is a fresh network namespace kept alive by an open file
//! descriptor; dropping it releases the namespace (the kernel frees it once
//! the last socket opened inside it is closed too). Code runs inside a
//! namespace on a thread of its own ([`Netns::run`]), because `setns()` and
//! `unshare()` act on the calling thread only and a pooled thread moved into
//! a namespace would carry it into unrelated work.
//!
//! Configuration goes through rtnetlink (links, addresses, routes, policy
//! rules) and through `/proc/sys` opened from inside the namespace
//! (sysctls). Nothing here changes the namespace the process started in:
//! every write happens on a thread that has entered a namespace this crate
//! created.
//!
//! The rtnetlink side mirrors rtnetlink's shape: [`Netlink`] hands out one
//! handle per object (links, addresses, routes, rules) whose verbs are
//! builders ending in `execute().await`:
//!
//! ```no_run
//! # use netns_util::{IpVersion, Netns, Prefix, VethPair};
//! # fn main() -> Result<(), netns_util::Error> {
//! let (a, b) = (Netns::new()?, Netns::new()?);
//! VethPair::new(&a, "a0", &b, "b0")
//!     .address_a("10.0.0.1/24".parse()?)
//!     .address_b("10.0.0.2/24".parse()?)
//!     .create()?;
//! a.netlink(async |nl| {
//!     nl.route()
//!         .add("192.0.2.0/24".parse()?)
//!         .via("10.0.0.2".parse::<std::net::IpAddr>().unwrap())
//!         .table(100)
//!         .execute()
//!         .await?;
//!     nl.rule()
//!         .add(IpVersion::V4)
//!         .dport(40000..=40999)
//!         .table(100)
//!         .priority(100)
//!         .execute()
//!         .await
//! })?;
//! # Ok(()) }
//! ```
//!
//! This crate knows nothing about ports; it is the plumbing the conformance
//! harness stands on.

mod error;
mod loopback;
pub mod netlink;
mod netns;
mod panic;
mod prefix;
mod privileges;
mod snapshot;
mod sysctl;
mod veth;

pub use error::{Error, error_chain};
pub use netlink::Netlink;
pub use netns::Netns;
pub use panic::panic_text;
pub use prefix::{IpVersion, Prefix};
pub use privileges::{Privileges, ensure_privileges};
pub use snapshot::{SNAPSHOT_SYSCTLS, Snapshot};
pub use veth::VethPair;
