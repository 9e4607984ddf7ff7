//! The effective range: each bound clamped to the netns range, the netns
//! range winning when the socket range lies outside it.

use harness::{CaseDef, CaseError, Ctx, Family, Proto, Setup};
use nix::errno::Errno;

use crate::ports::{check_fill, fill_by_bind, socket_with_range};

const NETNS: Setup = Setup {
    port_range: Some((40000, 40007)),
    reserved_ports: None,
};

macro_rules! clamp_case {
    ($name:literal, $body:ident) => {
        CaseDef {
            name: $name,
            protos: Proto::ALL,
            families: Family::ALL,
            setup: NETNS,
            body: $body,
        }
    };
}

/// The cases of this module.
pub const CASES: &[CaseDef] = &[
    clamp_case!("clamp/inside_netns_range_is_used_as_is", inside),
    clamp_case!("clamp/lo_below_netns_range_is_raised", lo_below),
    clamp_case!("clamp/hi_above_netns_range_is_lowered", hi_above),
    clamp_case!("clamp/partial_overlap_uses_the_overlap", partial_overlap),
    clamp_case!("precedence/range_above_netns_range_is_ignored", above),
    clamp_case!("precedence/range_below_netns_range_is_ignored", below),
    clamp_case!("clamp/one_port_range", one_port),
    clamp_case!(
        "clamp/zero_bound_reaching_netns_edge_gives_one_port",
        edge_ports
    ),
    clamp_case!(
        "clamp/follows_netns_range_at_pick_time",
        follows_netns_range
    ),
];

/// Fills the range with sockets set to `lo..=hi` and expects exactly
/// `want_lo..=want_hi` to be picked before EADDRINUSE.
fn expect_effective(
    ctx: &Ctx,
    (lo, hi): (u16, u16),
    (want_lo, want_hi): (u16, u16),
) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, lo, hi))?;
    check_fill(fill, want_lo..=want_hi, Errno::EADDRINUSE).map_err(|e| match e {
        CaseError::Fail(m) => CaseError::Fail(format!("socket range {lo}-{hi}: {m}")),
        other => other,
    })
}

fn inside(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (40002, 40005), (40002, 40005))
}

fn lo_below(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (39990, 40003), (40000, 40003))
}

fn hi_above(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (40004, 40020), (40004, 40007))
}

fn partial_overlap(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (39000, 40001), (40000, 40001))?;
    expect_effective(ctx, (40006, 41000), (40006, 40007))
}

fn above(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (50000, 50003), (40000, 40007))
}

fn below(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (30000, 30003), (40000, 40007))
}

fn one_port(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (40003, 40003), (40003, 40003))
}

/// A zero bound plus the other bound on the netns edge leaves one port:
/// `0-40000` gives 40000 and `40007-0` gives 40007.
fn edge_ports(ctx: &Ctx) -> Result<(), CaseError> {
    expect_effective(ctx, (0, 40000), (40000, 40000))?;
    expect_effective(ctx, (40007, 0), (40007, 40007))
}

/// The clamp is evaluated when a port is picked, not when the option is
/// set: sockets configured 40002-40005 before the netns range moves to
/// 40004-40011 get 40004..=40005.
fn follows_netns_range(ctx: &Ctx) -> Result<(), CaseError> {
    let configured: Vec<_> = (0..4)
        .map(|_| socket_with_range(ctx, 40002, 40005))
        .collect::<Result<_, _>>()?;
    ctx.set_netns_port_range(40004, 40011)?;
    let unused = std::cell::RefCell::new(configured.into_iter());
    let fill = fill_by_bind(ctx, || match unused.borrow_mut().next() {
        Some(socket) => Ok(socket),
        None => socket_with_range(ctx, 40002, 40005),
    })?;
    check_fill(fill, 40004..=40005, Errno::EADDRINUSE)
}
