//! `portrange check` end to end: Debian's linux-source-6.12 built with a
//! shipped build.config, booted in QEMU, the suite run inside, one verdict.
//! On both architectures the configuration is the minimal one with GKI's
//! run-time traits, built with clang (`build.config.portrange.gki-traits.
//! <x86_64|aarch64>`: a built-in command line, panic on oops, lockdep,
//! UBSAN traps; portrange/tests/gki_traits.rs provokes faults on the same
//! kernels). The first run fetches the source and builds the kernels
//! (minutes, cached under ~/.cache/portrange); later runs rebuild
//! incrementally. Needs the build packages of .ci/install-deps and QEMU;
//! skips with a printed reason without them (fails under
//! PORTRANGE_REQUIRE=vm,kbuild).

mod common;

use common::{one_build, portrange, qemu_missing, validate_ktap};

/// GKI's built-in command line comes before portrange's on x86 (no
/// CMDLINE_OVERRIDE): portrange's console= still wins, and the kernel under
/// lockdep and UBSAN passes the whole suite.
#[test]
fn check_builds_boots_and_passes_the_gki_traits_x86_64_kernel() {
    if qemu_missing() || common::kbuild_missing() {
        return;
    }
    let _one = one_build();
    let output = portrange(&[
        "check",
        "--debian",
        "6.12",
        "--build-config",
        kbuild::shipped::GKI_TRAITS,
        "--format",
        "ktap",
        "--timeout",
        "300",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{ktap}\n{stderr}");
    let results = validate_ktap(&ktap);
    assert_eq!(results.len(), cases::catalogue().len(), "{ktap}");
    assert!(ktap.contains("# kernel profile: upstream"), "{ktap}");
    assert!(
        ktap.contains(
            "# kernel command line: console=ttynull stack_depot_disable=on \
             cgroup_disable=pressure bootconfig console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check"
        ),
        "the built-in command line, then portrange's: {ktap}"
    );
    assert!(stderr.contains("portrange: built "), "{stderr}");
}

/// The same for arm64 from any host: the shipped GKI-traits aarch64
/// build.config (ARCH=arm64, LLVM=1: clang and lld, no GNU cross
/// toolchain), its arch/arm64/boot/Image booted under TCG with the
/// cross-built portrange. Debian's tree has no arm64 CMDLINE_EXTEND, so
/// the built-in line stands in only for a missing one: the kernel runs with
/// portrange's (gki_traits.rs checks GKI's order). The first run builds
/// the kernel (see docs/kernel-builds.md for how long).
#[test]
fn check_builds_boots_and_passes_the_gki_traits_arm64_kernel() {
    if common::vm_missing_for(arch::Arch::Arm64) || common::kbuild_missing() {
        return;
    }
    let _one = one_build();
    let output = portrange(&[
        "check",
        "--debian",
        "6.12",
        "--build-config",
        kbuild::shipped::gki_traits(arch::Arch::Arm64),
        "--format",
        "ktap",
        "--timeout",
        "300",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{ktap}\n{stderr}");
    let results = validate_ktap(&ktap);
    assert_eq!(results.len(), cases::catalogue().len(), "{ktap}");
    assert!(ktap.contains("# kernel profile: upstream"), "{ktap}");
    assert!(
        ktap.contains("# kernel command line: console=ttyAMA0 panic=-1 quiet loglevel=5\n"),
        "{ktap}"
    );
    assert!(stderr.contains("arch/arm64/boot/Image (arm64)"), "{stderr}");
}
