//! Cases that misbehave on purpose, to show the harness turns each into a
//! named error and never into a pass. Left out of every run unless asked
//! for (`--include-harness-faults`) and out of [`crate::catalogue`].

use std::io::Write;
use std::time::Duration;

use harness::{CaseDef, CaseError, Ctx, Family, Proto, Setup};

const ONLY_TCP4: (&[Proto], &[Family]) = (&[Proto::Tcp], &[Family::V4]);

macro_rules! fault_case {
    ($name:literal, $body:ident) => {
        CaseDef {
            name: $name,
            protos: ONLY_TCP4.0,
            families: ONLY_TCP4.1,
            setup: Setup {
                port_range: None,
                reserved_ports: None,
            },
            body: $body,
        }
    };
}

/// The cases of this module.
pub const CASES: &[CaseDef] = &[
    fault_case!("harness_fault/hangs", hangs),
    fault_case!("harness_fault/panics", panics),
    fault_case!("harness_fault/floods_the_console", floods),
    fault_case!("harness_fault/aborts_the_process", aborts),
];

/// Never returns: the per-case timeout must end it as a harness error.
fn hangs(_: &Ctx) -> Result<(), CaseError> {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Panics: the runner must report a failure naming the panic.
fn panics(_: &Ctx) -> Result<(), CaseError> {
    panic!("deliberate panic in a harness fault case")
}

/// Writes 4 MiB to stderr (the VM's console), then passes: the results
/// must still arrive intact.
fn floods(_: &Ctx) -> Result<(), CaseError> {
    let line = format!("{}\n", "flood ".repeat(20));
    let mut err = std::io::stderr().lock();
    for _ in 0..(4 << 20) / line.len() {
        let _ = err.write_all(line.as_bytes());
    }
    Ok(())
}

/// Aborts the whole process: natively the run dies (no verdict, non-zero
/// status); in a VM `/init` dies and the host reports it with the results
/// received before.
fn aborts(_: &Ctx) -> Result<(), CaseError> {
    std::process::abort()
}
