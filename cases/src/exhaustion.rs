//! Running out of ports inside the socket range.

use harness::{CaseDef, CaseError, Ctx, Family, Proto, Setup};
use nix::errno::Errno;

use crate::ports::{check_fill, fill_by_bind, socket_with_range};

/// The cases of this module.
pub const CASES: &[CaseDef] = &[
    CaseDef {
        name: "bind_zero/eight_port_range_exhausts_with_eaddrinuse",
        protos: Proto::ALL,
        families: Family::BOTH,
        setup: Setup {
            port_range: Some((40000, 49999)),
            reserved_ports: None,
        },
        body: eight_ports,
    },
    CaseDef {
        name: "bind_zero/odd_sized_range",
        protos: Proto::ALL,
        families: Family::BOTH,
        setup: Setup {
            port_range: Some((40000, 49999)),
            reserved_ports: None,
        },
        body: odd_sized,
    },
];

/// With a wide netns range, an 8-port socket range gives exactly those 8
/// ports to bind(0), then EADDRINUSE.
fn eight_ports(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, 45000, 45007))?;
    check_fill(fill, 45000, 45007, Errno::EADDRINUSE)
}

/// A 3-port range: UDP and SCTP hand out all three; TCP's bind(0) scans
/// the range rounded down to an even size (inet_csk_find_open_port), so
/// its top port is never picked and the third bind fails.
fn odd_sized(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (45000, 45002);
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, lo, hi))?;
    let top = match ctx.variant.proto {
        Proto::Tcp | Proto::Mptcp => hi - 1,
        Proto::Udp | Proto::Sctp => hi,
    };
    check_fill(fill, lo, top, Errno::EADDRINUSE)
}
