//! `net.ipv4.ip_local_reserved_ports` inside the socket range.

use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Proto, Setup};
use nix::errno::Errno;

use crate::ports::{check_fill, fill_by_bind, socket_with_range};

/// The cases of this module.
pub const CASES: &[CaseDef] = &[CaseDef {
    name: "reserved/ports_skipped_inside_socket_range",
    protos: Proto::ALL,
    families: Family::ALL,
    setup: Setup {
        port_range: Some((40000, 49999)),
        reserved_ports: Some("41001,41003-41004"),
    },
    body: skipped,
}];

/// In the socket range 41000..=41007 with 41001, 41003 and 41004 reserved,
/// bind(0) hands out the five others and then fails; reserved ports stay
/// available to an explicit bind.
fn skipped(ctx: &Ctx) -> Result<(), CaseError> {
    let filled = fill_by_bind(ctx, || socket_with_range(ctx, 41000, 41007))?;
    check_fill(
        filled,
        [41000, 41002, 41005, 41006, 41007],
        Errno::EADDRINUSE,
    )?;
    ctx.socket()?
        .bind(&ctx.loopback(41003).into())
        .or_fail("explicit bind to the reserved port 41003")
}
