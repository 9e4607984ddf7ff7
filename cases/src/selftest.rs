//! The cases that answer the kernel's own selftest for this option
//! (`tools/testing/selftests/net/ip_local_port_range.c`, 6.12): the one list
//! behind every comparison with it (the benchmarks read it with
//! `portrange list --selftest-equivalent`).

use harness::{Case, Family};

/// The properties that answer the selftest's assertions, grouped by the
/// selftest's own test names.
pub const PROPERTIES: &[&str] = &[
    // invalid_option_value: optlen 2, lo > hi, optlen 8 give EINVAL.
    "sockopt/optlen_not_4_is_einval",
    "sockopt/lo_above_hi_is_einval",
    // port_range_out_of_netns_range: a socket range below or above the
    // netns range gives ports from the netns range.
    "precedence/range_below_netns_range_is_ignored",
    "precedence/range_above_netns_range_is_ignored",
    // single_port_range: `45000-45000`, `0-40000`, `49999-0` give that port.
    "clamp/one_port_range",
    "clamp/zero_bound_reaching_netns_edge_gives_one_port",
    // exhaust_8_port_range: 8 binds in range, then EADDRINUSE.
    "bind_zero/eight_port_range_exhausts_with_eaddrinuse",
    // late_bind: with IP_BIND_ADDRESS_NO_PORT the port is picked at connect().
    "connect/bind_address_no_port_defers_pick_to_connect",
    // get_port_range: a fresh socket reads 0, a range reads back, 0 clears.
    "sockopt/round_trip",
    "sockopt/zero_clears",
];

/// Whether `case` is one of [`PROPERTIES`] on a variant the selftest has
/// (IPv4 and IPv6 sockets of each protocol; it has no IPv4-mapped IPv6).
pub fn is_equivalent(case: &Case) -> bool {
    let property = case.name.split_once('/').map_or("", |(_, p)| p);
    [Family::V4, Family::V6].contains(&case.variant.family) && PROPERTIES.contains(&property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_is_in_the_catalogue_on_both_families() {
        let equivalent: Vec<String> = crate::catalogue()
            .into_iter()
            .filter(is_equivalent)
            .map(|case| case.name)
            .collect();
        for property in PROPERTIES {
            for variant in ["tcp4", "tcp6"] {
                let name = format!("{variant}/{property}");
                assert!(equivalent.contains(&name), "{name} missing");
            }
        }
        assert!(!equivalent.iter().any(|name| name.contains("4in6/")));
    }
}
