//! `portrange check` end to end: Debian's linux-source-6.12 built with the
//! shipped minimal build.config, booted in QEMU, the suite run inside, one
//! verdict. The first run fetches the source and builds the kernel (minutes,
//! cached under ~/.cache/portrange); later runs rebuild incrementally. Needs
//! the build packages of .ci/install-deps and QEMU; skips with a printed
//! reason without them (fails under PORTRANGE_REQUIRE=vm,kbuild).

mod common;

use std::sync::{Mutex, MutexGuard};

use common::{portrange, qemu_missing, validate_ktap};

/// One kernel build and VM at a time: both tests build a kernel on first
/// use, with every core.
static ONE_BUILD: Mutex<()> = Mutex::new(());

fn one_build() -> MutexGuard<'static, ()> {
    ONE_BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn check_builds_boots_and_passes_the_minimal_kernel() {
    if qemu_missing() || common::kbuild_missing() {
        return;
    }
    let _one = one_build();
    let output = portrange(&[
        "check",
        "--debian",
        "6.12",
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
    assert!(stderr.contains("portrange: built "), "{stderr}");
}

/// The same for arm64 from any host: the shipped minimal aarch64
/// build.config (ARCH=arm64, CROSS_COMPILE=aarch64-linux-gnu-), its
/// arch/arm64/boot/Image booted under TCG with the cross-built portrange.
/// The first run builds the kernel (about 10-19 minutes on 2 shared cores).
#[test]
fn check_builds_boots_and_passes_the_minimal_arm64_kernel() {
    if common::vm_missing_for(arch::Arch::Arm64) || common::kbuild_missing() {
        return;
    }
    let cross = kbuild::per_arch::kernel_arch(arch::Arch::Arm64);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let gcc = format!("{}gcc", cross.cross_compile);
    if !std::env::split_paths(&path).any(|dir| dir.join(&gcc).is_file()) {
        let reason = format!("{gcc} not found: apt-get install {}", cross.cross_package);
        require::skip_or_fail(require::Requirement::Kbuild, &reason);
        return;
    }
    let _one = one_build();
    let output = portrange(&[
        "check",
        "--debian",
        "6.12",
        "--arch",
        "arm64",
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
    assert!(stderr.contains("arch/arm64/boot/Image (arm64)"), "{stderr}");
}
