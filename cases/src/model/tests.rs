//! Tests of the model itself: worked examples from the kernel sources and
//! the option's specification, then properties over random configurations.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn expected(config: &Config) -> Option<Expected> {
    expected_on(config, Profile::Upstream)
}

fn config(proto: Proto, netns_range: (u16, u16), socket_range: (u16, u16), op: Op) -> Config {
    Config::new(proto, netns_range, socket_range, op)
}

fn ports(list: impl IntoIterator<Item = u16>) -> Expected {
    Expected {
        ports: list.into_iter().collect(),
        error: None,
    }
}

fn error(errno: Errno) -> Expected {
    Expected {
        ports: BTreeSet::new(),
        error: Some(errno),
    }
}

fn bound(port: u16) -> Taken {
    Taken {
        port,
        holder: Holder::Bound,
        reuse_addr: false,
    }
}

/// Pretends the kernel picked `port`: the socket now holds it.
fn hold(config: &mut Config, port: u16) {
    let holder = match config.op {
        Op::Listen => Holder::Listener,
        Op::Connect { remote } | Op::SendTo { remote } => match config.proto {
            Proto::Tcp | Proto::Mptcp => Holder::AutoboundConnected { remote },
            Proto::Udp | Proto::Sctp => Holder::BoundThenConnected { remote },
        },
        Op::BindZero => Holder::Bound,
    };
    config.taken.push(Taken {
        port,
        holder,
        reuse_addr: config.reuse_addr,
    });
}

#[test]
fn clamping_follows_spec_examples() {
    let netns = (40000, 49999);
    // Rows: (socket range, effective range).
    for (socket, want) in [
        // narrower: as asked
        ((40100, 40199), (40100, 40199)),
        // wholly outside, the egress scenario's outside host
        ((50000, 50015), netns),
    ] {
        assert_eq!(
            effective_range(netns, socket),
            want,
            "{socket:?} in {netns:?}"
        );
    }
    assert_eq!(effective_range(netns, (30000, 45000)), (40000, 45000));
    assert_eq!(effective_range(netns, (45000, 60000)), (45000, 49999));
    assert_eq!(effective_range(netns, (50000, 50010)), netns);
    assert_eq!(effective_range(netns, (30000, 30010)), netns);
    assert_eq!(effective_range(netns, (0, 0)), netns);
    assert_eq!(effective_range(netns, (0, 41000)), (40000, 41000));
    assert_eq!(effective_range(netns, (41000, 0)), (41000, 49999));
    assert_eq!(effective_range(netns, (42000, 42000)), (42000, 42000));
}

#[test]
fn tcp_bind_zero_skips_the_top_of_an_odd_range_and_prefers_odd_offsets() {
    for proto in [Proto::Tcp, Proto::Mptcp] {
        let mut c = config(proto, (40000, 49999), (45000, 45002), Op::BindZero);
        assert_eq!(expected(&c), Some(ports([45001])));
        c.taken.push(bound(45001));
        assert_eq!(expected(&c), Some(ports([45000])));
        c.taken.push(bound(45000));
        assert_eq!(expected(&c), Some(error(Errno::EADDRINUSE)));
    }
}

#[test]
fn udp_and_sctp_bind_zero_use_every_port() {
    for proto in [Proto::Udp, Proto::Sctp] {
        let c = config(proto, (40000, 49999), (45000, 45002), Op::BindZero);
        assert_eq!(expected(&c), Some(ports([45000, 45001, 45002])));
    }
}

#[test]
fn tcp_reuseaddr_scans_the_lower_half_first() {
    // 10 ports: half = lo + ((10 >> 2) << 1) = lo + 4.
    let mut c = config(Proto::Tcp, (40000, 40009), (0, 0), Op::BindZero);
    c.reuse_addr = true;
    assert_eq!(expected(&c), Some(ports([40001, 40003])));
    c.taken.extend([40001, 40003].map(bound));
    assert_eq!(expected(&c), Some(ports([40000, 40002])));
    c.taken.extend([40000, 40002].map(bound));
    assert_eq!(expected(&c), Some(ports([40005, 40007, 40009])));
}

#[test]
fn tcp_connect_without_socket_range_prefers_even_offsets() {
    let c = config(
        Proto::Tcp,
        (40000, 40006),
        (0, 0),
        Op::Connect { remote: 1 },
    );
    // 7 ports rounded to 6: 40006 is never scanned.
    assert_eq!(expected(&c), Some(ports([40000, 40002, 40004])));
    // Any socket range, even one the clamp ignores, switches to step 1.
    let c = config(
        Proto::Tcp,
        (40000, 40006),
        (1, 2),
        Op::Connect { remote: 1 },
    );
    assert_eq!(expected(&c), Some(ports(40000..=40006)));
}

#[test]
fn tcp_connect_shares_a_port_across_destinations_udp_does_not() {
    let held = |proto, remote| Taken {
        port: 45000,
        holder: match proto {
            Proto::Tcp => Holder::AutoboundConnected { remote },
            _ => Holder::BoundThenConnected { remote },
        },
        reuse_addr: false,
    };
    let mut tcp = config(
        Proto::Tcp,
        (40000, 49999),
        (45000, 45000),
        Op::Connect { remote: 2 },
    );
    tcp.taken.push(held(Proto::Tcp, 1));
    assert_eq!(expected(&tcp), Some(ports([45000])));
    tcp.taken.push(held(Proto::Tcp, 2));
    assert_eq!(expected(&tcp), Some(error(Errno::EADDRNOTAVAIL)));

    let mut udp = config(
        Proto::Udp,
        (40000, 49999),
        (45000, 45000),
        Op::Connect { remote: 2 },
    );
    udp.taken.push(held(Proto::Udp, 1));
    assert_eq!(expected(&udp), Some(error(Errno::EAGAIN)));
}

#[test]
fn tcp_connect_never_shares_a_port_taken_by_bind() {
    let mut c = config(
        Proto::Tcp,
        (40000, 49999),
        (45000, 45000),
        Op::Connect { remote: 2 },
    );
    c.taken.push(Taken {
        port: 45000,
        holder: Holder::BoundThenConnected { remote: 1 },
        reuse_addr: true,
    });
    assert_eq!(expected(&c), Some(error(Errno::EADDRNOTAVAIL)));
}

#[test]
fn udp_shares_between_reuseaddr_sockets_only() {
    let mut c = config(Proto::Udp, (40000, 49999), (45000, 45000), Op::BindZero);
    c.taken.push(Taken {
        port: 45000,
        holder: Holder::Bound,
        reuse_addr: true,
    });
    assert_eq!(expected(&c), Some(error(Errno::EADDRINUSE)));
    c.reuse_addr = true;
    assert_eq!(expected(&c), Some(ports([45000])));
}

#[test]
fn tcp_odd_range_top_is_reached_from_some_offsets_only() {
    // 5 ports: remaining = 4 and high = lo + 5, so the even pass started
    // at offset 2 runs lo+2, lo+4 (the top: below high, no wrap) and never
    // reaches lo; started at 0 it runs lo, lo+2.
    let mut c = config(Proto::Tcp, (40000, 40004), (0, 0), Op::BindZero);
    c.taken.extend([40000, 40001, 40002, 40003].map(bound));
    assert_eq!(
        expected(&c),
        Some(Expected {
            ports: [40004].into(),
            error: Some(Errno::EADDRINUSE)
        })
    );
    let mut c = config(Proto::Tcp, (40000, 40004), (0, 0), Op::BindZero);
    c.taken.extend([40001, 40002, 40003, 40004].map(bound));
    assert_eq!(
        expected(&c),
        Some(Expected {
            ports: [40000].into(),
            error: Some(Errno::EADDRINUSE)
        })
    );
}

#[test]
fn stable_6_1_connect_keeps_the_parity_passes_with_a_socket_range() {
    let c = config(
        Proto::Tcp,
        (40000, 49999),
        (45000, 45004),
        Op::Connect { remote: 1 },
    );
    assert_eq!(
        expected_on(&c, Profile::Stable61),
        Some(ports([45000, 45002]))
    );
    assert_eq!(expected(&c), Some(ports(45000..=45004)));
}

#[test]
fn uncovered_operations_have_no_expectation() {
    let c = config(Proto::Udp, (40000, 40010), (0, 0), Op::Listen);
    assert_eq!(expected(&c), None);
    let c = config(Proto::Tcp, (40000, 40010), (0, 0), Op::SendTo { remote: 1 });
    assert_eq!(expected(&c), None);
}

const REMOTES: [u16; 3] = [30001, 30002, 30003];

fn any_proto() -> impl Strategy<Value = Proto> {
    prop::sample::select(Proto::ALL.to_vec())
}

fn any_op() -> impl Strategy<Value = Op> {
    let remote = prop::sample::select(REMOTES.to_vec());
    prop_oneof![
        Just(Op::BindZero),
        Just(Op::Listen),
        remote.clone().prop_map(|remote| Op::Connect { remote }),
        remote.prop_map(|remote| Op::SendTo { remote }),
    ]
}

fn any_holder() -> impl Strategy<Value = Holder> {
    let remote = prop::sample::select(REMOTES.to_vec());
    prop_oneof![
        Just(Holder::Bound),
        Just(Holder::Listener),
        remote
            .clone()
            .prop_map(|remote| Holder::BoundThenConnected { remote }),
        remote.prop_map(|remote| Holder::AutoboundConnected { remote }),
    ]
}

/// A socket bound: unset, or near the netns range on either side.
fn bound_near(l: u16, h: u16) -> impl Strategy<Value = u16> {
    prop_oneof![
        1 => Just(0u16),
        6 => l.saturating_sub(20)..=h.saturating_add(20),
    ]
}

prop_compose! {
    fn any_config()(
        proto in any_proto(),
        op in any_op(),
        l in 1024u16..=65500,
        size in 1u16..=24,
    )(
        proto in Just(proto),
        op in Just(op),
        netns_range in Just((l, l.saturating_add(size - 1))),
        sl in bound_near(l, l.saturating_add(size - 1)),
        sh in bound_near(l, l.saturating_add(size - 1)),
        reserved in prop::collection::btree_set(l.saturating_sub(3)..=l.saturating_add(size + 2), 0..8),
        taken in prop::collection::vec(
            (l.saturating_sub(3)..=l.saturating_add(size + 2), any_holder(), any::<bool>()),
            0..30,
        ),
        reuse_addr in any::<bool>(),
    ) -> Config {
        let socket_range = if sl != 0 && sh != 0 && sl > sh { (sh, sl) } else { (sl, sh) };
        Config {
            proto,
            netns_range,
            socket_range,
            reserved,
            taken: taken
                .into_iter()
                .map(|(port, holder, reuse_addr)| Taken { port, holder, reuse_addr })
                .collect(),
            reuse_addr,
            op,
        }
    }
}

/// Whether another socket keeps the operation off `port`, stated from the
/// socket side rather than the scan side.
fn conflicts(c: &Config, port: u16) -> bool {
    c.taken
        .iter()
        .filter(|t| t.port == port)
        .any(|t| match c.proto {
            Proto::Udp => !(t.reuse_addr && c.reuse_addr),
            Proto::Sctp => true,
            Proto::Tcp | Proto::Mptcp => match (c.op, t.holder) {
                (Op::Connect { remote }, Holder::AutoboundConnected { remote: r }) => r == remote,
                _ => true,
            },
        })
}

/// The ports of the effective range no other socket keeps the operation off.
fn left(c: &Config) -> Vec<u16> {
    let (lo, hi) = effective_range(c.netns_range, c.socket_range);
    (lo..=hi)
        .filter(|&p| !c.reserved.contains(&p) && !conflicts(c, p))
        .collect()
}

/// Whether the kernel's pick depends on a random offset over a count
/// rounded to even: TCP and MPTCP bind(0) and listen(), and connect()
/// without a socket range.
fn rounds(c: &Config) -> bool {
    match (c.proto, c.op) {
        (Proto::Tcp | Proto::Mptcp, Op::BindZero | Op::Listen) => true,
        (Proto::Tcp | Proto::Mptcp, Op::Connect { .. }) => c.socket_range == (0, 0),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn effective_range_lies_in_netns_range_and_keeps_bounds_that_fit(c in any_config()) {
        let (l, h) = c.netns_range;
        let (sl, sh) = c.socket_range;
        let (lo, hi) = effective_range(c.netns_range, c.socket_range);
        prop_assert!(l <= lo && lo <= hi && hi <= h);
        prop_assert_eq!(lo == sl, (l..=h).contains(&sl));
        if (lo..=h).contains(&sh) {
            prop_assert_eq!(hi, sh);
        } else {
            prop_assert_eq!(hi, h);
        }
        if sl != 0 && sh != 0 && (sh < l || sl > h) {
            prop_assert_eq!((lo, hi), (l, h), "a socket range outside the netns range is ignored");
        }
        if sl != 0 && sh != 0 && sl <= h && sh >= l {
            prop_assert_eq!((lo, hi), (sl.max(l), sh.min(h)), "an overlap is used as is");
        }
    }

    #[test]
    fn picks_are_in_range_unreserved_and_unheld(c in any_config()) {
        let Some(e) = expected(&c) else { return Ok(()) };
        let (lo, hi) = effective_range(c.netns_range, c.socket_range);
        for &port in &e.ports {
            prop_assert!((lo..=hi).contains(&port), "{} outside {}..={}", port, lo, hi);
            prop_assert!(!c.reserved.contains(&port), "reserved {} picked", port);
            prop_assert!(!conflicts(&c, port), "held {} picked", port);
        }
    }

    #[test]
    fn an_error_only_when_at_most_one_port_is_left(c in any_config()) {
        let Some(e) = expected(&c) else { return Ok(()) };
        let left = left(&c);
        if let Some(errno) = e.error {
            prop_assert_eq!(Some(errno), exhaustion_error(c.proto, c.op));
            prop_assert!(left.len() <= 1, "{:?} possible although {:?} are left", errno, left);
        } else {
            prop_assert!(!e.ports.is_empty(), "neither a port nor an error");
        }
        if left.is_empty() {
            prop_assert!(e.ports.is_empty());
        }
        if !rounds(&c) {
            // UDP, SCTP and TCP connect() with a socket range: any free
            // port, and an error exactly when none is.
            prop_assert_eq!(e.ports.iter().copied().collect::<Vec<_>>(), left.clone());
            prop_assert_eq!(e.error.is_some(), left.is_empty());
        }
    }

    #[test]
    fn freeing_a_port_never_makes_an_error_possible(c in any_config(), index in any::<prop::sample::Index>()) {
        let Some(before) = expected(&c) else { return Ok(()) };
        let mut fewer = c.clone();
        if !fewer.taken.is_empty() {
            fewer.taken.remove(index.index(c.taken.len()));
        }
        if let Some(&port) = c.reserved.iter().nth(index.index(c.reserved.len().max(1))) {
            fewer.reserved.remove(&port);
        }
        let after = expected(&fewer).expect("same operation");
        if before.error.is_none() {
            prop_assert!(after.error.is_none());
        }
        if !before.ports.is_empty() {
            prop_assert!(!after.ports.is_empty());
        }
    }

    #[test]
    fn profiles_differ_only_in_tcp_connect_with_a_socket_range(c in any_config()) {
        let upstream = expected_on(&c, Profile::Upstream);
        let stable = expected_on(&c, Profile::Stable61);
        let connect_tcp = matches!(c.op, Op::Connect { .. }) && matches!(c.proto, Proto::Tcp | Proto::Mptcp);
        if !connect_tcp || c.socket_range == (0, 0) {
            prop_assert_eq!(upstream, stable);
        } else if let (Some(upstream), Some(stable)) = (upstream, stable) {
            // The step-2 scan finds a subset of what the step-1 scan can.
            prop_assert!(stable.ports.is_subset(&upstream.ports));
        }
    }

    #[test]
    fn unset_socket_range_means_the_netns_range(c in any_config()) {
        let mut unset = c.clone();
        unset.socket_range = (0, 0);
        let mut wide = c.clone();
        wide.socket_range = unset.netns_range;
        let connect_tcp = matches!(c.op, Op::Connect { .. }) && matches!(c.proto, Proto::Tcp | Proto::Mptcp);
        if !connect_tcp {
            // Only TCP connect() tells "unset" from "set to the netns range".
            prop_assert_eq!(expected(&unset), expected(&wide));
        }
    }

    #[test]
    fn filling_takes_the_free_ports_then_fails(c in any_config(), picks in prop::collection::vec(any::<prop::sample::Index>(), 64)) {
        let mut c = c;
        c.taken.clear();
        if c.proto == Proto::Udp {
            // Two SO_REUSEADDR UDP sockets may share a port: no fill ends.
            c.reuse_addr = false;
        }
        let Some(_) = expected(&c) else { return Ok(()) };
        let free: BTreeSet<u16> = left(&c).into_iter().collect();
        let mut got = BTreeSet::new();
        for index in &picks {
            let e = expected(&c).expect("same operation");
            if e.ports.is_empty() {
                prop_assert_eq!(e.error, exhaustion_error(c.proto, c.op));
                break;
            }
            let port = *e.ports.iter().nth(index.index(e.ports.len())).unwrap();
            prop_assert!(got.insert(port), "{} picked twice", port);
            hold(&mut c, port);
        }
        prop_assert!(got.is_subset(&free));
        if rounds(&c) {
            prop_assert!(got.len() + 1 >= free.len(), "{:?} of {:?}", got, free);
        } else {
            prop_assert_eq!(got, free);
        }
    }

    #[test]
    fn tcp_reuseaddr_bind_stays_in_the_lower_half_while_it_has_room(c in any_config()) {
        let mut c = c;
        c.proto = Proto::Tcp;
        c.op = Op::BindZero;
        c.reuse_addr = true;
        let (lo, hi) = effective_range(c.netns_range, c.socket_range);
        let count = u32::from(hi) + 1 - u32::from(lo);
        prop_assume!(count >= 4);
        let half = u32::from(lo) + ((count >> 2) << 1);
        let lower_free = left(&c).iter().any(|&p| u32::from(p) < half);
        let e = expected(&c).expect("covered");
        if lower_free {
            prop_assert!(e.error.is_none());
            prop_assert!(e.ports.iter().all(|&p| u32::from(p) < half));
        } else {
            prop_assert!(e.ports.iter().all(|&p| u32::from(p) >= half));
        }
    }
}
