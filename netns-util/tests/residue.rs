//! The cleanliness check against each kind of residue, with real sockets,
//! links, routes and rules in real namespaces. Needs root (or user
//! namespaces); without either each test says why and returns early.

mod common;

use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::netns_or_skip;
use netns_util::{FreshState, IpVersion, Netns, Residue, SocketCount};

/// A namespace with `lo` up, its fresh state and its socket count.
struct Fresh {
    ns: Netns,
    state: FreshState,
    count: SocketCount,
}

fn fresh() -> Option<Fresh> {
    let ns = netns_or_skip()?;
    ns.loopback_up().unwrap();
    let state = ns.fresh_state().unwrap();
    let count = ns.socket_count().unwrap();
    Some(Fresh { ns, state, count })
}

/// The residue once sockets closed in the namespace (the test's and the
/// previous check's own netlink sockets) have left the count: some are
/// freed after an RCU grace period, so this checks every 50 ms until two
/// checks in a row agree (at most 2 s).
fn settled(fresh: &Fresh) -> Vec<Residue> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut previous = None;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let residue = fresh.ns.residue(&fresh.state, &fresh.count).unwrap();
        if previous.as_ref() == Some(&residue) || Instant::now() > deadline {
            return residue;
        }
        previous = Some(residue);
    }
}

#[test]
fn a_fresh_namespace_has_no_residue() {
    let Some(fresh) = fresh() else { return };
    assert_eq!(settled(&fresh), vec![]);
}

#[test]
fn closed_sockets_leave_nothing() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .run(|| {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            drop((udp, listener));
        })
        .unwrap();
    assert_eq!(settled(&fresh), vec![]);
}

#[test]
fn a_listening_socket_is_residue() {
    let Some(fresh) = fresh() else { return };
    let listener = fresh
        .ns
        .run(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 40000)).unwrap())
        .unwrap();
    let residue = settled(&fresh);
    assert!(
        residue.contains(&Residue::Socket("tcp LISTEN 127.0.0.1:40000".into()))
            || !fresh.state.has_sock_diag(),
        "{residue:?}"
    );
    assert!(residue.contains(&Residue::SocketsInUse(1)), "{residue:?}");
    drop(listener);
}

#[test]
fn a_time_wait_socket_is_residue() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .run(|| {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            // The client closes first, so the client's end goes to TIME_WAIT
            // once the server's FIN arrives.
            drop(client);
            std::thread::sleep(Duration::from_millis(20));
            drop(server);
            drop(listener);
        })
        .unwrap();
    let residue = settled(&fresh);
    assert!(
        residue.contains(&Residue::TimeWait(1)),
        "no TIME_WAIT in {residue:?}"
    );
    assert!(
        !fresh.state.has_sock_diag()
            || residue
                .iter()
                .any(|r| r.to_string().contains("TIME_WAIT 127.0.0.1")),
        "the dump names no TIME_WAIT socket: {residue:?}"
    );
}

#[test]
fn a_bound_udp_socket_is_residue() {
    let Some(fresh) = fresh() else { return };
    let socket = fresh
        .ns
        .run(|| UdpSocket::bind((Ipv4Addr::LOCALHOST, 40001)).unwrap())
        .unwrap();
    let residue = settled(&fresh);
    assert!(residue.contains(&Residue::SocketsInUse(1)), "{residue:?}");
    assert!(
        !fresh.state.has_sock_diag()
            || residue
                .iter()
                .any(|r| r.to_string() == "socket udp CLOSE 127.0.0.1:40001"),
        "{residue:?}"
    );
    drop(socket);
}

#[test]
fn a_raw_socket_no_dump_lists_is_still_counted() {
    let Some(fresh) = fresh() else { return };
    let socket = fresh
        .ns
        .run(|| {
            socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::ICMPV4),
            )
            .unwrap()
        })
        .unwrap();
    let residue = settled(&fresh);
    assert!(residue.contains(&Residue::SocketsInUse(1)), "{residue:?}");
    drop(socket);
}

#[test]
fn an_mptcp_socket_is_counted() {
    let Some(fresh) = fresh() else { return };
    let socket = fresh.ns.run(|| {
        socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::MPTCP),
        )
    });
    let Ok(Ok(socket)) = socket else {
        eprintln!("skipped: this kernel has no MPTCP");
        return;
    };
    let residue = settled(&fresh);
    assert!(
        residue
            .iter()
            .any(|r| matches!(r, Residue::SocketsInUse(n) if *n >= 1)),
        "{residue:?}"
    );
    drop(socket);
}

#[test]
fn the_port_sysctls_are_written_back() {
    let Some(fresh) = fresh() else { return };
    let fresh_range = fresh
        .ns
        .sysctl_read("net.ipv4.ip_local_port_range")
        .unwrap();
    fresh
        .ns
        .sysctl_write("net.ipv4.ip_local_port_range", "40000 40009")
        .unwrap();
    fresh
        .ns
        .sysctl_write("net.ipv4.ip_local_reserved_ports", "40005")
        .unwrap();
    assert_eq!(settled(&fresh), vec![]);
    assert_eq!(
        fresh
            .ns
            .sysctl_read("net.ipv4.ip_local_port_range")
            .unwrap(),
        fresh_range
    );
    assert_eq!(
        fresh
            .ns
            .sysctl_read("net.ipv4.ip_local_reserved_ports")
            .unwrap(),
        ""
    );
}

#[test]
fn another_changed_sysctl_is_residue() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .sysctl_write("net.ipv4.ip_unprivileged_port_start", "2000")
        .unwrap();
    let residue = settled(&fresh);
    assert!(
        matches!(residue.as_slice(), [Residue::Sysctl { key, now, .. }]
            if key == "net.ipv4.ip_unprivileged_port_start" && now == "2000"),
        "{residue:?}"
    );
}

#[test]
fn an_extra_link_is_residue() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .netlink(async |nl| nl.link().add_veth("extra0", "extra1").execute().await)
        .unwrap();
    let residue = settled(&fresh);
    let links: Vec<_> = residue
        .iter()
        .filter(|r| matches!(r, Residue::Extra { kind: "link", .. }))
        .collect();
    assert_eq!(links.len(), 2, "{residue:?}");
}

#[test]
fn lo_down_is_residue() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .netlink(async |nl| nl.link().down("lo").await)
        .unwrap();
    let residue = settled(&fresh);
    assert!(
        residue.iter().any(
            |r| matches!(r, Residue::Missing { kind: "link", item } if item.ends_with("lo up"))
        ),
        "{residue:?}"
    );
}

#[test]
fn an_extra_address_route_and_rule_are_residue() {
    let Some(fresh) = fresh() else { return };
    fresh
        .ns
        .netlink(async |nl| {
            nl.address()
                .add("lo", "192.0.2.1/32".parse()?)
                .execute()
                .await?;
            nl.route()
                .add("198.51.100.0/24".parse()?)
                .dev("lo")
                .execute()
                .await?;
            nl.rule()
                .add(IpVersion::V4)
                .dport(40000..=40999)
                .table(100)
                .priority(100)
                .execute()
                .await
        })
        .unwrap();
    let residue = settled(&fresh);
    for kind in ["address", "route", "rule"] {
        assert!(
            residue
                .iter()
                .any(|r| matches!(r, Residue::Extra { kind: k, .. } if *k == kind)),
            "no extra {kind} in {residue:?}"
        );
    }
}
