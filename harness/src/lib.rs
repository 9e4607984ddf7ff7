//! The conformance framework.
//!
//! Cases are declared as [`CaseDef`]s (one property, the protocols and
//! families it applies to, the namespace sysctls it starts from) and
//! [`expand`]ed over the variant matrix by the framework. [`Probes`] decide
//! up front what the kernel offers, so a missing feature is a skip with its
//! reason, never a failure. The [`runner`] runs every case in a fresh
//! network namespace on its own thread, in parallel on libtest-mimic's pool;
//! [`report`]ers turn the results into libtest-style text, KTAP, JUnit and
//! JSON.
//!
//! Nothing here knows about VMs, kernel builds or a command line: the
//! `portrange` crate wires those around this framework.

mod case;
pub mod outcome;
pub mod probe;
pub mod profile;
pub mod randomized;
pub mod release;
pub mod report;
pub mod runner;
pub mod sockopt;
mod variant;

pub use case::{
    Body, Case, CaseDef, CaseError, Ctx, HARNESS_FAULTS, OrFail, Setup, describe, expand,
    expect_errno,
};
pub use outcome::{CaseResult, Outcome, Totals, Verdict};
pub use probe::Probes;
pub use randomized::Randomized;
pub use variant::{Family, Proto, Variant};
