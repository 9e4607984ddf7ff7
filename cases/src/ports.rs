//! Socket steps the cases share: binding to port 0, filling a range,
//! connecting clients, each returning the ports the kernel picked.

use std::collections::BTreeSet;
use std::io;

use harness::{CaseError, Ctx, OrFail, Proto, describe, sockopt};
use nix::errno::Errno;
use socket2::Socket;

use crate::model::{Op, exhaustion_error};
use crate::port_set::show;

/// A port the cases listen on: below every range they configure.
pub const SERVER_PORT: u16 = 30000;

/// More sockets than any case's range holds: a fill that reaches it has
/// found a range that is not enforced.
const FILL_LIMIT: usize = 64;

/// A socket of the variant with its port range set to `lo..=hi`.
pub fn socket_with_range(ctx: &Ctx, lo: u16, hi: u16) -> Result<Socket, CaseError> {
    let socket = ctx.socket()?;
    sockopt::set_port_range(&socket, lo, hi)
        .or_fail(&format!("setsockopt(IP_LOCAL_PORT_RANGE, {lo}-{hi})"))?;
    Ok(socket)
}

/// Binds `socket` to loopback port 0 and returns the port picked.
pub fn bind_zero(ctx: &Ctx, socket: &Socket) -> io::Result<u16> {
    socket.bind(&ctx.loopback(0).into())?;
    local_port(socket)
}

/// Keeps making sockets with `make` and binding them to port 0 until a
/// bind fails; returns the ports picked (sockets held open until the end)
/// and the error that stopped the fill.
pub fn fill_by_bind(
    ctx: &Ctx,
    make: impl Fn() -> Result<Socket, CaseError>,
) -> Result<(BTreeSet<u16>, io::Error), CaseError> {
    fill(make, |socket| bind_zero(ctx, socket))
}

/// Keeps making sockets with `make` and letting `pick` choose each one's
/// port (by bind, listen, connect or send) until a pick fails; returns the
/// distinct ports picked (sockets held open until the end) and the error
/// that stopped the fill.
pub fn fill(
    make: impl Fn() -> Result<Socket, CaseError>,
    pick: impl Fn(&Socket) -> io::Result<u16>,
) -> Result<(BTreeSet<u16>, io::Error), CaseError> {
    let mut held = Vec::new();
    let mut ports = BTreeSet::new();
    while held.len() < FILL_LIMIT {
        let socket = make()?;
        match pick(&socket) {
            Ok(port) => {
                if !ports.insert(port) {
                    return Err(CaseError::Fail(format!(
                        "port {port} was picked twice while other sockets held it"
                    )));
                }
                held.push(socket);
            }
            Err(e) => return Ok((ports, e)),
        }
    }
    Err(CaseError::Fail(format!(
        "{FILL_LIMIT} picks all succeeded ({}): the range was not enforced",
        show(ports.iter().copied())
    )))
}

/// The local port of a socket that has one.
pub fn local_port(socket: &Socket) -> io::Result<u16> {
    socket
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| io::Error::other("socket has a non-IP local address"))
}

/// Checks a fill picked exactly the `expected` ports, then failed with
/// `errno`.
pub fn check_fill(
    fill: (BTreeSet<u16>, io::Error),
    expected: impl IntoIterator<Item = u16>,
    errno: Errno,
) -> Result<(), CaseError> {
    let (ports, error) = fill;
    let expected: BTreeSet<u16> = expected.into_iter().collect();
    if ports != expected {
        return Err(CaseError::Fail(format!(
            "expected the ports {} to be picked, got {}",
            show(expected.iter().copied()),
            show(ports.iter().copied())
        )));
    }
    if error.raw_os_error() != Some(errno as i32) {
        return Err(CaseError::Fail(format!(
            "after {} were taken the next pick should fail with {errno:?}, got {}",
            show(expected.iter().copied()),
            describe(&error)
        )));
    }
    Ok(())
}

/// The errno the model says `op` fails with on the variant's protocol
/// once the range is used up; a harness error for an operation the model
/// does not cover there (a case asking for one is wrongly declared).
pub fn exhaustion_errno(ctx: &Ctx, op: Op) -> Result<Errno, CaseError> {
    exhaustion_error(ctx.variant.proto, op).ok_or_else(|| {
        CaseError::Harness(format!(
            "the model has no exhaustion errno for {op} on {}",
            ctx.variant
        ))
    })
}

/// Checks a fill by bind() to port 0 picked exactly the `expected` ports,
/// then failed with the model's errno for bind().
pub fn check_bind_fill(
    ctx: &Ctx,
    fill: (BTreeSet<u16>, io::Error),
    expected: impl IntoIterator<Item = u16>,
) -> Result<(), CaseError> {
    check_fill(fill, expected, exhaustion_errno(ctx, Op::BindZero)?)
}

/// Sockets set to `socket_range` pick by `op` (to a server made here on
/// the op's remote port) until a pick fails: checks they got exactly the
/// `expected` ports, then the model's exhaustion errno for `op`.
pub fn check_fill_by(
    ctx: &Ctx,
    op: Op,
    (lo, hi): (u16, u16),
    expected: impl IntoIterator<Item = u16>,
) -> Result<(), CaseError> {
    let _server = match op {
        Op::Connect { remote } | Op::SendTo { remote } => Some(server_on(ctx, remote)?),
        Op::BindZero | Op::Listen => None,
    };
    let errno = exhaustion_errno(ctx, op)?;
    let filled = fill(
        || socket_with_range(ctx, lo, hi),
        |socket| pick(ctx, socket, op),
    )?;
    check_fill(filled, expected, errno)
}

/// A listening (or, for UDP, bound) server on loopback `SERVER_PORT`.
pub fn server(ctx: &Ctx) -> Result<Socket, CaseError> {
    server_on(ctx, SERVER_PORT)
}

/// A listening (or, for UDP, bound) server on loopback `port`.
pub fn server_on(ctx: &Ctx, port: u16) -> Result<Socket, CaseError> {
    let socket = ctx.socket()?;
    socket
        .set_reuse_address(true)
        .or_fail("SO_REUSEADDR on the server")?;
    socket
        .bind(&ctx.loopback(port).into())
        .or_fail(&format!("bind() of the server on port {port}"))?;
    if ctx.variant.proto != Proto::Udp {
        socket.listen(128).or_fail("listen() of the server")?;
    }
    Ok(socket)
}

/// Connects `socket` to the server and returns the local port picked.
pub fn connect_to_server(ctx: &Ctx, socket: &Socket) -> io::Result<u16> {
    connect_to(ctx, socket, SERVER_PORT)
}

/// Connects `socket` to loopback `port` and returns the local port picked.
pub fn connect_to(ctx: &Ctx, socket: &Socket, port: u16) -> io::Result<u16> {
    socket.connect(&ctx.loopback(port).into())?;
    local_port(socket)
}

/// Makes `socket` pick a port by `op` (bind() to port 0, listen(),
/// connect() or sendto() on an unbound socket) and returns the port.
pub fn pick(ctx: &Ctx, socket: &Socket, op: Op) -> io::Result<u16> {
    match op {
        Op::BindZero => socket.bind(&ctx.loopback(0).into())?,
        Op::Listen => socket.listen(16)?,
        Op::Connect { remote } => socket.connect(&ctx.loopback(remote).into())?,
        Op::SendTo { remote } => {
            socket.send_to(&[0], &ctx.loopback(remote).into())?;
        }
    }
    local_port(socket)
}
