//! Helpers shared by the `portrange` end-to-end tests. Each test binary
//! uses a subset, hence the allow.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The `portrange` binary under test.
pub const PORTRANGE: &str = env!("CARGO_BIN_EXE_portrange");

/// A command that runs the binary with `args` (more can be added).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(PORTRANGE);
    command.args(args);
    command
}

/// Runs the binary with `args` to its end.
pub fn portrange(args: &[&str]) -> Output {
    command(args).output().expect("run portrange")
}

/// Whether QEMU is missing; says so (the test then returns early) when it is.
pub fn qemu_missing() -> bool {
    let missing = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err();
    if missing {
        eprintln!("skipped: qemu-system-x86_64 not found (apt-get install qemu-system-x86)");
    }
    missing
}

/// Checks KTAP v1 structure: version line, plan before any result, results
/// numbered 1..=N in order, every other line a diagnostic. Returns the
/// result lines.
pub fn validate_ktap(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("KTAP version 1"));
    let mut planned = None;
    let mut results = Vec::new();
    for line in lines {
        if let Some(count) = line.strip_prefix("1..") {
            assert!(planned.is_none(), "second plan line: {line}");
            assert!(results.is_empty(), "plan after results");
            planned = Some(count.split(' ').next().unwrap().parse::<usize>().unwrap());
        } else if line.starts_with("ok ") || line.starts_with("not ok ") {
            let rest = line.trim_start_matches("not ").trim_start_matches("ok ");
            let (number, description) = rest.split_once(' ').expect("number and name");
            assert_eq!(
                number.parse::<usize>().unwrap(),
                results.len() + 1,
                "{line}"
            );
            let name = description.split(" # ").next().unwrap();
            assert!(
                !name.is_empty() && !name.contains(' '),
                "bad name in {line}"
            );
            if let Some(directive) = description.split_once(" # ").map(|(_, d)| d) {
                assert!(
                    directive.starts_with("SKIP "),
                    "unknown directive in {line}"
                );
            }
            results.push(line.to_owned());
        } else {
            assert!(
                line.starts_with('#'),
                "neither result, plan nor diagnostic: {line:?}"
            );
        }
    }
    assert_eq!(
        planned,
        Some(results.len()),
        "plan does not match the results"
    );
    results
}

/// Whether QEMU for `arch` is missing; says so (the test then returns
/// early) when it is.
pub fn qemu_missing_for(arch: arch::Arch) -> bool {
    match qemu::binary::locate_for(arch) {
        Ok(_) => false,
        Err(missing) => {
            eprintln!("skipped: {missing}");
            true
        }
    }
}

/// Cross-builds `portrange` for `arch` (the static musl build `portrange
/// vm --arch` packs as `/init`) where it looks for it, once per test
/// binary (cargo's incremental build: seconds when nothing changed), so it
/// is never older than the source. `Err` is the reason to skip: the Rust
/// target is not installed.
pub fn guest_portrange(arch: arch::Arch) -> Result<(), String> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let program = qemu::guest_program::Program {
                package: "portrange",
                artifact: qemu::guest_program::Artifact::Bin("portrange"),
            };
            let args = qemu::guest_program::build_args(arch, &program);
            let output = Command::new(env!("CARGO"))
                .args(&args)
                .output()
                .expect("run cargo");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                return Ok(());
            }
            let target = qemu::guest_program::rust_target(arch);
            assert!(
                stderr.contains("target may not be installed"),
                "cargo {} failed:\n{stderr}",
                args.join(" ")
            );
            Err(format!(
                "the Rust target {target} is not installed (rustup target add {target})"
            ))
        })
        .clone()
}
