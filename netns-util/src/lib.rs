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
//! This crate knows nothing about ports; it is the plumbing the conformance
//! harness stands on.

mod error;
mod netlink;
mod netns;
mod privileges;
mod sysctl;

pub use error::Error;
pub use netlink::Netlink;
pub use netns::Netns;
pub use privileges::{Privileges, ensure_privileges};
