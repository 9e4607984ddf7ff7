//! Properties whose expected behaviour differs between kernel generations,
//! checked against named profiles.
//!
//! A case here passes when the kernel matches one known profile and records
//! which; it fails, naming the closest profile and the difference, when the
//! kernel matches none.

use harness::profile::Profile::{Stable61, Upstream};
use harness::profile::Property::ConnectParity;
use harness::{CaseDef, CaseError, Ctx, OrFail, Proto, Setup, check};

use crate::ports::{SERVER_PORT, connect_to, server_on, socket_with_range};

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    vec![
        CaseDef::new(
            "connect/port_parity_matches_a_known_profile",
            connect_parity,
        )
        .protos(&[Proto::Tcp, Proto::Mptcp])
        .setup(Setup::netns_range(40000, 49999)),
    ]
}

/// Rounds of three connects each. Upstream adds a random step after each
/// pick, so the parity of its picks is close to a coin toss: every round
/// landing on `lo`'s parity three times by luck is vanishingly unlikely
/// (0 of 200 runs of this case here matched the wrong profile).
const ROUNDS: u16 = 12;

/// Each round connects three clients with a fresh 6-port range (`lo` even)
/// to a server of its own and notes the parity of the ports picked. 6.1
/// stable gives `lo`'s parity to all three (three even ports exist) in
/// every round; upstream mixes parities in some round.
fn connect_parity(ctx: &Ctx) -> Result<(), CaseError> {
    let (mut lo_parity_rounds, mut other_parity_rounds) = (0, 0);
    let mut held = Vec::new();
    for round in 0..ROUNDS {
        let server_port = SERVER_PORT + round;
        held.push(server_on(ctx, server_port)?);
        let lo = 42000 + 8 * round;
        let hi = lo + 5;
        let mut ports = Vec::new();
        for n in 1..=3 {
            let client = socket_with_range(ctx, lo, hi)?;
            let port = connect_to(ctx, &client, server_port)
                .or_fail(&format!("round {round}: connect() #{n}"))?;
            check!(
                (lo..=hi).contains(&port),
                "round {round}: connect() #{n} picked {port}, outside {lo}..={hi}"
            );
            ports.push(port);
            held.push(client);
        }
        if ports.iter().all(|p| p % 2 == lo % 2) {
            lo_parity_rounds += 1;
        } else if ports.iter().all(|p| p % 2 != lo % 2) {
            other_parity_rounds += 1;
        }
    }
    if lo_parity_rounds == ROUNDS {
        ctx.matched_profile(ConnectParity, Stable61);
    } else if other_parity_rounds == ROUNDS {
        return Err(CaseError::Fail(format!(
            "matches no known profile: closest is {Stable61} (a parity preference), but every \
             one of {ROUNDS} rounds picked only ports of the parity opposite to lo's"
        )));
    } else {
        ctx.matched_profile(ConnectParity, Upstream);
    }
    Ok(())
}
