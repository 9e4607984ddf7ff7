//! Ports picked implicitly: connect(), listen() and sendmsg() on a socket
//! with no port yet, and IP_BIND_ADDRESS_NO_PORT deferring the pick.

use std::collections::BTreeSet;

use harness::{CaseDef, CaseError, Ctx, OrFail, Proto, Setup, check, check_eq, sockopt};
use socket2::{SockAddr, SockAddrStorage, Socket};

use crate::model::Op;
use crate::port_set::show;
use crate::ports::{
    SERVER_PORT, check_fill_by, connect_to, connect_to_server, exhaustion_errno, local_port,
    server, server_on, socket_with_range,
};

const WIDE: Setup = Setup::netns_range(40000, 49999);

/// The cases of this module, each in the namespace range 40000-49999.
pub fn cases() -> Vec<CaseDef> {
    [
        CaseDef::new("connect/autobind_picks_from_socket_range", connect_autobind),
        CaseDef::new(
            "connect/exhausted_range_is_eaddrnotavail",
            connect_exhausted,
        )
        .protos(&[Proto::Tcp, Proto::Mptcp]),
        CaseDef::new("connect/exhausted_range_is_eagain", connect_exhausted)
            .protos(&[Proto::Udp, Proto::Sctp]),
        CaseDef::new(
            "connect/local_port_shared_across_destinations",
            shared_across_destinations,
        )
        .protos(&[Proto::Tcp, Proto::Mptcp]),
        CaseDef::new(
            "connect/local_port_not_shared_across_destinations",
            not_shared_across_destinations,
        )
        .protos(&[Proto::Udp, Proto::Sctp]),
        CaseDef::new(
            "connect/bind_address_no_port_defers_pick_to_connect",
            bind_address_no_port,
        ),
        CaseDef::new(
            "connect/af_unspec_releases_port_and_next_pick_uses_range",
            disconnect_releases,
        )
        .protos(&[Proto::Udp]),
        CaseDef::new("sendmsg/autobind_picks_from_socket_range", sendmsg_autobind)
            .protos(&[Proto::Udp]),
        CaseDef::new("listen/autobind_picks_from_socket_range", listen_autobind)
            .protos(Proto::STREAM),
    ]
    .into_iter()
    .map(|case| case.setup(WIDE))
    .collect()
}

/// Four clients with the range 41000..=41003 connect to one server without
/// binding first: each gets a distinct port of that range.
fn connect_autobind(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (41000, 41003);
    let _server = server(ctx)?;
    let mut clients = Vec::new();
    let mut ports = BTreeSet::new();
    for n in 1..=4 {
        let client = socket_with_range(ctx, lo, hi)?;
        let port = connect_to_server(ctx, &client).or_fail(&format!("connect() of client {n}"))?;
        check!(
            (lo..=hi).contains(&port),
            "client {n} was given port {port}, outside its range {lo}..={hi}"
        );
        ports.insert(port);
        clients.push(client);
    }
    check!(
        ports.len() == 4,
        "four clients to one destination share ports: {}",
        show(ports.iter().copied())
    );
    Ok(())
}

/// Clients with a two-port range connecting to one server take both ports,
/// then the next connect() fails with the protocol's errno.
fn connect_exhausted(ctx: &Ctx) -> Result<(), CaseError> {
    let op = Op::Connect {
        remote: SERVER_PORT,
    };
    check_fill_by(ctx, op, (41000, 41001), 41000..=41001)
}

/// TCP keeps 4-tuples unique, not local ports: with both ports of a
/// two-port range connected to server A, clients still reach server B on
/// those same ports; a third client to A gets EADDRNOTAVAIL.
fn shared_across_destinations(ctx: &Ctx) -> Result<(), CaseError> {
    let (_a, _b) = (
        server_on(ctx, SERVER_PORT)?,
        server_on(ctx, SERVER_PORT + 1)?,
    );
    let mut held = Vec::new();
    let mut to_a = BTreeSet::new();
    for n in 1..=2 {
        let client = socket_with_range(ctx, 41000, 41001)?;
        to_a.insert(
            connect_to(ctx, &client, SERVER_PORT).or_fail(&format!("connect() #{n} to A"))?,
        );
        held.push(client);
    }
    check_eq!(
        to_a,
        BTreeSet::from([41000, 41001]),
        "ports of the two clients to A"
    );
    for n in 1..=2 {
        let client = socket_with_range(ctx, 41000, 41001)?;
        let port = connect_to(ctx, &client, SERVER_PORT + 1).or_fail(&format!(
            "connect() #{n} to B while A holds every port of the range"
        ))?;
        check!(
            to_a.contains(&port),
            "client #{n} to B got port {port}, outside 41000..=41001"
        );
        held.push(client);
    }
    let extra = socket_with_range(ctx, 41000, 41001)?;
    let errno = exhaustion_errno(
        ctx,
        Op::Connect {
            remote: SERVER_PORT,
        },
    )?;
    harness::expect_errno(
        connect_to(ctx, &extra, SERVER_PORT),
        errno,
        "third connect() to A with every 4-tuple busy",
    )
}

/// UDP (and SCTP) give each autobound socket a port of its own: with both
/// ports of a two-port range taken by clients of server A, a client of
/// server B fails with EAGAIN.
fn not_shared_across_destinations(ctx: &Ctx) -> Result<(), CaseError> {
    let (_a, _b) = (
        server_on(ctx, SERVER_PORT)?,
        server_on(ctx, SERVER_PORT + 1)?,
    );
    let mut held = Vec::new();
    for n in 1..=2 {
        let client = socket_with_range(ctx, 41000, 41001)?;
        connect_to(ctx, &client, SERVER_PORT).or_fail(&format!("connect() #{n} to A"))?;
        held.push(client);
    }
    let to_b = socket_with_range(ctx, 41000, 41001)?;
    let errno = exhaustion_errno(
        ctx,
        Op::Connect {
            remote: SERVER_PORT + 1,
        },
    )?;
    harness::expect_errno(
        connect_to(ctx, &to_b, SERVER_PORT + 1),
        errno,
        "connect() to B with both ports of the range taken by clients of A",
    )
}

/// What IP_BIND_ADDRESS_NO_PORT does on a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoPort {
    /// bind(addr, 0) leaves the port unset; connect() picks it
    /// (inet_bind() skips get_port while the option is on: TCP, UDP,
    /// MPTCP, whose bind goes to its first subflow's inet_bind()).
    Defers,
    /// Expected unsupported (kselftest's XFAIL), with the reason: the
    /// option is accepted but bind() picks the port anyway.
    Unsupported(&'static str),
}

/// Per protocol, what the option is expected to do.
fn no_port(proto: Proto) -> NoPort {
    match proto {
        Proto::Tcp | Proto::Udp | Proto::Mptcp => NoPort::Defers,
        Proto::Sctp => NoPort::Unsupported(
            "SCTP's bind() (sctp_do_bind() -> sctp_get_port_local()) picks the port itself and \
             never reads IP_BIND_ADDRESS_NO_PORT, which only inet_bind() honours",
        ),
    }
}

/// With IP_BIND_ADDRESS_NO_PORT, bind(addr, 0) leaves the port unset and
/// connect() picks it from the socket range. Where the option is expected
/// unsupported (SCTP), bind() picks the port from the socket range at once,
/// connect() keeps it, and the case says so in its note (XFAIL); a port
/// left unset there is a failure (an unexpected pass, XPASS).
fn bind_address_no_port(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (41000, 41003);
    let _server = server(ctx)?;
    let client = socket_with_range(ctx, lo, hi)?;
    sockopt::set_bind_address_no_port(&client, true).or_fail("IP_BIND_ADDRESS_NO_PORT")?;
    client
        .bind(&ctx.loopback(0).into())
        .or_fail("bind(loopback, 0)")?;
    let bound = local_port(&client).or_fail("getsockname() after bind")?;
    if let NoPort::Unsupported(reason) = no_port(ctx.variant.proto) {
        check!(
            bound != 0,
            "XPASS: bind() left the port unset, though the option is expected unsupported here ({reason})"
        );
        check!(
            (lo..=hi).contains(&bound),
            "bind() picked {bound}, outside {lo}..={hi}"
        );
        let port = connect_to_server(ctx, &client).or_fail("connect()")?;
        check_eq!(port, bound, "port after connect()");
        ctx.note(format!("XFAIL: expected unsupported: {reason}"));
        return Ok(());
    }
    check_eq!(bound, 0, "port after bind()");
    let port = connect_to_server(ctx, &client).or_fail("connect()")?;
    check!(
        (lo..=hi).contains(&port),
        "connect() picked {port}, outside {lo}..={hi}"
    );
    Ok(())
}

/// connect(AF_UNSPEC) on a UDP socket whose port connect() picked gives
/// the port back (__udp_disconnect() unhashes a socket without a port
/// bound by the user), and its next connect() picks from its range again.
/// With the one-port range 41000: A connects and holds 41000, B's
/// connect() runs out; A disconnects (its port reads 0) and B's connect()
/// gets 41000; A's next connect() runs out in turn (it picks from its
/// range, not the netns range); once B is closed A gets 41000 again.
fn disconnect_releases(ctx: &Ctx) -> Result<(), CaseError> {
    let port = 41000;
    let op = Op::Connect {
        remote: SERVER_PORT,
    };
    let errno = exhaustion_errno(ctx, op)?;
    let _server = server(ctx)?;
    let a = socket_with_range(ctx, port, port)?;
    let b = socket_with_range(ctx, port, port)?;
    check_eq!(
        connect_to_server(ctx, &a).or_fail("A's connect()")?,
        port,
        "A's port"
    );
    harness::expect_errno(
        connect_to_server(ctx, &b),
        errno,
        "B's connect() while A holds the range's one port",
    )?;
    disconnect(&a).or_fail("A's connect(AF_UNSPEC)")?;
    check_eq!(
        local_port(&a).or_fail("getsockname() of A after connect(AF_UNSPEC)")?,
        0,
        "A's port after connect(AF_UNSPEC)"
    );
    check_eq!(
        connect_to_server(ctx, &b).or_fail("B's connect() after A gave its port back")?,
        port,
        "B's port"
    );
    harness::expect_errno(
        connect_to_server(ctx, &a),
        errno,
        "A's connect() again while B holds the range's one port",
    )?;
    drop(b);
    check_eq!(
        connect_to_server(ctx, &a).or_fail("A's connect() after B was closed")?,
        port,
        "A's port on its next connect()"
    );
    Ok(())
}

/// connect() to an address of family AF_UNSPEC: dissolves the association.
fn disconnect(socket: &Socket) -> std::io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr>()).expect("16");
    // SAFETY: zeroed storage is a sockaddr of family AF_UNSPEC, and it
    // holds at least `len` bytes.
    let address = unsafe { SockAddr::new(SockAddrStorage::zeroed(), len) };
    socket.connect(&address)
}

/// An unbound UDP socket sending a datagram is autobound from its range;
/// once the two-port range is taken, sendmsg() fails with EAGAIN.
fn sendmsg_autobind(ctx: &Ctx) -> Result<(), CaseError> {
    let op = Op::SendTo {
        remote: SERVER_PORT,
    };
    check_fill_by(ctx, op, (41000, 41001), 41000..=41001)
}

/// listen() on an unbound socket autobinds from the socket range; a full
/// range gives EADDRINUSE (TCP, MPTCP) or EAGAIN (SCTP).
fn listen_autobind(ctx: &Ctx) -> Result<(), CaseError> {
    check_fill_by(ctx, Op::Listen, (41000, 41003), 41000..=41003)
}
