//! The static `portrange` where kernel CI runs it: a kernel (Debian's
//! 6.12 cloud kernel, x86_64 and arm64) booted with an initramfs holding only Debian's
//! `busybox-static` and `portrange` as `ci/scripts/static.sh` builds it (a
//! release build for the musl target, no ELF interpreter, no shared
//! library), with a shell script as `/init`, as a kernel CI rootfs has it.
//! The script runs `portrange` bare (kselftest mode: KTAP on stdout) and
//! then the kselftest drop-in (the kernel's own `run_kselftest.sh`, laid
//! out as `make install` does, with `ci/kselftest/install.sh` adding the
//! static binary), all on the console, then reboots (QEMU exits).
//!
//! The test reads the console only: the KTAP must parse with the kernel's
//! own `tools/testing/kunit/kunit.py parse` (from Debian's
//! linux-source-6.12) to exactly the counts of portrange's own totals
//! line, and the kselftest runner must call the collection passed.
//!
//! Needs QEMU for the architecture (requirement `vm`; the kernel,
//! busybox-static and the source tree are fetched into the cache on first
//! use), its musl Rust target (`.ci/install-deps` adds both; requirement
//! `vm` too, as for the arm64 guests) and python3 for kunit.py. arm64 runs
//! under TCG on an x86_64 host.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use arch::Arch;
use common::rootfs::{self, Rootfs};

/// Longest the boot may take under TCG on a busy two-core machine: the
/// suite twice and a kernel boot take 9-11 s at load 3-6; they took 86 s
/// (x86_64) and 157 s (arm64) at load 10 while the kernel's warnings still
/// reached the console.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// One VM at a time: both tests' guests run under TCG on the same cores.
static ONE_VM: Mutex<()> = Mutex::new(());

/// The guest's `/init`: what a kernel CI rootfs's init does before and
/// after its test programs, with each program's output between markers.
/// It ends with a reboot, which QEMU's `-no-reboot` turns into its exit on
/// any kernel: a power-off needs ACPI on x86, which a minimal kernel may
/// lack ("Power off not available: System halted instead").
fn init_script() -> String {
    format!(
        "{}\
echo '==> portrange'
portrange
echo \"<== portrange exit status $?\"
echo '==> run_kselftest.sh'
/kselftest/run_kselftest.sh -c portrange
echo \"<== run_kselftest.sh exit status $?\"
reboot -f
",
        rootfs::INIT_PREAMBLE
    )
}

/// What `kunit.py parse` concluded: the test count of its `Ran N tests:`
/// line and the counts after it (`passed: P, skipped: S, ...`), by name.
fn kunit_counts(parsed: &str) -> (usize, BTreeMap<String, usize>) {
    let line = parsed
        .lines()
        .find_map(|l| l.split_once("Testing complete. Ran ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("kunit.py gave no summary:\n{parsed}"));
    let (ran, counts) = line.split_once(" tests: ").unwrap();
    let counts = counts
        .split(", ")
        .map(|pair| {
            let (name, count) = pair.split_once(": ").unwrap();
            (name.to_owned(), count.trim().parse().unwrap())
        })
        .collect();
    (ran.parse().unwrap(), counts)
}

#[test]
fn static_portrange_runs_from_a_busybox_rootfs_and_kunit_parses_its_ktap() {
    busybox_rootfs_on_debian_6_12(Arch::X86_64);
}

#[test]
fn static_arm64_portrange_runs_from_a_busybox_rootfs_and_kunit_parses_its_ktap() {
    busybox_rootfs_on_debian_6_12(Arch::Arm64);
}

/// Boots Debian's 6.12 kernel for `arch` with the busybox rootfs holding
/// the static portrange for `arch`, and checks the console.
fn busybox_rootfs_on_debian_6_12(arch: Arch) {
    if let Err(missing) = qemu::binary::locate_for(arch) {
        return require::skip_or_fail(require::Requirement::Vm, &missing.to_string());
    }
    let portrange = match rootfs::static_portrange(arch) {
        Ok(path) => path,
        Err(reason) => return require::skip_or_fail(require::Requirement::Vm, &reason),
    };
    if Command::new("python3").arg("--version").output().is_err() {
        return require::skip_or_fail(
            require::Requirement::Vm,
            "python3 not found, which the kernel's kunit.py needs (apt-get install python3)",
        );
    }
    let cache = qemu::kernel::default_cache_dir();
    let tree = kbuild::source::fetch_debian("6.12", &cache, &mut |line| eprintln!("{line}"))
        .unwrap_or_else(|e| panic!("fetching linux-source-6.12 for kunit.py and kselftest: {e}"));
    let kernel = qemu::kernel::resolve_for("debian-6.12", Some(arch), &cache, &mut |line| {
        eprintln!("{line}")
    })
    .unwrap_or_else(|e| panic!("fetching debian-6.12: {e}"));

    let kselftest = common::kselftest_install(&tree, &portrange);
    let scratch = tempfile::tempdir().unwrap();
    let initramfs = scratch.path().join("rootfs.cpio");
    Rootfs::new(&rootfs::busybox(arch), &init_script())
        .add_file("/bin/portrange", &portrange)
        .add_tree("/kselftest", kselftest.path())
        .write(&initramfs);
    let console = {
        let _one = ONE_VM
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rootfs::boot(arch, &kernel.image, &initramfs, BOOT_TIMEOUT)
    };

    // Bare portrange: kselftest mode, KTAP on stdout.
    let (section, status) = rootfs::section(&console, "portrange");
    // Boot messages may precede it; KTAP lines never start with '['.
    let ktap: Vec<&str> = section
        .iter()
        .copied()
        .filter(|l| !l.starts_with('['))
        .collect();
    let results = common::validate_ktap(&(ktap.join("\n") + "\n"));
    assert_eq!(results.len(), cases::catalogue().len(), "every case once");
    let own = common::ktap_totals(&ktap);
    assert_eq!(status, 0, "portrange's exit status:\n{console}");
    assert_eq!(own["fail"] + own["error"], 0, "{}", ktap.join("\n"));
    assert!(own["pass"] > 0, "{}", ktap.join("\n"));

    let script = tree.join("tools/testing/kunit/kunit.py");
    // The section as it came, as a CI's log parser gets it.
    let parsed = common::kunit_parse(&script, &(section.join("\n") + "\n"));
    let (ran, counts) = kunit_counts(&parsed);
    eprintln!("portrange's totals {own:?}; kunit.py parse: ran {ran}, {counts:?}");
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    assert_eq!(
        (
            ran,
            count("passed"),
            count("skipped"),
            count("failed") + count("crashed")
        ),
        (
            results.len(),
            own["pass"],
            own["skip"],
            own["fail"] + own["error"]
        ),
        "kunit.py parse of the console's KTAP against portrange's totals:\n{parsed}"
    );

    // The kselftest drop-in: the kernel's runner runs the static binary.
    let (runner, status) = rootfs::section(&console, "run_kselftest.sh");
    let runner = runner.join("\n");
    assert_eq!(status, 0, "run_kselftest.sh's exit status:\n{runner}");
    assert!(
        runner.contains("# ok 1 tcp4/sockopt/round_trip"),
        "the binary's KTAP is relayed:\n{runner}"
    );
    assert!(
        runner
            .lines()
            .any(|l| l.starts_with("ok 1 selftests: portrange: portrange")),
        "kselftest's verdict line:\n{runner}"
    );
}
