//! `net.ipv4.ip_local_reserved_ports` inside the socket range.

use harness::{CaseDef, CaseError, Ctx, OrFail, Setup};
use nix::errno::Errno;

use crate::ports::{check_fill, fill_by_bind, socket_with_range};

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    vec![
        CaseDef::new("reserved/ports_skipped_inside_socket_range", skipped)
            .setup(Setup::netns_range(40000, 49999).reserved("41001,41003-41004")),
    ]
}

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
