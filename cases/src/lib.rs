//! The IP_LOCAL_PORT_RANGE conformance cases.
//!
//! Each module holds the cases for one group of properties as a table of
//! [`CaseDef`]s, their expectations asked of the reference model (module
//! `model`) where it covers them; [`catalogue`] expands all of them over the
//! protocol x family matrix.

mod accepted;
mod autobind;
mod clamping;
pub mod egress;
mod exhaustion;
mod faults;
mod model;
mod mptcp_pm;
mod port_set;
mod ports;
mod profiles;
mod random;
mod reserved;
pub mod selftest;
mod sharing;
mod sockopt;
mod subflows;

use harness::{Case, CaseDef, expand};

/// Every case definition, in report order.
pub fn definitions() -> Vec<CaseDef> {
    [
        sockopt::cases(),
        clamping::cases(),
        exhaustion::cases(),
        reserved::cases(),
        autobind::cases(),
        accepted::cases(),
        random::cases(),
        profiles::cases(),
        subflows::cases(),
        sharing::cases(),
    ]
    .concat()
}

/// Every case plus the harness fault cases (which hang, crash and flood on
/// purpose): what the `portrange` binary offers, leaving the fault cases
/// out of runs unless asked.
pub fn catalogue_with_harness_faults() -> Vec<Case> {
    let mut cases = catalogue();
    cases.extend(expand(&faults::cases()));
    cases
}

/// Every case, expanded over the variants each applies to.
pub fn catalogue() -> Vec<Case> {
    expand(&definitions())
}
