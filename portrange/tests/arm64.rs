//! arm64 end to end from any host: the whole suite on Debian's arm64 cloud
//! kernels under TCG (`portrange vm --arch arm64`), once per kernel, with
//! `portrange` cross-built for aarch64-unknown-linux-musl here; and the
//! arch choices of the command line. The VM tests skip with a printed
//! reason where qemu-system-aarch64 (apt-get install qemu-system-arm) or
//! the Rust target (rustup target add aarch64-unknown-linux-musl) is
//! missing.

mod common;

use std::process::Output;
use std::sync::Mutex;

use arch::Arch;
use common::{portrange, validate_ktap, vm_missing_for};

/// One VM at a time: arm64 under TCG is slow enough on two cores.
static ONE_VM: Mutex<()> = Mutex::new(());

/// Runs the binary with `args`; gives its exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = portrange(args);
    let text = |bytes| String::from_utf8(bytes).expect("utf-8 output");
    (status.code().unwrap_or(-1), text(stdout), text(stderr))
}

/// Whether an arm64 VM cannot run here; says why (see [`vm_missing_for`]).
fn cannot_boot_arm64() -> bool {
    vm_missing_for(Arch::Arm64)
}

/// The whole suite on a prebuilt arm64 kernel, as `vm.rs` checks it on
/// x86_64: valid KTAP, every case reported, each executed or skipped with
/// a reason, a pass, the profile docs/spec.md expects, TCG with its reason.
fn suite_passes(kernel: &str, profile: &str) {
    if cannot_boot_arm64() {
        return;
    }
    let _one = ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (code, ktap, stderr) = run(&[
        "vm", "--arch", "arm64", "--kernel", kernel, "--format", "ktap",
    ]);
    assert_eq!(code, 0, "{kernel}: exit {code}\n{ktap}\n{stderr}");
    let results = validate_ktap(&ktap);
    assert_eq!(results.len(), cases::catalogue().len(), "{ktap}");
    let skips: Vec<&String> = results.iter().filter(|l| l.contains(" # SKIP")).collect();
    for skip in &skips {
        assert!(
            skip.split(" # SKIP")
                .nth(1)
                .is_some_and(|r| r.trim().len() > 3),
            "a skip without a reason: {skip}"
        );
    }
    let executed = results.len() - skips.len();
    println!(
        "{kernel} arm64: {executed} executed, {} skipped",
        skips.len()
    );
    assert!(
        executed >= 150,
        "{kernel}: only {executed} cases executed\n{ktap}"
    );
    let profile_line = format!("# kernel profile: {profile} (matched");
    assert!(
        ktap.contains(&profile_line),
        "{kernel}: no {profile_line:?} in\n{ktap}"
    );
    assert!(
        ktap.contains("accelerator TCG (arm64 guest on an x86_64 host)")
            || Arch::host() == Arch::Arm64,
        "{ktap}"
    );
    assert!(
        stderr.contains(&format!("booting {kernel} (arm64, ")),
        "{stderr}"
    );
}

#[test]
fn suite_passes_on_debian_6_12_arm64_with_upstream_profile() {
    suite_passes("debian-6.12", "upstream");
}

#[test]
fn suite_passes_on_debian_6_1_arm64_with_stable_profile() {
    suite_passes("debian-6.1", "stable-6.1");
}

#[test]
fn a_payload_for_another_arch_is_refused_before_booting() {
    if cannot_boot_arm64() {
        return;
    }
    let host_program = common::PORTRANGE;
    let (code, _, stderr) = run(&[
        "vm",
        "--arch",
        "arm64",
        "--kernel",
        "debian-6.12",
        "--",
        host_program,
        "list",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{host_program} is not an ELF program for arm64")),
        "{stderr}"
    );
}

#[test]
fn a_guest_binary_of_the_wrong_arch_is_refused() {
    if cannot_boot_arm64() {
        return;
    }
    let (code, _, stderr) = run(&[
        "vm",
        "--arch",
        "arm64",
        "--kernel",
        "debian-6.12",
        "--guest-binary",
        common::PORTRANGE,
        "tcp4/sockopt/round_trip",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is not an ELF program for arm64"),
        "{stderr}"
    );
}

#[test]
fn unknown_arch_says_what_is_accepted() {
    for command in ["vm", "check", "build", "matrix"] {
        let (code, _, stderr) = run(&[command, "--arch", "riscv64"]);
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(
            stderr.contains("use x86_64 or arm64 (also spelled aarch64)"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn matrix_refuses_the_running_kernel_for_a_foreign_arch() {
    let other = Arch::ALL.into_iter().find(|a| *a != Arch::host()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&[
        "matrix",
        "--arch",
        other.kernel_name(),
        "--kernel",
        "running",
        "--out-dir",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--kernel running runs natively on this {} host, and --arch {other}",
            Arch::host()
        )),
        "{stderr}"
    );
}

#[test]
fn build_refuses_a_build_config_for_another_arch() {
    let (code, _, stderr) = run(&[
        "build",
        "--debian",
        "6.12",
        "--arch",
        "arm64",
        "--build-config",
        "build.config.portrange.minimal.x86_64",
        "--print-config",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "build.config.portrange.minimal.x86_64 sets ARCH=x86_64, but --arch arm64 was asked for"
        ),
        "{stderr}"
    );
    let (code, stdout, stderr) = run(&[
        "build",
        "--debian",
        "6.12",
        "--arch",
        "aarch64",
        "--print-config",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ARCH=arm64"), "{stdout}");
    assert!(
        stdout.contains("CROSS_COMPILE=aarch64-linux-gnu-"),
        "{stdout}"
    );
}
