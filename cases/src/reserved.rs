//! `net.ipv4.ip_local_reserved_ports` inside the socket range, on every
//! path that picks a port from it.

use harness::{CaseDef, CaseError, Ctx, OrFail, Proto, Setup};

use crate::model::Op;
use crate::ports::{SERVER_PORT, check_bind_fill, check_fill_by, fill_by_bind, socket_with_range};

/// The netns range and the reserved ports of every case here.
const SETUP: Setup = Setup::netns_range(40000, 49999).reserved("41001,41003-41004");

/// The socket range of every case here: eight ports, three of them reserved.
const SOCKET_RANGE: (u16, u16) = (41000, 41007);

/// The ports of [`SOCKET_RANGE`] that are not reserved: what a fill gets.
const UNRESERVED: [u16; 5] = [41000, 41002, 41005, 41006, 41007];

/// Autobind paths that must skip reserved ports as bind(0) does (the bind
/// case below): each fills the socket range, which reaches every port a
/// kernel would hand out, so one reserved port given away fails the case
/// whatever random start the kernel drew.
#[rustfmt::skip]
const AUTOBIND: &[(&str, Op, &[Proto])] = &[
    // (property, the operation that picks, protocols)
    // connect() of an unbound socket: __inet_hash_connect (TCP, MPTCP),
    // udp_lib_get_port (UDP), sctp_get_port_local (SCTP).
    ("reserved/skipped_by_connect_inside_socket_range", Op::Connect { remote: SERVER_PORT }, Proto::ALL),
    // sendmsg() of an unbound UDP socket: udp_lib_get_port.
    ("reserved/skipped_by_sendmsg_inside_socket_range", Op::SendTo { remote: SERVER_PORT }, &[Proto::Udp]),
    // listen() of an unbound socket: inet_csk_find_open_port (TCP, MPTCP),
    // sctp_get_port_local (SCTP).
    ("reserved/skipped_by_listen_inside_socket_range",  Op::Listen,                          Proto::STREAM),
];

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    let mut cases =
        vec![CaseDef::new("reserved/ports_skipped_inside_socket_range", skipped).setup(SETUP)];
    cases.extend(AUTOBIND.iter().map(|&(name, op, protos)| {
        CaseDef::with(name, op, skipped_by)
            .protos(protos)
            .setup(SETUP)
    }));
    cases
}

/// In the socket range 41000..=41007 with 41001, 41003 and 41004 reserved,
/// bind(0) hands out the five others and then fails; reserved ports stay
/// available to an explicit bind.
fn skipped(ctx: &Ctx) -> Result<(), CaseError> {
    let filled = fill_by_bind(ctx, || {
        socket_with_range(ctx, SOCKET_RANGE.0, SOCKET_RANGE.1)
    })?;
    check_bind_fill(ctx, filled, UNRESERVED)?;
    ctx.socket()?
        .bind(&ctx.loopback(41003).into())
        .or_fail("explicit bind to the reserved port 41003")
}

/// Sockets with the range 41000..=41007 picking by `op` get exactly the
/// five ports that are not reserved, then the path's exhaustion errno
/// (connect(): EADDRNOTAVAIL for TCP and MPTCP, one destination so every
/// 4-tuple is busy; EAGAIN for UDP and SCTP autobind; listen(): EADDRINUSE
/// for TCP and MPTCP, EAGAIN for SCTP).
fn skipped_by(ctx: &Ctx, op: &Op) -> Result<(), CaseError> {
    check_fill_by(ctx, *op, SOCKET_RANGE, UNRESERVED)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io;

    use super::*;
    use harness::profile::Profile;

    use crate::model::{Config, exhaustion_error, fill as model_fill};
    use crate::ports::check_fill;

    /// Every path of this module with the protocols it runs for.
    fn paths() -> Vec<(&'static str, Op, &'static [Proto])> {
        let mut paths = vec![(
            "reserved/ports_skipped_inside_socket_range",
            Op::BindZero,
            Proto::ALL,
        )];
        paths.extend_from_slice(AUTOBIND);
        paths
    }

    /// [`SETUP`]'s reserved ports, from the sysctl's syntax.
    fn setup_reserved() -> BTreeSet<u16> {
        let reserved = SETUP.reserved_ports.expect("SETUP reserves ports");
        reserved
            .split(',')
            .flat_map(|item| {
                let (a, b) = item.split_once('-').unwrap_or((item, item));
                a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()
            })
            .collect()
    }

    fn config(proto: Proto, op: Op, reserved: BTreeSet<u16>) -> Config {
        let netns = SETUP.port_range.expect("SETUP sets the netns range");
        Config {
            reserved,
            ..Config::new(proto, netns, SOCKET_RANGE, op)
        }
    }

    #[test]
    fn expectations_agree_with_the_model_on_every_profile() {
        for (name, op, protos) in paths() {
            for &proto in protos {
                for profile in Profile::ALL {
                    let (ports, errno) = model_fill(&config(proto, op, setup_reserved()), profile);
                    let what = format!("{name} on {proto:?}, {profile:?}");
                    assert_eq!(ports, BTreeSet::from(UNRESERVED), "{what}");
                    assert_eq!(Some(errno), exhaustion_error(proto, op), "{what}");
                }
            }
        }
    }

    /// Filling the range reaches every port, so a kernel that hands out
    /// reserved ports on a path fails that path's case deterministically
    /// (before these cases only the randomized model cases could notice it
    /// on connect(), sendmsg() and listen(), when they happened to draw
    /// reserved ports inside a socket range for that operation).
    #[test]
    fn a_kernel_ignoring_reserved_ports_fails_every_case() {
        for (name, op, protos) in paths() {
            for &proto in protos {
                for profile in Profile::ALL {
                    let (ports, errno) = model_fill(&config(proto, op, BTreeSet::new()), profile);
                    let seen = (ports, io::Error::from_raw_os_error(errno as i32));
                    let verdict = check_fill(seen, UNRESERVED, errno);
                    assert!(
                        matches!(verdict, Err(CaseError::Fail(_))),
                        "{name} on {proto:?}, {profile:?}: {verdict:?}"
                    );
                }
            }
        }
    }
}
