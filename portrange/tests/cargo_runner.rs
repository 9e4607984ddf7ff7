//! `portrange vm --kernel K --` as cargo's runner, end to end: the sample
//! crate's tests (samples/runner-sample: a fixture read through
//! CARGO_MANIFEST_DIR, a variable set on the host, a temporary file, a
//! helper binary, panics) run by `cargo test` natively and through the
//! runner on Debian's 6.12 kernel and on the minimal kernel built from
//! Debian's source (the one CI builds: with GKI's run-time traits, see
//! `common::gki_traits_kernel`) must give the same results, the same exit status and
//! the same panic with its backtrace, and leave the crate's directory as
//! it was. Real QEMU, real kernels; skips with the reason where QEMU (or,
//! for the minimal kernel, the kernel build tools) is missing, fails
//! instead under PORTRANGE_REQUIRE=vm (and kbuild).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::SystemTime;

use common::qemu_missing;

/// The sample crate's directory.
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/runner-sample");
/// The variable the sample's `host_variable_reaches_the_test` reads, and
/// the value it expects.
const GREETING: (&str, &str) = ("RUNNER_SAMPLE_GREETING", "hello, runner");

/// One nested cargo and VM at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `cargo test -p runner-sample --test runner -- LIBTEST_ARGS` in the
/// sample's directory, with the greeting set, building into a target
/// directory of this test's own; through `portrange vm --kernel KERNEL --`
/// when a kernel is given.
fn cargo_test(kernel: Option<&str>, extra_env: &[(&str, &str)], libtest_args: &[&str]) -> Output {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-runner");
    let mut command = Command::new(env!("CARGO"));
    command
        .args(["test", "-p", "runner-sample", "--test", "runner", "--"])
        .args(libtest_args)
        .current_dir(SAMPLE)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env(GREETING.0, GREETING.1)
        .envs(extra_env.iter().copied())
        .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER");
    as_from_a_shell(&mut command);
    if let Some(kernel) = kernel {
        command.env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
            format!("{} vm --kernel {kernel} --", common::PORTRANGE),
        );
    }
    command.output().expect("run cargo")
}

/// Leaves out of `command`'s environment what cargo gave this test and a
/// shell would not have: the path of portrange (`CARGO_BIN_EXE_portrange`),
/// which the runner would pack (100 MiB) for the program too.
fn as_from_a_shell(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CARGO_BIN_EXE_") {
            command.env_remove(name);
        }
    }
}

/// What libtest reported, in a form that does not depend on timing or
/// thread scheduling: the `running N tests` line, each test's line
/// (sorted), and the summary without its time.
fn results(stdout: &str) -> Vec<String> {
    let mut tests: Vec<String> = stdout
        .lines()
        .filter(|line| line.starts_with("test ") && line.contains(" ... "))
        .map(str::to_owned)
        .collect();
    tests.sort();
    let running = stdout.lines().filter(|line| line.starts_with("running "));
    let summary = stdout
        .lines()
        .filter(|line| line.starts_with("test result: "))
        .map(|line| line.split("; finished in ").next().unwrap_or(line));
    running
        .map(str::to_owned)
        .chain(tests)
        .chain(summary.map(str::to_owned))
        .collect()
}

/// Every path under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                pending.push(entry.path());
            }
            found.insert(entry.path(), (metadata.len(), metadata.modified().unwrap()));
        }
    }
    found
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sample's tests on `kernel`: the same results as natively, then the
/// same failure, exit status and backtrace for the test that panics.
fn runs_as_natively(kernel: &str) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let native = cargo_test(None, &[], &[]);
    let native_stdout = text(&native.stdout);
    assert!(
        native.status.success(),
        "{native_stdout}\n{}",
        text(&native.stderr)
    );
    let before = snapshot(Path::new(SAMPLE));
    let in_vm = cargo_test(Some(kernel), &[], &[]);
    let (stdout, stderr) = (text(&in_vm.stdout), text(&in_vm.stderr));
    assert_eq!(
        in_vm.status.code(),
        native.status.code(),
        "{stdout}\n{stderr}"
    );
    assert_eq!(results(&stdout), results(&native_stdout), "{stderr}");
    assert!(
        results(&stdout).contains(&"test helper_binary_runs ... ok".to_owned()),
        "{stdout}"
    );
    assert!(
        stderr.contains("portrange: --share auto packs the files: "),
        "{stderr}"
    );
    assert_eq!(
        snapshot(Path::new(SAMPLE)),
        before,
        "the run wrote into {SAMPLE}"
    );

    let panicking = [
        "--ignored",
        "--exact",
        "panics_with_a_backtrace",
        "--nocapture",
    ];
    let backtrace = [("RUST_BACKTRACE", "1")];
    let native = cargo_test(None, &backtrace, &panicking);
    let in_vm = cargo_test(Some(kernel), &backtrace, &panicking);
    let (stdout, stderr) = (text(&in_vm.stdout), text(&in_vm.stderr));
    assert_eq!(
        in_vm.status.code(),
        native.status.code(),
        "{stdout}\n{stderr}"
    );
    assert_eq!(results(&stdout), results(&text(&native.stdout)), "{stderr}");
    for (name, stderr) in [("native", text(&native.stderr)), ("vm", stderr)] {
        for wanted in [
            "panicked at samples/runner-sample/tests/runner.rs:",
            "a panic with a backtrace",
            "stack backtrace:",
            "runner::inner_frame_of_the_panic",
            "error: test failed, to rerun pass `-p runner-sample --test runner`",
        ] {
            assert!(
                stderr.contains(wanted),
                "{name}: no {wanted:?} in\n{stderr}"
            );
        }
        // cargo takes 101 (libtest's failure) as a test failure and names
        // any other exit status: libtest's came through the VM unchanged.
        assert!(
            !stderr.contains("process didn't exit successfully"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn sample_tests_run_as_natively_on_debian_6_12() {
    if qemu_missing() {
        return;
    }
    runs_as_natively("debian-6.12");
}

#[test]
fn sample_tests_run_as_natively_on_the_minimal_gki_traits_kernel() {
    let Some(kernel) = common::gki_traits_kernel(arch::Arch::X86_64) else {
        return;
    };
    runs_as_natively(&kernel.to_string_lossy());
}

#[test]
fn unavailable_sharing_is_refused_in_one_line() {
    if qemu_missing() {
        return;
    }
    let output = common::command(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--share",
        "9p",
        "--",
        "/bin/true",
    ])
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("portrange: error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(
        error.contains("--share 9p: kernel debian-6.12 lacks 9p (CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS not set in ")
            && error.ends_with("): use --share pack"),
        "{error}"
    );
}

#[test]
fn a_tree_over_the_limit_is_refused_naming_the_flag() {
    if qemu_missing() {
        return;
    }
    let output = common::command(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--max-pack-size",
        "0",
        "--",
        "/bin/true",
    ])
    .current_dir(SAMPLE)
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "portrange: error: the files to pack for the VM come to more than 0 MiB, the limit, at "
        ) && stderr.contains(": raise it with --max-pack-size MIB"),
        "{stderr}"
    );
}

#[test]
fn the_working_directory_is_read_only_and_tmp_is_writable() {
    if qemu_missing() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("read-only-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::write(dir.path().join("kept.txt"), "on the host\n").unwrap();
    let script = "cat kept.txt && touch \"$TMPDIR/scratch\" && echo tmp-ok && touch here";
    let mut command = common::command(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--include",
        "/usr/bin/touch",
        "--include",
        "/usr/bin/cat",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    as_from_a_shell(&mut command);
    let output = command.current_dir(dir.path()).output().unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "on the host\ntmp-ok\n", "{stderr}");
    assert!(
        stderr.contains("touch: cannot touch 'here': Read-only file system"),
        "{stderr}"
    );
    assert!(!dir.path().join("here").exists());
}
