//! Encoding and validation of the option value.

use harness::sockopt::{self, IP_LOCAL_PORT_RANGE, pack};
use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Setup, check_eq, expect_errno};
use nix::errno::Errno;

use crate::ports::{check_bind_fill, fill_by_bind, socket_with_range};

const NETNS: Setup = Setup::netns_range(40000, 40007);

/// The cases of this module, each on IPv4 and IPv6 sockets of every
/// protocol.
pub fn cases() -> Vec<CaseDef> {
    [
        CaseDef::new("sockopt/round_trip", round_trip),
        CaseDef::new("sockopt/value_is_hi_shl_16_or_lo", packing),
        CaseDef::new("sockopt/lo_above_hi_is_einval", lo_above_hi),
        CaseDef::new("sockopt/optlen_not_4_is_einval", optlen_not_4),
        CaseDef::new("sockopt/zero_lo_means_netns_lo", zero_lo),
        CaseDef::new("sockopt/zero_hi_means_netns_hi", zero_hi),
        CaseDef::new("sockopt/does_not_leak_to_other_sockets", no_leak),
        CaseDef::new("sockopt/zero_clears", zero_clears),
    ]
    .into_iter()
    .map(|case| case.families(Family::BOTH).setup(NETNS))
    .collect()
}

/// What was set comes back, unclamped, even outside the netns range.
fn round_trip(ctx: &Ctx) -> Result<(), CaseError> {
    let socket = ctx.socket()?;
    check_eq!(
        sockopt::get_port_range_raw(&socket).or_fail("getsockopt on a fresh socket")?,
        0,
        "a fresh socket's stored range"
    );
    // Rows: (lo, hi) to store; the raw value must come back unchanged.
    for (lo, hi) in [
        (40002, 40005), // inside the netns range
        (10000, 20000), // wholly outside it: stored, only ignored at pick time
        (40003, 40003), // a single port
        (12345, 54321), // wider than the netns range on both sides
        (1, u16::MAX),  // the widest value
    ] {
        sockopt::set_port_range(&socket, lo, hi).or_fail(&format!("setsockopt {lo}-{hi}"))?;
        let got = sockopt::get_port_range_raw(&socket).or_fail("getsockopt")?;
        check_eq!(got, pack(lo, hi), "getsockopt after setting {lo}-{hi}");
    }
    Ok(())
}

/// The value is one host-order u32 with `lo` in the low half: a range
/// written that way is obeyed, and 1-3 byte reads give its low bytes.
fn packing(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (40001u16, 40002u16);
    let raw = (u32::from(hi) << 16) | u32::from(lo);
    let socket = ctx.socket()?;
    sockopt::set_raw(&socket, IP_LOCAL_PORT_RANGE, &raw.to_ne_bytes())
        .or_fail("setsockopt with a hand-packed u32")?;
    let bytes = raw.to_ne_bytes();
    for len in 1..=4 {
        let got = sockopt::get_raw(&socket, IP_LOCAL_PORT_RANGE, len)
            .or_fail(&format!("getsockopt with optlen {len}"))?;
        check_eq!(
            got.as_slice(),
            &bytes[..len],
            "getsockopt with optlen {len}"
        );
    }
    drop(socket);
    let fill = fill_by_bind(ctx, || {
        let socket = ctx.socket()?;
        sockopt::set_raw(&socket, IP_LOCAL_PORT_RANGE, &raw.to_ne_bytes()).or_fail("setsockopt")?;
        Ok(socket)
    })?;
    check_bind_fill(ctx, fill, lo..=hi)
}

/// `lo > hi` with both set is refused and leaves the stored value alone.
fn lo_above_hi(ctx: &Ctx) -> Result<(), CaseError> {
    let socket = socket_with_range(ctx, 40001, 40004)?;
    // Rows: (lo, hi) pairs with lo > hi, both non-zero.
    for (lo, hi) in [(40005, 40004), (u16::MAX, 1), (2, 1)] {
        expect_errno(
            sockopt::set_port_range(&socket, lo, hi),
            Errno::EINVAL,
            &format!("setsockopt {lo}-{hi}"),
        )?;
    }
    check_eq!(
        sockopt::get_port_range_raw(&socket).or_fail("getsockopt")?,
        pack(40001, 40004),
        "stored range after refused writes"
    );
    Ok(())
}

/// Only an optlen of exactly 4 is accepted.
fn optlen_not_4(ctx: &Ctx) -> Result<(), CaseError> {
    let socket = ctx.socket()?;
    let value = pack(40001, 40004).to_ne_bytes();
    let long = [value.as_slice(), &[0u8; 4]].concat();
    // Rows: option bytes of every wrong length around 4.
    for bytes in [
        &value[..0],
        &value[..1],
        &value[..2],
        &value[..3],
        &long[..5],
        &long[..8],
    ] {
        expect_errno(
            sockopt::set_raw(&socket, IP_LOCAL_PORT_RANGE, bytes),
            Errno::EINVAL,
            &format!("setsockopt with optlen {}", bytes.len()),
        )?;
    }
    check_eq!(
        sockopt::get_port_range_raw(&socket).or_fail("getsockopt")?,
        0,
        "stored range after refused writes"
    );
    Ok(())
}

/// `lo = 0` leaves the low bound to the netns: ports 40000..=hi.
fn zero_lo(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, 0, 40003))?;
    check_bind_fill(ctx, fill, 40000..=40003)
}

/// `hi = 0` leaves the high bound to the netns: ports lo..=40007.
fn zero_hi(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, 40004, 0))?;
    check_bind_fill(ctx, fill, 40004..=40007)
}

/// Writing 0 clears the option: reads back 0, and the whole netns range
/// is used again.
fn zero_clears(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || {
        let socket = socket_with_range(ctx, 40006, 40007)?;
        sockopt::set_port_range_raw(&socket, 0).or_fail("setsockopt 0")?;
        check_eq!(
            sockopt::get_port_range_raw(&socket).or_fail("getsockopt")?,
            0,
            "stored range after clearing"
        );
        Ok(socket)
    })?;
    check_bind_fill(ctx, fill, 40000..=40007)
}

/// The range belongs to the socket it was set on: a socket opened next to
/// it reads 0 and picks from the whole netns range.
fn no_leak(ctx: &Ctx) -> Result<(), CaseError> {
    let _narrow = socket_with_range(ctx, 40006, 40007)?;
    let fill = fill_by_bind(ctx, || {
        let socket = ctx.socket()?;
        check_eq!(
            sockopt::get_port_range_raw(&socket).or_fail("getsockopt")?,
            0,
            "stored range of a socket opened after another set its range"
        );
        Ok(socket)
    })?;
    check_bind_fill(ctx, fill, 40000..=40007)
}
