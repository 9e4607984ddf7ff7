//! Running out of ports inside the socket range.

use std::collections::BTreeSet;

use harness::profile::{Profile, Property};
use harness::{CaseDef, CaseError, Ctx, OrFail, Proto, Setup, check, describe};

use crate::model::Op;
use crate::port_set::show;
use crate::ports::{
    SERVER_PORT, bind_zero, check_bind_fill, check_fill_by, exhaustion_errno, fill, fill_by_bind,
    pick, server, socket_with_range,
};

/// A socket range (`lo`, `hi`, as set with the option) and the effective
/// range it gives in the netns range 40000-49999.
type Edge = ((u16, u16), (u16, u16));

/// One-port effective ranges: set as such, and reached by clamping a zero
/// bound to either edge of the netns range.
#[rustfmt::skip]
const ONE_PORT: &[Edge] = &[
    ((41000, 41000), (41000, 41000)),
    ((0, 40000),     (40000, 40000)),
    ((49999, 0),     (49999, 49999)),
];

/// Two-port effective ranges: set as such, and the overlap of a socket
/// range crossing either edge of the netns range.
#[rustfmt::skip]
const TWO_PORTS: &[Edge] = &[
    ((41000, 41001), (41000, 41001)),
    ((39000, 40001), (40000, 40001)),
    ((49998, 60000), (49998, 49999)),
];

/// Every path that picks from the socket range, with a one-port and a
/// two-port effective range: each row's sockets get exactly the effective
/// range's ports, then the path's exhaustion errno (bind(): EADDRINUSE;
/// connect(): EADDRNOTAVAIL for TCP and MPTCP, whose clients all go to one
/// destination so every 4-tuple is busy, EAGAIN for UDP and SCTP;
/// sendmsg(): EAGAIN; listen(): EADDRINUSE for TCP and MPTCP, EAGAIN for
/// SCTP). Two ports is the smallest range in which 6.1's connect() scans
/// in two parity passes, and in which TCP's bind() rounds nothing away.
#[rustfmt::skip]
const EDGES: &[(&str, Op, &[Proto], &[Edge])] = &[
    // (property, the operation that picks, protocols, rows)
    ("bind_zero/one_port_range_gives_that_port_then_runs_out",   Op::BindZero,                          Proto::ALL,     ONE_PORT),
    ("bind_zero/two_port_range_gives_both_ports_then_runs_out",  Op::BindZero,                          Proto::ALL,     TWO_PORTS),
    ("connect/one_port_range_gives_that_port_then_runs_out",     Op::Connect { remote: SERVER_PORT },   Proto::ALL,     ONE_PORT),
    ("connect/two_port_range_gives_both_ports_then_runs_out",    Op::Connect { remote: SERVER_PORT },   Proto::ALL,     TWO_PORTS),
    ("sendmsg/one_port_range_gives_that_port_then_runs_out",     Op::SendTo { remote: SERVER_PORT },    &[Proto::Udp],  ONE_PORT),
    ("sendmsg/two_port_range_gives_both_ports_then_runs_out",    Op::SendTo { remote: SERVER_PORT },    &[Proto::Udp],  TWO_PORTS),
    ("listen/one_port_range_gives_that_port_then_runs_out",      Op::Listen,                            Proto::STREAM,  ONE_PORT),
    ("listen/two_port_range_gives_both_ports_then_runs_out",     Op::Listen,                            Proto::STREAM,  TWO_PORTS),
];

/// The cases of this module, each in the namespace range 40000-49999.
pub fn cases() -> Vec<CaseDef> {
    let mut cases = vec![
        CaseDef::new(
            "bind_zero/eight_port_range_exhausts_with_eaddrinuse",
            eight_ports,
        ),
        CaseDef::new("bind_zero/so_reuseaddr_stays_in_socket_range", reuseaddr),
        CaseDef::new(
            "connect/odd_sized_range_matches_a_known_profile",
            odd_sized_connect,
        )
        .protos(&[Proto::Tcp, Proto::Mptcp]),
    ];
    cases.extend(
        ODD.iter()
            .map(|&(name, op, protos)| CaseDef::with(name, op, odd_sized).protos(protos)),
    );
    cases.extend(
        EDGES
            .iter()
            .map(|&(name, op, protos, rows)| CaseDef::with(name, (op, rows), edges).protos(protos)),
    );
    cases
        .into_iter()
        .map(|case| case.setup(Setup::netns_range(40000, 49999)))
        .collect()
}

/// For each row, fills the effective range by `op` with sockets set to
/// the row's socket range: exactly its ports, then the exhaustion errno.
/// Each row's sockets are closed before the next; the rows' ports are
/// disjoint, so a port left in TIME_WAIT never meets a later row.
fn edges(ctx: &Ctx, &(op, rows): &(Op, &[Edge])) -> Result<(), CaseError> {
    rows.iter().try_for_each(|&((lo, hi), (want_lo, want_hi))| {
        check_fill_by(ctx, op, (lo, hi), want_lo..=want_hi)
            .map_err(|e| e.in_context(format_args!("socket range {lo}-{hi}, {op}")))
    })
}

/// With a wide netns range, an 8-port socket range gives exactly those 8
/// ports to bind(0), then EADDRINUSE.
fn eight_ports(ctx: &Ctx) -> Result<(), CaseError> {
    let fill = fill_by_bind(ctx, || socket_with_range(ctx, 45000, 45007))?;
    check_bind_fill(ctx, fill, 45000..=45007)
}

/// Every path with a 3-port socket range. TCP's and MPTCP's connect() is
/// left out: which ports it reaches differs between the profiles (all
/// three upstream, the lower two on stable-6.1), which the randomized
/// model case covers.
#[rustfmt::skip]
const ODD: &[(&str, Op, &[Proto])] = &[
    // (property, the operation that picks, protocols)
    ("bind_zero/odd_sized_range", Op::BindZero,                         Proto::ALL),
    ("listen/odd_sized_range",    Op::Listen,                           Proto::STREAM),
    ("connect/odd_sized_range",   Op::Connect { remote: SERVER_PORT },  &[Proto::Udp, Proto::Sctp]),
    ("sendmsg/odd_sized_range",   Op::SendTo { remote: SERVER_PORT },   &[Proto::Udp]),
];

/// A 3-port range picked from by `op`: UDP and SCTP hand out all three;
/// TCP's and MPTCP's bind(0) and listen() scan the range rounded down to
/// an even size (inet_csk_find_open_port), so the top port is never
/// picked and the third pick fails.
fn odd_sized(ctx: &Ctx, op: &Op) -> Result<(), CaseError> {
    check_fill_by(ctx, *op, ODD_SIZED, odd_sized_picks(ctx.variant.proto))
}

/// The ports TCP's and MPTCP's connect() hands out from [`ODD_SIZED`] on a
/// kernel of `profile` (__inet_hash_connect()): upstream scans every port
/// of a socket range with step 1; stable-6.1 rounds the count down to even
/// (2) and scans it in two parity passes, so the top port is never reached.
fn odd_sized_connect_picks(profile: Profile) -> std::ops::RangeInclusive<u16> {
    let (lo, hi) = ODD_SIZED;
    match profile {
        Profile::Upstream => lo..=hi,
        Profile::Stable61 => lo..=hi - 1,
    }
}

/// TCP and MPTCP clients with the 3-port range connect to one server until
/// connect() fails: the ports they got and the errno (the model's) name
/// the profile the kernel follows ([`odd_sized_connect_picks`]), recorded
/// for the connect() parity property and judged like the parity case's;
/// any other outcome matches no profile and fails. Unlike the parity case
/// this one is deterministic.
fn odd_sized_connect(ctx: &Ctx) -> Result<(), CaseError> {
    let op = Op::Connect {
        remote: SERVER_PORT,
    };
    let errno = exhaustion_errno(ctx, op)?;
    let _server = server(ctx)?;
    let (lo, hi) = ODD_SIZED;
    let (ports, error) = fill(
        || socket_with_range(ctx, lo, hi),
        |socket| pick(ctx, socket, op),
    )?;
    let failed_right = error.raw_os_error() == Some(errno as i32);
    let matched = Profile::ALL.into_iter().find(|&profile| {
        failed_right && ports.iter().copied().eq(odd_sized_connect_picks(profile))
    });
    match matched {
        Some(profile) => {
            ctx.matched_profile(Property::ConnectParity, profile);
            Ok(())
        }
        None => {
            let wants: Vec<String> = Profile::ALL
                .into_iter()
                .map(|profile| {
                    let ports = show(odd_sized_connect_picks(profile));
                    format!("{ports} then {errno:?} ({profile})")
                })
                .collect();
            Err(CaseError::Fail(format!(
                "matches no known profile: expected {}, got {} then {}",
                wants.join(" or "),
                show(ports.iter().copied()),
                describe(&error)
            )))
        }
    }
}

/// The 3-port socket range of [`odd_sized`].
const ODD_SIZED: (u16, u16) = (45000, 45002);

/// The ports [`ODD`]'s paths hand out from [`ODD_SIZED`] on `proto`.
fn odd_sized_picks(proto: Proto) -> std::ops::RangeInclusive<u16> {
    let (lo, hi) = ODD_SIZED;
    match proto {
        Proto::Tcp | Proto::Mptcp => lo..=hi - 1,
        Proto::Udp | Proto::Sctp => lo..=hi,
    }
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
                    e.raw_os_error() == Some(exhaustion_errno(ctx, Op::BindZero)? as i32)
                        && seen == (lo..=hi).collect::<BTreeSet<u16>>(),
                    "bind #{n} failed with {} after picking only {}",
                    describe(&e),
                    show(seen.iter().copied())
                );
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io;

    use super::*;

    use crate::model::{Config, exhaustion_error, fill as model_fill};
    use crate::ports::check_fill;

    fn config(proto: Proto, op: Op, netns_range: (u16, u16), socket_range: (u16, u16)) -> Config {
        Config::new(proto, netns_range, socket_range, op)
    }

    /// Every row of every path, on every protocol and profile.
    fn rows() -> impl Iterator<Item = (String, Proto, Op, Edge, Profile)> {
        EDGES.iter().flat_map(|&(name, op, protos, rows)| {
            protos.iter().flat_map(move |&proto| {
                rows.iter().flat_map(move |&row| {
                    Profile::ALL.map(|profile| {
                        let what = format!("{name} on {proto:?}, {profile:?}, row {row:?}");
                        (what, proto, op, row, profile)
                    })
                })
            })
        })
    }

    #[test]
    fn odd_sized_connect_expectations_agree_with_the_model() {
        let op = Op::Connect {
            remote: SERVER_PORT,
        };
        for proto in [Proto::Tcp, Proto::Mptcp] {
            let config = config(proto, op, (40000, 49999), ODD_SIZED);
            for profile in Profile::ALL {
                let (ports, errno) = model_fill(&config, profile);
                let what = format!("{proto:?}, {profile:?}");
                assert_eq!(
                    ports,
                    odd_sized_connect_picks(profile).collect::<BTreeSet<u16>>(),
                    "{what}"
                );
                assert_eq!(Some(errno), exhaustion_error(proto, op), "{what}");
            }
        }
        assert_ne!(
            odd_sized_connect_picks(Profile::Upstream),
            odd_sized_connect_picks(Profile::Stable61)
        );
    }

    #[test]
    fn odd_sized_expectations_agree_with_the_model_on_every_profile() {
        for &(name, op, protos) in ODD {
            for &proto in protos {
                let config = config(proto, op, (40000, 49999), ODD_SIZED);
                for profile in Profile::ALL {
                    let (ports, errno) = model_fill(&config, profile);
                    let what = format!("{name} on {proto:?}, {profile:?}");
                    assert_eq!(
                        ports,
                        odd_sized_picks(proto).collect::<BTreeSet<u16>>(),
                        "{what}"
                    );
                    assert_eq!(Some(errno), exhaustion_error(proto, op), "{what}");
                }
            }
        }
    }

    #[test]
    fn edge_expectations_agree_with_the_model_on_every_profile() {
        for (what, proto, op, (socket, (lo, hi)), profile) in rows() {
            let (ports, errno) = model_fill(&config(proto, op, (40000, 49999), socket), profile);
            assert_eq!(ports, (lo..=hi).collect::<BTreeSet<u16>>(), "{what}");
            assert_eq!(Some(errno), exhaustion_error(proto, op), "{what}");
        }
    }

    /// A kernel whose path ignored the socket range (picking from the
    /// netns range, as before the option) fails every row; before these
    /// cases, a one-port range on connect(), sendmsg() or listen() was met
    /// only when the randomized model cases happened to draw one.
    #[test]
    fn a_kernel_ignoring_the_socket_range_fails_every_row() {
        for (what, proto, op, (_, (lo, hi)), profile) in rows() {
            // A narrow netns range of eight ports (even, so TCP's bind()
            // rounds nothing away) keeps the model's fill small; the
            // effective range lies inside it.
            let netns = (lo - 2, lo + 5);
            let (ports, errno) = model_fill(&config(proto, op, netns, (0, 0)), profile);
            let seen = (ports, io::Error::from_raw_os_error(errno as i32));
            let verdict = check_fill(seen, lo..=hi, errno);
            assert!(
                matches!(verdict, Err(CaseError::Fail(_))),
                "{what}: {verdict:?}"
            );
        }
    }
}
