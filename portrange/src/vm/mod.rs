//! Running the suite (or any test binary) inside a kernel booted in QEMU.
//!
//! The same `portrange` executable plays both parts: on the host it packs
//! itself as the guest's `/init` ([`host`]); booted as PID 1 it runs the
//! cases and sends each result back as a [`GuestMessage`] over the `qemu`
//! crate's framed result channel ([`guest`]). The host renders the results
//! with the same reporters as a native run. With a program to run instead
//! of the suite (the cargo runner), [`runner`] gathers what of the host it
//! gets in the guest.

pub mod guest;
pub mod host;
pub mod runner;

use serde::{Deserialize, Serialize};

use harness::Case;
use harness::outcome::CaseResult;
use harness::probe::Probes;
use harness::report::Phases;
use harness::runner::RunOptions;

/// Kernel modules the cases can use, packed and loaded when the kernel has
/// them as modules (SCTP on Debian's kernels; veth for topologies).
pub const GUEST_MODULES: &[&str] = &["sctp", "veth"];

/// What the guest tells the host, one JSON message per frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GuestMessage {
    /// What the probes found, sent before any result.
    Probes {
        /// The probes.
        probes: Probes,
    },
    /// A line for the report header (modules that could not be loaded).
    Note {
        /// The text.
        text: String,
    },
    /// One case's result, sent as the case ends.
    Result {
        /// The result.
        result: CaseResult,
    },
    /// How long booting, probing and the cases took, sent after the last
    /// result.
    Phases {
        /// The durations the guest measured.
        phases: Phases,
    },
}

/// The report line about the guest's phases, as `--format text` and KTAP
/// show it; `None` unless the guest measured all three.
pub fn phases_note(phases: &Phases) -> Option<String> {
    let seconds = |micros: Option<u64>| micros.map(|m| m as f64 / 1e6);
    Some(format!(
        "guest: ready (kernel booted, /init set up, modules loaded) at {:.2} s; probes {:.2} s; cases {:.2} s",
        seconds(phases.boot_micros)?,
        seconds(phases.probes_micros)?,
        seconds(phases.cases_micros)?,
    ))
}

/// What the host asks the guest to run: the exact names of the cases (the
/// host has applied filters and shards) and how to schedule them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteRequest {
    /// Case names, in order.
    pub cases: Vec<String>,
    /// Threads and per-case timeout.
    pub options: RunOptions,
}

/// The guest's argument vector for a suite run: `suite` and the request
/// as JSON.
pub fn suite_args(cases: &[Case], options: &RunOptions) -> Vec<String> {
    let request = SuiteRequest {
        cases: cases.iter().map(|c| c.name.clone()).collect(),
        options: options.clone(),
    };
    vec![
        "suite".to_owned(),
        serde_json::to_string(&request).expect("suite requests serialize"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_phases_note_reads_as_before() {
        let phases = Phases {
            boot_micros: Some(2_530_000),
            probes_micros: Some(20_000),
            cases_micros: Some(5_004_999),
            vm_micros: None,
        };
        assert_eq!(
            phases_note(&phases).unwrap(),
            "guest: ready (kernel booted, /init set up, modules loaded) at 2.53 s; probes 0.02 s; cases 5.00 s"
        );
        assert_eq!(phases_note(&Phases::default()), None);
    }
}
