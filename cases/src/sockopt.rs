//! Encoding and validation of the option value.

use harness::sockopt::{self, IP_LOCAL_PORT_RANGE, pack};
use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Setup, check, check_eq, expect_errno};
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
        CaseDef::new(
            "sockopt/short_getsockopt_truncates_and_reports_length",
            short_reads,
        ),
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

/// The byte a short read's buffer is filled with: a kernel writing past the
/// length it was given changes it.
const CANARY: u8 = 0xa5;

/// What getsockopt() gives for a stored `value` read with `optlen`
/// (do_ip_getsockopt()'s `copyval` tail in 6.1 and 6.12, and
/// mptcp_put_int_option() for MPTCP): the length written back and the
/// bytes written. A length of 1 to 3 with a value of 0 to 255 gets that
/// value as one byte and length 1; any other length from 0 up gets the
/// value's first `min(optlen, 4)` bytes and that length.
fn expected_read(value: u32, optlen: u32) -> (u32, Vec<u8>) {
    let bytes = value.to_ne_bytes();
    if (1..4).contains(&optlen) && value <= 255 {
        (1, vec![bytes[0]])
    } else {
        let len = optlen.min(4);
        (len, bytes[..len as usize].to_vec())
    }
}

/// getsockopt() with an optlen shorter than 4 truncates: the kernel
/// writes back the length it wrote and leaves every byte past it alone
/// (a canary byte checks that), for a value above 255 (the low bytes,
/// length as asked) and one of 0-255 (one byte, length 1); a negative
/// optlen is EINVAL.
fn short_reads(ctx: &Ctx) -> Result<(), CaseError> {
    let socket = ctx.socket()?;
    // Rows: (lo, hi) to store; each is read with optlen 0 to 4.
    for (lo, hi) in [
        (40001, 40002), // above 255: bytes as asked
        (200, 0),       // 200, a value that fits in one byte
    ] {
        let value = pack(lo, hi);
        sockopt::set_port_range(&socket, lo, hi).or_fail(&format!("setsockopt {lo}-{hi}"))?;
        for optlen in 0..=4 {
            let mut buf = [CANARY; 8];
            let what = format!("getsockopt of {lo}-{hi} ({value:#x}) with optlen {optlen}");
            let reported =
                sockopt::get_into(&socket, libc::SOL_IP, IP_LOCAL_PORT_RANGE, &mut buf, optlen)
                    .or_fail(&what)?;
            let (want_len, want_bytes) = expected_read(value, optlen);
            check_eq!(reported, want_len, "{what}: the length written back");
            let written = &buf[..want_bytes.len()];
            check_eq!(written, want_bytes.as_slice(), "{what}: the bytes written");
            check!(
                buf[want_bytes.len()..].iter().all(|&b| b == CANARY),
                "{what}: bytes past the {want_len} it reported were written: {buf:02x?}"
            );
        }
    }
    let mut buf = [CANARY; 8];
    expect_errno(
        sockopt::get_into(
            &socket,
            libc::SOL_IP,
            IP_LOCAL_PORT_RANGE,
            &mut buf,
            libc::socklen_t::MAX,
        ),
        Errno::EINVAL,
        "getsockopt with optlen -1",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake kernel's answer that always writes four bytes and reports
    /// four, next to what the rule expects.
    #[test]
    fn short_reads_follow_the_copyval_rule() {
        let big = pack(40001, 40002);
        let b = big.to_ne_bytes();
        // Rows: (value, optlen, length written back, bytes).
        let rows: [(u32, u32, u32, &[u8]); 10] = [
            (big, 0, 0, &[]),
            (big, 1, 1, &b[..1]),
            (big, 2, 2, &b[..2]),
            (big, 3, 3, &b[..3]),
            (big, 4, 4, &b),
            (200, 0, 0, &[]),
            (200, 1, 1, &[200]),
            (200, 2, 1, &[200]),
            (200, 3, 1, &[200]),
            (200, 4, 4, &200u32.to_ne_bytes()),
        ];
        for (value, optlen, len, bytes) in rows {
            let got = expected_read(value, optlen);
            assert_eq!(got, (len, bytes.to_vec()), "{value:#x} optlen {optlen}");
            if optlen < 4 {
                assert_ne!(
                    got,
                    (4, value.to_ne_bytes().to_vec()),
                    "a fake kernel writing 4 must not match"
                );
            }
        }
    }
}
