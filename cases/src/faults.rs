//! Cases that misbehave on purpose, to show the harness turns each into a
//! named error and never into a pass. Left out of every run unless asked
//! for (`--include-harness-faults`) and out of [`crate::catalogue`].

use std::io::Write;
use std::time::Duration;

use harness::{CaseDef, CaseError, Ctx, Family, Proto};

/// The cases of this module, each for tcp4 only.
pub fn cases() -> Vec<CaseDef> {
    [
        CaseDef::new("harness_fault/hangs", hangs),
        CaseDef::new("harness_fault/panics", panics),
        CaseDef::new("harness_fault/floods_the_console", floods),
        CaseDef::new("harness_fault/aborts_the_process", aborts),
        CaseDef::new("harness_fault/dies_of_sigsegv", dies_of_sigsegv),
    ]
    .into_iter()
    .map(|case| case.protos(&[Proto::Tcp]).families(&[Family::V4]))
    .collect()
}

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
/// status) unless cases run in processes of their own (`--isolate
/// process`), where it is that case's harness error naming SIGABRT; in a
/// VM `/init` dies and the host reports it with the results received
/// before.
fn aborts(_: &Ctx) -> Result<(), CaseError> {
    std::process::abort()
}

/// Dies of SIGSEGV, as a case that dereferences a bad pointer would, and
/// is met the same way as [`aborts`]. (Rust's runtime catches SIGSEGV to
/// detect stack overflows, so the default action is restored first.)
fn dies_of_sigsegv(_: &Ctx) -> Result<(), CaseError> {
    use nix::sys::signal::{SigHandler, Signal, raise, signal};
    // SAFETY: installs the default action, which runs no code of ours.
    unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) }
        .map_err(|e| CaseError::Harness(format!("resetting SIGSEGV's action: {e}")))?;
    raise(Signal::SIGSEGV).map_err(|e| CaseError::Harness(format!("raise(SIGSEGV): {e}")))?;
    Err(CaseError::Harness("survived SIGSEGV".into()))
}
