//! Links, addresses, routes and rules against the running kernel, in fresh
//! namespaces. Needs root (or user namespaces); without either each test
//! says why and returns early.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::RangeInclusive;
use std::thread;
use std::time::Duration;

use common::netns_or_skip;
use netns_util::netlink::Link;
use netns_util::{Error, IpVersion, Netns, Prefix, Snapshot, VethPair};
use nix::errno::Errno;
use socket2::{Domain, Socket, Type};

fn p(text: &str) -> Prefix {
    text.parse().unwrap()
}

fn v4_gateway() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses of one test network, per family.
struct Plan {
    version: IpVersion,
    /// The near end of link n (1-based) and its far end.
    near: [Prefix; 2],
    far: [Prefix; 2],
    /// The address both far namespaces hold.
    shared: Prefix,
}

fn plan(version: IpVersion) -> Plan {
    match version {
        IpVersion::V4 => Plan {
            version,
            near: [p("10.1.0.1/24"), p("10.2.0.1/24")],
            far: [p("10.1.0.2/24"), p("10.2.0.2/24")],
            shared: p("192.0.2.2/32"),
        },
        IpVersion::V6 => Plan {
            version,
            near: [p("2001:db8:1::1/64"), p("2001:db8:2::1/64")],
            far: [p("2001:db8:1::2/64"), p("2001:db8:2::2/64")],
            shared: p("2001:db8:ff::2/128"),
        },
    }
}

fn tcp_exchange(client_ns: &Netns, client_addr: SocketAddr, server_ns: &Netns, server: IpAddr) {
    let listener = server_ns
        .run(|| TcpListener::bind((server, 0)))
        .unwrap()
        .unwrap();
    let server_addr = listener.local_addr().unwrap();
    let accepted = thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(b"pong").unwrap();
        (peer, buf)
    });
    let mut stream = client_ns
        .run(|| connect_from(client_addr, server_addr))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect {client_addr} -> {server_addr}: {e}"));
    stream.write_all(b"ping").unwrap();
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).unwrap();
    let (peer, request) = accepted.join().unwrap();
    assert_eq!(&request, b"ping");
    assert_eq!(&reply, b"pong");
    assert_eq!(peer.ip(), client_addr.ip());
    if client_addr.port() != 0 {
        assert_eq!(peer, client_addr);
    }
}

/// A TCP connection from `from` (port 0: any) to `to`, made in the
/// calling thread's namespace.
fn connect_from(from: SocketAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    connect_from_within(from, to, TIMEOUT)
}

fn connect_from_within(
    from: SocketAddr,
    to: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&from.into())?;
    socket.connect_timeout(&to.into(), timeout)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    Ok(socket.into())
}

fn udp_socket(ns: &Netns, addr: SocketAddr) -> UdpSocket {
    let socket = ns.run(|| UdpSocket::bind(addr)).unwrap().unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    socket
}

fn udp_exchange(a: &Netns, a_ip: IpAddr, b: &Netns, b_ip: IpAddr) {
    let sa = udp_socket(a, SocketAddr::new(a_ip, 0));
    let sb = udp_socket(b, SocketAddr::new(b_ip, 0));
    sa.send_to(b"ping", sb.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = sb.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], sa.local_addr().unwrap()));
    sb.send_to(b"pong", from).unwrap();
    let (n, from) = sa.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"pong"[..], sb.local_addr().unwrap()));
}

/// Whether `socket` receives `expected` (true) or nothing within `wait`
/// (false).
fn received(socket: &UdpSocket, expected: &[u8], wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match socket.recv(&mut buf) {
        Ok(n) => {
            assert_eq!(&buf[..n], expected);
            true
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("recv on {:?}: {e}", socket.local_addr()),
    }
}

#[test]
fn veth_pair_carries_tcp_and_udp_over_ipv4_and_ipv6() {
    let (Some(a), Some(b)) = (netns_or_skip(), netns_or_skip()) else {
        return;
    };
    let (v4, v6) = (plan(IpVersion::V4), plan(IpVersion::V6));
    VethPair::new(&a, "a0", &b, "b0")
        .address_a(v4.near[0])
        .address_a(v6.near[0])
        .address_b(v4.far[0])
        .address_b(v6.far[0])
        .create()
        .unwrap();
    for plan in [v4, v6] {
        let (a_ip, b_ip) = (plan.near[0].addr(), plan.far[0].addr());
        tcp_exchange(&a, SocketAddr::new(a_ip, 0), &b, b_ip);
        tcp_exchange(&b, SocketAddr::new(b_ip, 0), &a, a_ip);
        udp_exchange(&a, a_ip, &b, b_ip);
    }
    let listed = b.netlink(async |nl| nl.address().list("b0").await).unwrap();
    assert!(listed.contains(&p("10.1.0.2/24")), "{listed:?}");
    assert!(listed.contains(&p("2001:db8:1::2/64")), "{listed:?}");

    // A route added and deleted; deleting it twice: ESRCH, naming it.
    let err = a
        .netlink(async |nl| {
            let route = || nl.route().add(p("192.0.2.0/24")).via(v4_gateway()).table(7);
            route().execute().await?;
            let del = || nl.route().del(p("192.0.2.0/24")).via(v4_gateway()).table(7);
            del().execute().await?;
            Ok(del().execute().await.unwrap_err())
        })
        .unwrap();
    assert_eq!(err.errno(), Some(Errno::ESRCH as i32), "{err}");
    assert!(
        err.to_string().starts_with(
            "netlink: delete route 192.0.2.0/24 via 10.1.0.2 table 7: the kernel answered ESRCH"
        ),
        "{err}"
    );
}

#[test]
fn veth_end_moves_to_another_namespace_and_is_renamed() {
    let (Some(a), Some(b)) = (netns_or_skip(), netns_or_skip()) else {
        return;
    };
    a.netlink(async |nl| {
        nl.link().add_veth("x0", "x1").execute().await?;
        nl.link().set_netns("x1", &b).await
    })
    .unwrap();
    let names = |links: Vec<Link>| links.into_iter().map(|l| l.name).collect::<Vec<_>>();
    let in_a = a.netlink(async |nl| nl.link().list().await).unwrap();
    assert_eq!(names(in_a), ["lo", "x0"]);
    let eth1 = b
        .netlink(async |nl| {
            nl.link().rename("x1", "eth1").await?;
            nl.link().up("eth1").await?;
            nl.link().get("eth1").await
        })
        .unwrap();
    assert!(eth1.up, "{eth1:?}");
    let in_b = b.netlink(async |nl| nl.link().list().await).unwrap();
    assert_eq!(names(in_b), ["lo", "eth1"]);

    // The same pair again: the kernel refuses, and the error says what.
    let err = a
        .netlink(async |nl| nl.link().add_veth("x0", "x1").execute().await)
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST as i32), "{err}");
    assert!(
        err.to_string()
            .starts_with("netlink: add veth pair x0 <-> x1: the kernel answered EEXIST"),
        "{err}"
    );

    // Deleting one end deletes the pair.
    a.netlink(async |nl| nl.link().del("x0").await).unwrap();
    let in_b = b.netlink(async |nl| nl.link().list().await).unwrap();
    assert_eq!(names(in_b), ["lo"]);
}

/// Namespace `r` joined to `b` (link rb) and `c` (link rc); `b` and `c`
/// both hold the shared address. The main table sends it through rb; table
/// 100 through rc; a rule sends destination ports 40000-40999 to table 100.
fn steering(version: IpVersion) {
    let (Some(r), Some(b), Some(c)) = (netns_or_skip(), netns_or_skip(), netns_or_skip()) else {
        return;
    };
    let plan = plan(version);
    for (i, (far, link)) in [(&b, "rb"), (&c, "rc")].into_iter().enumerate() {
        VethPair::new(&r, link, far, "eth0")
            .address_a(plan.near[i])
            .address_b(plan.far[i])
            .address_b(plan.shared)
            .create()
            .unwrap();
    }
    r.netlink(async |nl| {
        nl.route().add(plan.shared).dev("rb").execute().await?;
        nl.route()
            .add(plan.shared)
            .dev("rc")
            .table(100)
            .execute()
            .await?;
        nl.rule()
            .add(plan.version)
            .dport(40000..=40999)
            .table(100)
            .priority(100)
            .execute()
            .await
    })
    .unwrap();
    let shared = plan.shared.addr();

    // UDP from r: the destination port picks the namespace.
    let listen = |ns: &Netns, port| udp_socket(ns, SocketAddr::new(shared, port));
    let (b_low, b_high) = (listen(&b, 30000), listen(&b, 40000));
    let (c_low, c_high) = (listen(&c, 30000), listen(&c, 40000));
    let unspecified = match version {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sender = udp_socket(&r, SocketAddr::new(unspecified, 0));
    sender
        .send_to(b"low", SocketAddr::new(shared, 30000))
        .unwrap();
    sender
        .send_to(b"high", SocketAddr::new(shared, 40000))
        .unwrap();
    // Neighbour discovery on fresh links can take a retransmission (1 s);
    // once the expected datagrams are in, the others had their chance.
    let short = Duration::from_millis(200);
    assert!(
        received(&b_low, b"low", TIMEOUT),
        "port 30000 did not reach b"
    );
    assert!(
        received(&c_high, b"high", TIMEOUT),
        "port 40000 did not reach c"
    );
    assert!(
        !received(&b_high, b"high", short),
        "port 40000 reached b too"
    );
    assert!(!received(&c_low, b"low", short), "port 30000 reached c too");

    // TCP from b and c to r: r's replies find their way back by port.
    tcp_exchange(&b, SocketAddr::new(shared, 30001), &r, plan.near[0].addr());
    tcp_exchange(&c, SocketAddr::new(shared, 40001), &r, plan.near[1].addr());

    // Without the rule, r's SYN-ACK to c's port goes to b: no connection.
    r.netlink(async |nl| {
        let rules = nl.rule().list(plan.version).await?;
        let rule = rules.iter().find(|rule| rule.priority == 100).unwrap();
        assert_eq!(rule.dport, Some(40000..=40999));
        nl.rule().del(rule).await
    })
    .unwrap();
    let to = SocketAddr::new(plan.near[1].addr(), 9);
    let refused = c.run(|| {
        let listener = r.run(|| TcpListener::bind(SocketAddr::new(to.ip(), 0)));
        let to = listener.unwrap().unwrap().local_addr().unwrap();
        connect_from_within(
            SocketAddr::new(shared, 40002),
            to,
            Duration::from_millis(1500),
        )
    });
    assert!(refused.unwrap().is_err(), "connected without the rule");
}

#[test]
fn dport_rule_steers_ipv4_replies() {
    steering(IpVersion::V4);
}

#[test]
fn dport_rule_steers_ipv6_replies() {
    steering(IpVersion::V6);
}

#[test]
fn rules_round_trip_through_list_and_delete() {
    let Some(ns) = netns_or_skip() else { return };
    ns.netlink(async |nl| {
        let defaults_v4 = nl.rule().list(IpVersion::V4).await?;
        let defaults_v6 = nl.rule().list(IpVersion::V6).await?;
        let rule = nl.rule();
        rule.add(IpVersion::V4)
            .dport(40000..=40999)
            .table(100)
            .priority(100)
            .execute()
            .await?;
        rule.add(IpVersion::V4)
            .sport(1000..=2000)
            .ip_proto(17)
            .table(101)
            .priority(101)
            .execute()
            .await?;
        rule.add(IpVersion::V4)
            .from(p("10.0.0.0/8"))
            .to(p("192.0.2.0/24"))
            .table(102)
            .priority(102)
            .execute()
            .await?;
        rule.add(IpVersion::V6)
            .dport(50000..=50000)
            .from(p("2001:db8::/32"))
            .table(1000)
            .priority(100)
            .execute()
            .await?;

        let v4 = rule.list(IpVersion::V4).await?;
        let v6 = rule.list(IpVersion::V6).await?;
        assert_eq!(v4.len(), defaults_v4.len() + 3, "{v4:#?}");
        assert_eq!(v6.len(), defaults_v6.len() + 1, "{v6:#?}");
        let by_priority = |rules: &[netns_util::netlink::Rule], priority| {
            rules
                .iter()
                .find(|r| r.priority == priority)
                .cloned()
                .unwrap()
        };
        let r100 = by_priority(&v4, 100);
        assert_eq!(
            (r100.table, r100.dport.clone(), r100.sport.clone()),
            (100, Some(40000..=40999), None)
        );
        let r101 = by_priority(&v4, 101);
        assert_eq!(
            (r101.table, r101.sport.clone(), r101.ip_proto),
            (101, Some(1000..=2000), Some(17))
        );
        let r102 = by_priority(&v4, 102);
        assert_eq!(
            (r102.table, r102.from, r102.to),
            (102, Some(p("10.0.0.0/8")), Some(p("192.0.2.0/24")))
        );
        let r6 = by_priority(&v6, 100);
        assert_eq!(
            (r6.version, r6.table, r6.dport.clone(), r6.from),
            (
                IpVersion::V6,
                1000,
                Some(50000..=50000),
                Some(p("2001:db8::/32"))
            )
        );

        // The same rule twice: EEXIST.
        let err = rule
            .add(IpVersion::V4)
            .dport(40000..=40999)
            .table(100)
            .priority(100)
            .execute()
            .await
            .unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EEXIST as i32), "{err}");

        for r in v4
            .iter()
            .chain(&v6)
            .filter(|r| r.priority == 100 || r.priority == 101 || r.priority == 102)
        {
            rule.del(r).await?;
        }
        assert_eq!(rule.list(IpVersion::V4).await?, defaults_v4);
        assert_eq!(rule.list(IpVersion::V6).await?, defaults_v6);

        // Deleting it again: ENOENT, naming the rule.
        let err = rule.del(&r100).await.unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENOENT as i32), "{err}");
        assert!(
            err.to_string().starts_with(
                "netlink: delete v4 rule priority 100 lookup 100: the kernel answered ENOENT"
            ),
            "{err}"
        );

        // An inverted range: EINVAL, with the kernel's explanation.
        let err = rule
            .add(IpVersion::V4)
            .dport(RangeInclusive::new(50, 40))
            .table(100)
            .execute()
            .await
            .unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EINVAL as i32), "{err}");
        eprintln!("{err}");
        assert!(err.to_string().contains("dport 50-40"), "{err}");

        // An IPv6 prefix in an IPv4 rule never reaches the kernel.
        let err = rule
            .add(IpVersion::V4)
            .from(p("2001:db8::/32"))
            .execute()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn unknown_links_are_named_in_errors() {
    let Some(ns) = netns_or_skip() else { return };
    let other = Netns::new().unwrap();
    let errors = ns
        .netlink(async |nl| {
            Ok(vec![
                nl.address().add("nope0", p("10.0.0.1/24")).execute().await,
                nl.address().list("nope0").await.map(drop),
                nl.route()
                    .add(p("10.0.0.0/24"))
                    .dev("nope0")
                    .execute()
                    .await,
                nl.link().set_netns("nope0", &other).await,
                nl.link().rename("nope0", "nope1").await,
                nl.link().up("nope0").await,
                nl.link().del("nope0").await,
            ])
        })
        .unwrap();
    for result in errors {
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), "no link named \"nope0\" in the namespace");
    }
    // A route through a gateway nobody can reach: the kernel's answer.
    let err = ns
        .netlink(async |nl| {
            nl.route()
                .add(p("10.0.0.0/24"))
                .via(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)))
                .execute()
                .await
        })
        .unwrap_err();
    eprintln!("{err}");
    assert!(
        err.to_string().starts_with(
            "netlink: add route 10.0.0.0/24 via 10.9.9.9 table 254: the kernel answered ENETUNREACH"
        ),
        "{err}"
    );
}

#[test]
fn host_is_left_alone() {
    let Some(a) = netns_or_skip() else { return };
    let before = Snapshot::current().unwrap();
    let b = Netns::new().unwrap();
    VethPair::new(&a, "a0", &b, "b0")
        .address_a(p("10.1.0.1/24"))
        .address_b(p("10.1.0.2/24"))
        .create()
        .unwrap();
    a.sysctl_write("net.ipv4.ip_local_port_range", "40000 40999")
        .unwrap();
    a.sysctl_write("net.ipv4.ip_local_reserved_ports", "40001")
        .unwrap();
    a.netlink(async |nl| {
        nl.route()
            .add(Prefix::DEFAULT_V4)
            .via(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)))
            .table(100)
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
    let inside = a.snapshot().unwrap();
    assert_ne!(inside, before);
    assert!(inside.rules.iter().any(|r| r.dport == Some(40000..=40999)));
    assert!(inside.links.iter().any(|l| l.name == "a0" && l.up));
    assert_eq!(
        inside.sysctls[0],
        (
            "net.ipv4.ip_local_port_range".to_owned(),
            "40000\t40999".to_owned()
        )
    );
    drop((a, b));
    let after = Snapshot::current().unwrap();
    assert_eq!(after, before);
}
