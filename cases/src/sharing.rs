//! A port another socket holds, inside a one-port socket range: which
//! holders bind() to port 0 may share that port with (SO_REUSEADDR,
//! SO_REUSEPORT, another address, a wildcard, the IPv6 wildcard with and
//! without IPV6_V6ONLY). The picker either gets the range's one port or
//! the model's exhaustion errno for bind() (EADDRINUSE).
//!
//! From the 6.12 sources (6.1 alike): TCP and MPTCP search with
//! inet_csk_find_open_port(), whose conflict check runs with `relax` and
//! `reuseport_ok` off, so SO_REUSEADDR and SO_REUSEPORT never let bind(0)
//! share, while sockets on two different specific addresses do not
//! conflict; UDP's udp_lib_lport_inuse() lets two SO_REUSEADDR sockets,
//! two SO_REUSEPORT sockets of one user and two different specific
//! addresses share; SCTP's sctp_get_port_local() skips every port with a
//! bind bucket, whoever holds it. A wildcard conflicts with every address
//! of its family, and an IPv6 wildcard without IPV6_V6ONLY with IPv4's too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use harness::{
    CaseDef, CaseError, Ctx, Family, OrFail, Proto, Setup, Variant, check_eq, expect_errno,
};
use socket2::Socket;

use crate::model::{Config, Holder, Op, Taken, expected_on};
use crate::ports::{exhaustion_errno, local_port};

/// The one port of every picker's range.
const PORT: u16 = 41000;

/// The netns range of every case here.
const NETNS: (u16, u16) = (40000, 49999);

const SETUP: Setup = Setup::netns_range(NETNS.0, NETNS.1);

/// What the picker's bind(0) gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    /// The held port: the two sockets share it.
    Picks,
    /// No port: the range's one port is in use for this socket.
    InUse,
}

/// UDP shares; TCP, MPTCP and SCTP do not.
fn only_udp_shares(proto: Proto) -> Share {
    match proto {
        Proto::Udp => Share::Picks,
        Proto::Tcp | Proto::Mptcp | Proto::Sctp => Share::InUse,
    }
}

/// Every protocol but SCTP shares.
fn all_but_sctp_share(proto: Proto) -> Share {
    match proto {
        Proto::Sctp => Share::InUse,
        Proto::Tcp | Proto::Udp | Proto::Mptcp => Share::Picks,
    }
}

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    let v4 = &[Family::V4];
    vec![
        CaseDef::new("share/so_reuseaddr_holder_in_one_port_range", reuse_addr),
        CaseDef::new("share/so_reuseport_holder_in_one_port_range", reuse_port),
        CaseDef::new(
            "share/holder_on_other_address_in_one_port_range",
            other_address,
        )
        .families(v4),
        CaseDef::new("share/wildcard_holder_in_one_port_range", wildcard_holder).families(v4),
        CaseDef::new("share/wildcard_picker_in_one_port_range", wildcard_picker).families(v4),
        CaseDef::with(
            "share/ipv6_wildcard_dual_stack_holder_in_one_port_range",
            false,
            ipv6_wildcard,
        )
        .families(&[Family::V6]),
        CaseDef::with(
            "share/ipv6_wildcard_v6only_holder_in_one_port_range",
            true,
            ipv6_wildcard,
        )
        .families(&[Family::V6]),
    ]
    .into_iter()
    .map(|case| case.setup(SETUP))
    .collect()
}

/// A socket of `variant` with the given reuse options.
fn socket_of(variant: Variant, reuse_addr: bool, reuse_port: bool) -> Result<Socket, CaseError> {
    let socket = variant
        .socket()
        .or_fail(&format!("socket() for {variant}"))?;
    socket
        .set_reuse_address(reuse_addr)
        .or_fail("SO_REUSEADDR")?;
    socket.set_reuse_port(reuse_port).or_fail("SO_REUSEPORT")?;
    Ok(socket)
}

/// Binds `holder` to `held` (port [`PORT`]), then sets `picker`'s range
/// to [`PORT`] alone and binds it to `at` with port 0: checks the outcome
/// is `share` (the port, or the model's errno for bind()).
fn check_share(
    ctx: &Ctx,
    (holder, held): (Socket, IpAddr),
    (picker, at): (Socket, IpAddr),
    share: Share,
) -> Result<(), CaseError> {
    holder
        .bind(&SocketAddr::new(held, PORT).into())
        .or_fail(&format!("bind() of the holder to {held} port {PORT}"))?;
    harness::sockopt::set_port_range(&picker, PORT, PORT)
        .or_fail(&format!("setsockopt(IP_LOCAL_PORT_RANGE, {PORT}-{PORT})"))?;
    let what =
        format!("bind({at}, 0) with the range {PORT}-{PORT} while {held} port {PORT} is held");
    let got = picker
        .bind(&SocketAddr::new(at, 0).into())
        .and_then(|()| local_port(&picker));
    match share {
        Share::Picks => {
            let port = got.or_fail(&what)?;
            check_eq!(port, PORT, "{what}: the port picked");
            Ok(())
        }
        Share::InUse => {
            let errno = exhaustion_errno(ctx, Op::BindZero)?;
            expect_errno(got, errno, &what)
        }
    }
}

/// Both sockets have SO_REUSEADDR (neither listens): the model says who
/// shares (UDP only).
fn reuse_addr(ctx: &Ctx) -> Result<(), CaseError> {
    let config = Config {
        taken: vec![Taken {
            port: PORT,
            holder: Holder::Bound,
            reuse_addr: true,
        }],
        reuse_addr: true,
        ..Config::new(ctx.variant.proto, NETNS, (PORT, PORT), Op::BindZero)
    };
    let expected = expected_on(&config, harness::profile::Profile::Upstream)
        .ok_or_else(|| CaseError::Harness("the model does not cover bind(0)".into()))?;
    let share = if expected.ports.contains(&PORT) {
        Share::Picks
    } else {
        Share::InUse
    };
    let lo = ctx.variant.family.loopback();
    check_share(
        ctx,
        (socket_of(ctx.variant, true, false)?, lo),
        (socket_of(ctx.variant, true, false)?, lo),
        share,
    )
}

/// Both sockets have SO_REUSEPORT (same user): only UDP shares.
fn reuse_port(ctx: &Ctx) -> Result<(), CaseError> {
    let lo = ctx.variant.family.loopback();
    check_share(
        ctx,
        (socket_of(ctx.variant, false, true)?, lo),
        (socket_of(ctx.variant, false, true)?, lo),
        only_udp_shares(ctx.variant.proto),
    )
}

/// The holder is on 127.0.0.1, the picker binds 127.0.0.2: different
/// specific addresses share a port, except on SCTP.
fn other_address(ctx: &Ctx) -> Result<(), CaseError> {
    check_share(
        ctx,
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        ),
        all_but_sctp_share(ctx.variant.proto),
    )
}

/// The holder is on 0.0.0.0, the picker binds 127.0.0.1: in use.
fn wildcard_holder(ctx: &Ctx) -> Result<(), CaseError> {
    check_share(
        ctx,
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ),
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
        Share::InUse,
    )
}

/// The holder is on 127.0.0.1, the picker binds 0.0.0.0: in use.
fn wildcard_picker(ctx: &Ctx) -> Result<(), CaseError> {
    check_share(
        ctx,
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
        (
            socket_of(ctx.variant, false, false)?,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ),
        Share::InUse,
    )
}

/// The holder is an IPv6 socket of the variant on `::` (with IPV6_V6ONLY
/// as `v6only`), the picker an IPv4 socket of the protocol binding
/// 0.0.0.0: a dual-stack wildcard holds the port for IPv4 too; a
/// v6-only one does not, except on SCTP, whose search skips the port
/// whatever the family.
fn ipv6_wildcard(ctx: &Ctx, &v6only: &bool) -> Result<(), CaseError> {
    let holder = socket_of(ctx.variant, false, false)?;
    holder
        .set_only_v6(v6only)
        .or_fail(&format!("IPV6_V6ONLY {v6only}"))?;
    let v4 = Variant {
        family: Family::V4,
        ..ctx.variant
    };
    let share = if v6only {
        all_but_sctp_share(ctx.variant.proto)
    } else {
        Share::InUse
    };
    check_share(
        ctx,
        (holder, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        (
            socket_of(v4, false, false)?,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ),
        share,
    )
}
