//! `portrange`: the IP_LOCAL_PORT_RANGE conformance suite's command line.
//!
//! The command line itself lives in `harness::cli`; this binary only hands
//! it the catalogue, because the catalogue's crate depends on the harness
//! and not the other way round.

fn main() -> std::process::ExitCode {
    harness::cli::main(harness::cli::Catalogue {
        cases: cases::catalogue_with_harness_faults(),
        scenarios: cases::scenarios(),
    })
}
