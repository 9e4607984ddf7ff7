//! Prints where `guest_echo` built for an architecture is, found (and,
//! when it is missing and this program runs from a checkout with cargo at
//! hand, built first) as `portrange vm --arch` finds its own guest build:
//! a small program through the same code path, for `qemu/tests/vm.rs`.
//!
//! Usage: `echo_guest_for ARCH` (`x86_64`, `arm64`). Prints the path on
//! stdout and exits 0, or says why there is none on stderr and exits 1.

use std::process::ExitCode;

use arch::Arch;
use qemu::guest_program::{self, Artifact, Program};

const ECHO: Program<'static> = Program {
    package: "qemu",
    artifact: Artifact::Example("guest_echo"),
};

fn main() -> ExitCode {
    let Some(arch) = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse::<Arch>().ok())
    else {
        eprintln!("usage: echo_guest_for ARCH (x86_64, arm64)");
        return ExitCode::FAILURE;
    };
    let mut progress = |step: &str| eprintln!("echo_guest_for: {step}");
    match guest_program::locate_or_build(arch, &ECHO, &mut progress) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("echo_guest_for: {error}");
            ExitCode::FAILURE
        }
    }
}
