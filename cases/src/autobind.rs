//! Ports picked implicitly by connect().

use std::collections::BTreeSet;

use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Proto, Setup, check};

use crate::ports::{connect_to_server, server, show, socket_with_range};

/// The cases of this module.
pub const CASES: &[CaseDef] = &[CaseDef {
    name: "connect/autobind_picks_from_socket_range",
    protos: Proto::ALL,
    families: Family::BOTH,
    setup: Setup {
        port_range: Some((40000, 49999)),
        reserved_ports: None,
    },
    body: connect_autobind,
}];

/// Four clients with the range 41000..=41003 connect to one server without
/// binding first: each gets a distinct port of that range.
fn connect_autobind(ctx: &Ctx) -> Result<(), CaseError> {
    let (lo, hi) = (41000, 41003);
    let _server = server(ctx)?;
    let mut clients = Vec::new();
    let mut ports = BTreeSet::new();
    for n in 1..=4 {
        let client = socket_with_range(ctx, lo, hi)?;
        let port = connect_to_server(ctx, &client).or_fail(&format!("connect() of client {n}"))?;
        check!(
            (lo..=hi).contains(&port),
            "client {n} was given port {port}, outside its range {lo}..={hi}"
        );
        ports.insert(port);
        clients.push(client);
    }
    check!(
        ports.len() == 4,
        "four clients to one destination share ports: {}",
        show(&ports)
    );
    Ok(())
}
