//! Running out of ports inside the socket range.

use std::collections::BTreeSet;

use harness::{CaseDef, CaseError, Ctx, OrFail, Proto, Setup, check, describe};
use nix::errno::Errno;

use crate::ports::{bind_zero, check_fill, fill_by_bind, show, socket_with_range};

/// The cases of this module, each in the namespace range 40000-49999.
pub fn cases() -> Vec<CaseDef> {
    [
        CaseDef::new(
            "bind_zero/eight_port_range_exhausts_with_eaddrinuse",
            eight_ports,
        ),
        CaseDef::new("bind_zero/odd_sized_range", odd_sized),
        CaseDef::new("bind_zero/so_reuseaddr_stays_in_socket_range", reuseaddr),
    ]
    .into_iter()
    .map(|case| case.setup(Setup::netns_range(40000, 49999)))
    .collect()
}

/// With a wide netns range, an 8-port socket range gives exactly those 8
/// ports to bind(0), then EADDRINUSE.
fn eight_ports(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, 45000, 45007))?;
    check_fill(fill, 45000..=45007, Errno::EADDRINUSE)
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
    check_fill(fill, lo..=top, Errno::EADDRINUSE)
}

/// With SO_REUSEADDR, bind(0) may share ports between bound sockets (TCP's
/// "half scan", UDP's reuse check), so which ports get used varies; what
/// must hold is that every pick stays inside the 4-port socket range and
/// that a failure, if the protocol does not share (SCTP), is EADDRINUSE
/// after the range was used up.
fn reuseaddr(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (45000, 45003);
    let mut held = Vec::new();
    let mut seen = BTreeSet::new();
    for n in 1..=16 {
        let socket = socket_with_range(ctx, lo, hi)?;
        socket.set_reuse_address(true).or_fail("SO_REUSEADDR")?;
        match bind_zero(ctx, &socket) {
            Ok(port) => {
                check!(
                    (lo..=hi).contains(&port),
                    "bind #{n} picked {port}, outside {lo}..={hi}"
                );
                seen.insert(port);
                held.push(socket);
            }
            Err(e) => {
                check!(
                    e.raw_os_error() == Some(Errno::EADDRINUSE as i32)
                        && seen == (lo..=hi).collect::<BTreeSet<u16>>(),
                    "bind #{n} failed with {} after picking only {}",
                    describe(&e),
                    show(&seen)
                );
                break;
            }
        }
    }
    Ok(())
}
