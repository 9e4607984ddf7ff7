//! The option on sockets the kernel makes from another: those accept()
//! returns and, for SCTP, those peeled off a one-to-many socket.
//!
//! TCP and MPTCP clone the listener (inet_csk_clone_lock() and
//! mptcp_sk_clone_init() go through sk_clone_lock(), whose sock_copy()
//! copies the whole socket, `inet_sock` and its `local_port_range`
//! included): the accepted socket starts with the listener's range. SCTP
//! builds the accepted socket (sctp_v4/v6_create_accept_sk()) and the
//! peeled-off one (sctp_do_peeloff()) with sk_alloc(), which zeroes it, and
//! sctp_copy_sock(), which copies a list of fields that does not include
//! the range: they start without one. The same in 6.1 and 6.12.

use std::os::fd::{FromRawFd, OwnedFd};

use harness::sockopt::{self, pack};
use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Proto, Setup, check_eq, describe};
use socket2::{Domain, Protocol, Socket, Type};

use crate::ports::{SERVER_PORT, connect_to, server_on, socket_with_range};

const SETUP: Setup = Setup::netns_range(40000, 49999);

/// The listener's range.
const LISTENER: (u16, u16) = (41000, 41003);

/// The client's range, different so a value taken from the wrong end shows.
const CLIENT: (u16, u16) = (42000, 42003);

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    vec![
        CaseDef::new("accept/socket_inherits_listener_range", inherits)
            .protos(&[Proto::Tcp, Proto::Mptcp])
            .setup(SETUP),
        CaseDef::new("accept/sctp_socket_starts_without_a_range", starts_unset)
            .protos(&[Proto::Sctp])
            .setup(SETUP),
        CaseDef::new("peeloff/sctp_socket_starts_without_a_range", peeled_off)
            .protos(&[Proto::Sctp])
            .families(Family::BOTH)
            .setup(SETUP),
    ]
}

/// A listener with [`LISTENER`] set accepts a client with [`CLIENT`]
/// set; returns both ends of the connection and the listener.
fn accepted(ctx: &Ctx) -> Result<(Socket, Socket, Socket), CaseError> {
    let listener = server_on(ctx, SERVER_PORT)?;
    sockopt::set_port_range(&listener, LISTENER.0, LISTENER.1)
        .or_fail("setsockopt(IP_LOCAL_PORT_RANGE) on the listener")?;
    let client = socket_with_range(ctx, CLIENT.0, CLIENT.1)?;
    connect_to(ctx, &client, SERVER_PORT).or_fail("connect() to the listener")?;
    let (child, _) = listener.accept().or_fail("accept()")?;
    Ok((child, client, listener))
}

/// The accepted socket reads the listener's range (not the client's), and
/// keeps it when the listener's changes afterwards: a copy, not a share.
fn inherits(ctx: &Ctx) -> Result<(), CaseError> {
    let (child, _client, listener) = accepted(ctx)?;
    let want = pack(LISTENER.0, LISTENER.1);
    check_eq!(
        sockopt::get_port_range_raw(&child).or_fail("getsockopt on the accepted socket")?,
        want,
        "the accepted socket's range"
    );
    sockopt::set_port_range_raw(&listener, 0).or_fail("clearing the listener's range")?;
    check_eq!(
        sockopt::get_port_range_raw(&child).or_fail("getsockopt on the accepted socket")?,
        want,
        "the accepted socket's range after the listener's was cleared"
    );
    Ok(())
}

/// An accepted SCTP socket reads 0 although its listener has a range.
fn starts_unset(ctx: &Ctx) -> Result<(), CaseError> {
    let (child, _client, _listener) = accepted(ctx)?;
    check_eq!(
        sockopt::get_port_range_raw(&child).or_fail("getsockopt on the accepted socket")?,
        0,
        "the accepted SCTP socket's range (sctp_copy_sock() does not copy it)"
    );
    Ok(())
}

const SOL_SCTP: libc::c_int = 132;
const SCTP_GET_ASSOC_ID_LIST: libc::c_int = 29;
const SCTP_SOCKOPT_PEELOFF: libc::c_int = 102;

/// A one-to-many SCTP socket with [`LISTENER`] set takes an association
/// from a one-to-one client; the socket peeled off it reads 0.
fn peeled_off(ctx: &Ctx) -> Result<(), CaseError> {
    let domain = match ctx.variant.family {
        Family::V4 => Domain::IPV4,
        Family::V6 | Family::V4Mapped => Domain::IPV6,
    };
    let many = Socket::new(domain, Type::SEQPACKET, Some(Protocol::from(132)))
        .or_fail("socket(SOCK_SEQPACKET, IPPROTO_SCTP)")?;
    many.bind(&ctx.loopback(SERVER_PORT).into())
        .or_fail("bind() of the one-to-many socket")?;
    sockopt::set_port_range(&many, LISTENER.0, LISTENER.1)
        .or_fail("setsockopt(IP_LOCAL_PORT_RANGE) on the one-to-many socket")?;
    many.listen(8)
        .or_fail("listen() of the one-to-many socket")?;
    let client = socket_with_range(ctx, CLIENT.0, CLIENT.1)?;
    connect_to(ctx, &client, SERVER_PORT).or_fail("connect() to the one-to-many socket")?;
    let id = only_association(&many)?;
    let peeled = peel_off(&many, id)?;
    check_eq!(
        sockopt::get_port_range_raw(&peeled).or_fail("getsockopt on the peeled-off socket")?,
        0,
        "the peeled-off SCTP socket's range (sctp_copy_sock() does not copy it)"
    );
    check_eq!(
        sockopt::get_port_range_raw(&many).or_fail("getsockopt on the one-to-many socket")?,
        pack(LISTENER.0, LISTENER.1),
        "the one-to-many socket's own range after the peel-off"
    );
    Ok(())
}

/// The id of the one association on `socket` (SCTP_GET_ASSOC_ID_LIST:
/// a count, then the ids).
fn only_association(socket: &Socket) -> Result<i32, CaseError> {
    let mut list = [0u8; 16];
    let len = libc::socklen_t::try_from(list.len()).expect("16 bytes");
    sockopt::get_into(socket, SOL_SCTP, SCTP_GET_ASSOC_ID_LIST, &mut list, len).map_err(|e| {
        CaseError::Harness(format!(
            "getsockopt(SCTP_GET_ASSOC_ID_LIST): {}",
            describe(&e)
        ))
    })?;
    let word = |i: usize| u32::from_ne_bytes(list[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    match word(0) {
        1 => Ok(word(1) as i32),
        n => Err(CaseError::Harness(format!(
            "expected one association on the one-to-many socket, found {n}"
        ))),
    }
}

/// The socket SCTP_SOCKOPT_PEELOFF branches off `socket` for association
/// `id` (sctp_peeloff_arg_t: the association id, then the new descriptor,
/// which the call also returns).
fn peel_off(socket: &Socket, id: i32) -> Result<OwnedFd, CaseError> {
    let mut arg = [id.to_ne_bytes(), (-1i32).to_ne_bytes()].concat();
    let len = libc::socklen_t::try_from(arg.len()).expect("8 bytes");
    let what = format!("getsockopt(SCTP_SOCKOPT_PEELOFF) of association {id}");
    sockopt::get_into(socket, SOL_SCTP, SCTP_SOCKOPT_PEELOFF, &mut arg, len)
        .map_err(|e| CaseError::Fail(format!("{what}: {}", describe(&e))))?;
    let fd = i32::from_ne_bytes(arg[4..8].try_into().expect("4 bytes"));
    if fd < 0 {
        return Err(CaseError::Fail(format!(
            "{what}: no descriptor came back ({fd})"
        )));
    }
    // SAFETY: the kernel just made this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
