//! Helpers shared by netns-util's tests.

use netns_util::Netns;

/// A fresh namespace, or `None` after saying why there is none (no root and
/// no user namespaces): the test then returns early, or fails when
/// `PORTRANGE_REQUIRE` includes `root`. Any other failure fails the test.
pub fn netns_or_skip() -> Option<Netns> {
    match Netns::new() {
        Ok(ns) => Some(ns),
        Err(e) if e.is_no_privileges() => {
            require::skip_or_fail(require::Requirement::Root, &e.to_string());
            None
        }
        Err(e) => panic!("creating a namespace: {e}"),
    }
}
