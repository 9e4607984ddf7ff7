//! Helpers shared by netns-util's tests.

use netns_util::Netns;

/// A fresh namespace, or `None` after saying why there is none (no root and
/// no user namespaces): the test then returns early.
pub fn netns_or_skip() -> Option<Netns> {
    match Netns::new() {
        Ok(ns) => Some(ns),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}
