//! The effective range: each bound clamped to the netns range, the netns
//! range winning when the socket range lies outside it.

use harness::{CaseDef, CaseError, Ctx, Setup};

use crate::ports::{check_bind_fill, fill_by_bind, socket_with_range};

const NETNS: Setup = Setup::netns_range(40000, 40007);

/// A socket range (`lo`, `hi`, as set with the option) and the range the
/// kernel must pick from for it.
type Clamp = ((u16, u16), (u16, u16));

/// Properties checked by filling the range: for each socket range, exactly
/// the expected ports are picked, then bind() fails with EADDRINUSE. The
/// netns range is 40000-40007 throughout.
#[rustfmt::skip]
const TABLE: &[(&str, &[Clamp])] = &[
    // (property, [(socket range, effective range), ...])
    // Inside the netns range: used as it is.
    ("clamp/inside_netns_range_is_used_as_is",              &[((40002, 40005), (40002, 40005))]),
    // `lo` below the netns range: raised to the netns `lo`.
    ("clamp/lo_below_netns_range_is_raised",                &[((39990, 40003), (40000, 40003))]),
    // `hi` above the netns range: lowered to the netns `hi`.
    ("clamp/hi_above_netns_range_is_lowered",               &[((40004, 40020), (40004, 40007))]),
    // Overlapping either end: only the overlap.
    ("clamp/partial_overlap_uses_the_overlap",              &[((39000, 40001), (40000, 40001)), ((40006, 41000), (40006, 40007))]),
    // Wholly above the netns range: ignored, the netns range wins.
    ("precedence/range_above_netns_range_is_ignored",       &[((50000, 50003), (40000, 40007))]),
    // Wholly below the netns range: ignored, the netns range wins.
    ("precedence/range_below_netns_range_is_ignored",       &[((30000, 30003), (40000, 40007))]),
    // `lo == hi`: that one port.
    ("clamp/one_port_range",                                &[((40003, 40003), (40003, 40003))]),
    // A zero bound with the other bound on the netns edge: one port
    // (`0-40000` gives 40000, `40007-0` gives 40007).
    ("clamp/zero_bound_reaching_netns_edge_gives_one_port", &[((0, 40000), (40000, 40000)), ((40007, 0), (40007, 40007))]),
];

/// The cases of this module: the table's, then one that moves the netns
/// range under configured sockets.
pub fn cases() -> Vec<CaseDef> {
    let mut cases: Vec<CaseDef> = TABLE
        .iter()
        .map(|&(name, clamps)| CaseDef::with(name, clamps, expect_each).setup(NETNS))
        .collect();
    cases.push(
        CaseDef::new(
            "clamp/follows_netns_range_at_pick_time",
            follows_netns_range,
        )
        .setup(NETNS),
    );
    cases
}

/// Checks every row of `clamps` in turn.
fn expect_each(ctx: &Ctx, clamps: &&[Clamp]) -> Result<(), CaseError> {
    clamps
        .iter()
        .try_for_each(|&(socket, effective)| expect_effective(ctx, socket, effective))
}

/// Fills the range with sockets set to `lo..=hi` and expects exactly
/// `want_lo..=want_hi` to be picked before EADDRINUSE.
fn expect_effective(
    ctx: &Ctx,
    (lo, hi): (u16, u16),
    (want_lo, want_hi): (u16, u16),
) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, lo, hi))?;
    check_bind_fill(ctx, fill, want_lo..=want_hi)
        .map_err(|e| e.in_context(format_args!("socket range {lo}-{hi}")))
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
    check_bind_fill(ctx, fill, 40004..=40005)
}
