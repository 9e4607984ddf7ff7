//! Faults turn into named errors, never passes: the harness fault cases
//! (which hang, panic, flood the console and abort on purpose) natively
//! and inside a VM, where an aborting case kills `/init`. Native runs need
//! root (or user namespaces); VM runs need qemu-system-x86_64 and skip
//! with a printed reason without it.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{validate_ktap, validate_ktap_head};

/// Runs the binary with `args`; gives what it did and how long it took.
fn timed(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let output = common::portrange(args);
    (output, start.elapsed())
}

fn line_of<'a>(ktap: &'a str, case: &str) -> &'a str {
    ktap.lines()
        .find(|l| l.starts_with(&format!("# {case}: ")))
        .unwrap_or_else(|| panic!("no diagnostic for {case} in\n{ktap}"))
}

#[test]
fn native_hang_is_a_timeout_error_and_panic_a_failure() {
    let (output, took) = timed(&[
        "run",
        "--include-harness-faults",
        "--exact",
        "--case-timeout",
        "1",
        "--format",
        "ktap",
        "tcp4/harness_fault/hangs",
        "tcp4/harness_fault/panics",
        "tcp4/sockopt/round_trip",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    if output.status.code() == Some(4) {
        common::unprivileged(&format!("no case could run here: {ktap}"));
        return;
    }
    let results = validate_ktap(&ktap);
    assert_eq!(output.status.code(), Some(1), "{ktap}");
    assert_eq!(results.len(), 3, "{ktap}");
    assert!(
        line_of(&ktap, "tcp4/harness_fault/hangs").contains("harness error: timed out after 1 s")
    );
    assert!(
        line_of(&ktap, "tcp4/harness_fault/panics").contains("case panicked: deliberate panic")
    );
    assert!(ktap.contains("ok 1 tcp4/sockopt/round_trip"), "{ktap}");
    assert!(
        took < Duration::from_secs(10),
        "a hung case held the run for {took:?}"
    );
}

/// The default, `--isolate thread`: cases share one process, so an
/// aborting case takes the process, but the KTAP streamed so far stays:
/// the head, the plan of every case, and the results of the cases that
/// ended before, which the kernel's parser reads with the rest reported as
/// crashed.
#[test]
fn native_abort_ends_the_run_without_a_verdict_but_keeps_the_ktap_so_far() {
    let (output, _) = timed(&[
        "run",
        "--include-harness-faults",
        "--threads",
        "1",
        "--format",
        "ktap",
        "--exact",
        "tcp4/sockopt/round_trip",
        "udp4/sockopt/round_trip",
        "tcp4/harness_fault/aborts_the_process",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    if output.status.code() == Some(4) {
        eprintln!("skipped: no case could run here: {ktap}");
        return;
    }
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{ktap}");
    let (planned, results) = validate_ktap_head(&ktap);
    assert_eq!(planned, 3, "{ktap}");
    assert_eq!(
        results,
        [
            "ok 1 tcp4/sockopt/round_trip",
            "ok 2 udp4/sockopt/round_trip"
        ],
        "{ktap}"
    );
    assert!(
        !ktap.contains("# Totals"),
        "a finished run was claimed:\n{ktap}"
    );
    let Some(kunit) = common::kunit_py() else {
        return;
    };
    let parsed = common::kunit_parse(&kunit, &ktap);
    assert!(
        parsed.contains("Ran 3 tests: passed: 2, crashed: 1"),
        "kunit.py parse:\n{parsed}\nof:\n{ktap}"
    );
}

/// With `--isolate process` (one case at a time, so the order is the
/// catalogue's) an abort and a segfault are harness errors naming their
/// signals, a hang's process group is killed at the timeout, and the
/// cases after each still run and pass; the report says which isolation
/// was used.
#[test]
fn native_abort_in_process_isolation_is_an_error_and_the_run_goes_on() {
    let (output, took) = timed(&[
        "run",
        "--isolate",
        "process",
        "--threads",
        "1",
        "--include-harness-faults",
        "--exact",
        "--case-timeout",
        "1",
        "--format",
        "ktap",
        "tcp4/sockopt/round_trip",
        "tcp4/harness_fault/hangs",
        "tcp4/harness_fault/panics",
        "tcp4/harness_fault/floods_the_console",
        "tcp4/harness_fault/aborts_the_process",
        "tcp4/harness_fault/dies_of_sigsegv",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    if output.status.code() == Some(4) {
        eprintln!("skipped: no case could run here: {ktap}");
        return;
    }
    let results = validate_ktap(&ktap);
    assert_eq!(output.status.code(), Some(1), "{ktap}");
    assert_eq!(
        results,
        [
            "ok 1 tcp4/sockopt/round_trip",
            "not ok 2 tcp4/harness_fault/hangs",
            "not ok 3 tcp4/harness_fault/panics",
            "ok 4 tcp4/harness_fault/floods_the_console",
            "not ok 5 tcp4/harness_fault/aborts_the_process",
            "not ok 6 tcp4/harness_fault/dies_of_sigsegv",
        ],
        "{ktap}"
    );
    assert!(ktap.contains("# isolation: process ("), "{ktap}");
    assert!(
        line_of(&ktap, "tcp4/harness_fault/hangs").contains(
            "harness error: timed out after 1 s (the case is stuck in the kernel or in a \
             blocking call); its process group was killed"
        ),
        "{ktap}"
    );
    assert!(
        line_of(&ktap, "tcp4/harness_fault/panics").contains("case panicked: deliberate panic")
    );
    assert_eq!(
        line_of(&ktap, "tcp4/harness_fault/aborts_the_process"),
        "# tcp4/harness_fault/aborts_the_process: harness error: the case's process was killed by SIGABRT"
    );
    assert_eq!(
        line_of(&ktap, "tcp4/harness_fault/dies_of_sigsegv"),
        "# tcp4/harness_fault/dies_of_sigsegv: harness error: the case's process was killed by SIGSEGV"
    );
    assert!(
        ktap.contains("# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:0 error:3"),
        "{ktap}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn vm_faults_are_named_and_earlier_results_kept() {
    if common::qemu_missing() {
        return;
    }
    let (output, took) = timed(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--include-harness-faults",
        "--case-timeout",
        "3",
        "--timeout",
        "90",
        "--format",
        "ktap",
        "harness_fault",
        "tcp4/sockopt",
    ]);
    let ktap = String::from_utf8(output.stdout).unwrap();
    let results = validate_ktap(&ktap);
    assert_eq!(output.status.code(), Some(1), "{ktap}");
    assert!(took < Duration::from_secs(90), "took {took:?}");
    let sockopt: Vec<&String> = results.iter().filter(|l| l.contains("/sockopt/")).collect();
    let selected = cases::catalogue()
        .into_iter()
        .filter(|case| case.name.contains("tcp4/sockopt"))
        .count();
    assert_eq!(sockopt.len(), selected, "{ktap}");
    assert!(
        sockopt.iter().all(|l| l.starts_with("ok ")),
        "results before the abort were lost:\n{ktap}"
    );
    assert!(line_of(&ktap, "tcp4/harness_fault/hangs").contains("timed out after 3 s"));
    assert!(line_of(&ktap, "tcp4/harness_fault/panics").contains("case panicked"));
    assert!(line_of(&ktap, "tcp4/harness_fault/aborts_the_process").contains("/init died"));
    assert!(line_of(&ktap, "vm/run").contains("the guest's /init died: Attempted to kill init!"));
    assert!(
        results.last().unwrap().starts_with("not ok")
            && results.last().unwrap().ends_with("vm/run")
    );
}

/// The path of the result channel's file in QEMU `qemu`'s command line.
fn result_file_of(qemu: u32) -> std::path::PathBuf {
    let raw = std::fs::read(format!("/proc/{qemu}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw)
        .split('\0')
        .find_map(|arg| {
            let path = arg.split(",path=").nth(1)?;
            path.ends_with("/results").then(|| path.into())
        })
        .unwrap_or_else(|| panic!("no result file in QEMU {qemu}'s command line"))
}

/// Waits until the first QEMU that `portrange` (by pid) starts has sent
/// `count` case results on its result channel, then SIGKILLs that QEMU, as
/// an operator or the OOM killer would: portrange itself is left alone.
fn kill_its_qemu_after_results(portrange: u32, count: usize) {
    let qemu = child_named(portrange, "qemu-system-x86");
    let results = result_file_of(qemu);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let sent = std::fs::read_to_string(&results)
            .unwrap_or_default()
            .matches(r#""kind":"result""#)
            .count();
        if sent >= count {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "QEMU {qemu} sent {sent} results in 180 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(qemu as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// A case without a result after QEMU was killed: an error that names
/// QEMU's end.
const KILLED: &str = "QEMU itself ended with signal: 9 (SIGKILL)";

/// A result's harness error message, if it is one (`--format json`).
fn error_of(result: &serde_json::Value) -> Option<&str> {
    (result["outcome"] == "error").then(|| result["message"].as_str())?
}

/// QEMU killed from outside midway: the results it sent stay, every case
/// without one is an error naming QEMU's end, the report is written and the
/// exit status is 1 (not 2, which would drop everything).
#[test]
fn vm_keeps_the_results_of_a_killed_qemu_and_errors_the_rest() {
    if common::qemu_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let portrange = common::command(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--accel",
        "tcg",
        "--threads",
        "1",
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    kill_its_qemu_after_results(portrange.id(), 5);
    let output = portrange.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}\n{stdout}");
    let progress: Vec<&str> = stdout.lines().filter(|l| l.starts_with("test ")).collect();
    assert!(progress.len() >= 5, "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    let planned = cases::catalogue().len();
    assert_eq!(results.len(), planned + 1, "every case and vm/run");
    let errors: Vec<&str> = results.iter().filter_map(error_of).collect();
    assert_eq!(
        results.len() - errors.len(),
        progress.len(),
        "the results received before the kill are kept, as their progress lines showed"
    );
    assert_eq!(errors.len(), planned + 1 - progress.len());
    assert!(
        errors.iter().all(|e| e.contains(KILLED)),
        "{:?}",
        errors.iter().find(|e| !e.contains(KILLED))
    );
    assert_eq!(results.last().unwrap()["name"], "vm/run");
}

/// The same in a matrix: the killed column keeps what it received and the
/// other column runs as usual.
#[test]
fn matrix_keeps_a_killed_column_and_the_others() {
    if common::qemu_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("matrix");
    let portrange = common::command(&[
        "matrix",
        "--kernel",
        "debian-6.12",
        "--kernel",
        "running",
        "--accel",
        "tcg",
        "--threads",
        "1",
        "--out-dir",
        out.to_str().unwrap(),
        "tcp4/",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    kill_its_qemu_after_results(portrange.id(), 3);
    let output = portrange.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let kernels = summary["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), 2);
    let planned = kernels[0]["planned"].as_array().unwrap().len();
    let killed = kernels[0]["report"]["results"].as_array().unwrap();
    let errors: Vec<&str> = killed.iter().filter_map(error_of).collect();
    let received = killed.len() - errors.len();
    assert!(received >= 3, "{killed:?}");
    assert_eq!(killed.len(), planned + 1, "every case and vm/run");
    assert!(
        errors.iter().all(|e| e.contains(KILLED)),
        "{:?}",
        errors.iter().find(|e| !e.contains(KILLED))
    );
    assert!(
        received < planned,
        "QEMU was killed only after the run: {killed:?}"
    );
    let running = kernels[1]["report"]["results"].as_array().unwrap();
    assert_eq!(running.len(), planned);
    assert!(
        running
            .iter()
            .all(|r| !r["message"].to_string().contains("QEMU")),
        "{running:?}"
    );
    for file in ["debian-6.12.ktap", "running.ktap", "junit.xml"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
}

/// The children of `pid` named `name`, from /proc.
fn children_named(pid: u32, name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
            comm.ends_with(name) && ppid == Some(pid) && runs_for_real(*child)
        })
        .collect()
}

/// Whether process `pid` is alive with its own command line and is not
/// only asking a program its version (`qemu-system-* --version`, which
/// portrange runs before a boot to choose TCG's threading, and which may
/// already be a zombie with an empty command line): the children these
/// tests wait for are the others.
fn runs_for_real(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
        !raw.is_empty() && raw.split(|&b| b == 0).nth(1) != Some(b"--version".as_slice())
    })
}

/// The first child of `pid` named `name`, waited for up to 30 s.
fn child_named(pid: u32, name: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(&child) = children_named(pid, name).first() {
            return child;
        }
        assert!(Instant::now() < deadline, "{name} never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `portrange` with `args`, SIGKILLs it as soon as a child of its
/// named `name` shows, and checks that the child dies too. Returns the
/// child's pid and command line; `before_kill` sees the child's pid first.
fn killed_portrange_takes_its_child_along(
    args: &[&str],
    name: &str,
    before_kill: impl FnOnce(u32),
) -> String {
    let mut portrange = common::command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = child_named(portrange.id(), name);
    let cmdline = std::fs::read(format!("/proc/{child}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default();
    before_kill(child);
    portrange.kill().unwrap();
    portrange.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{child}")).exists() {
        assert!(
            Instant::now() < deadline,
            "{name} {child} ({cmdline}) outlived the killed portrange"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    cmdline
}

/// The same for the QEMU of a `portrange vm` run.
fn killed_portrange_takes_its_qemu_along(args: &[&str]) -> String {
    killed_portrange_takes_its_child_along(args, "qemu-system-x86", |_| ())
}

/// make of a killed `portrange build` dies with it (a tree whose defconfig
/// step sleeps; its recipe's own process, which make started, is cleaned
/// up by the test: real compilers finish their file and exit).
#[test]
fn make_dies_with_a_killed_portrange_build() {
    let tree = tempfile::tempdir().unwrap();
    let source = tree.path().join("common");
    std::fs::create_dir_all(source.join("arch/x86")).unwrap();
    for file in ["Kconfig", "arch/x86/Kconfig"] {
        std::fs::write(source.join(file), "").unwrap();
    }
    std::fs::write(source.join("Makefile"), "slowconfig:\n\tsleep 600\n").unwrap();
    std::fs::write(
        source.join("build.config.slow"),
        "ARCH=x86_64\nDEFCONFIG=slowconfig\n",
    )
    .unwrap();
    let out = tree.path().join("out");
    let mut recipe = None;
    killed_portrange_takes_its_child_along(
        &[
            "build",
            "--source",
            source.to_str().unwrap(),
            "--build-config",
            "build.config.slow",
            "--out",
            out.to_str().unwrap(),
        ],
        "make",
        |make| recipe = Some(child_named(make, "sleep")),
    );
    if let Some(sleep) = recipe {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleep as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn qemu_dies_with_a_killed_portrange() {
    if common::qemu_missing() {
        return;
    }
    killed_portrange_takes_its_qemu_along(&["vm", "--kernel", "debian-6.12", "--format", "ktap"]);
}

/// With an empty cache nothing is remembered, so the KVM probe boots a
/// QEMU first: on machines where nested KVM hangs, that one never exits
/// by itself.
#[test]
fn kvm_probe_qemu_dies_with_a_killed_portrange() {
    if common::qemu_missing() {
        return;
    }
    let kernel = qemu::kernel::resolve(
        "debian-6.12",
        &qemu::kernel::default_cache_dir(),
        &mut |step| eprintln!("{step}"),
    )
    .expect("fetching debian-6.12");
    let cache = tempfile::tempdir().unwrap();
    let image = kernel.image.to_str().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let cmdline = killed_portrange_takes_its_qemu_along(&[
        "vm", "--accel", "auto", "--kernel", image, "--cache", cache_arg,
    ]);
    // Where KVM fails at once the probe may end before it is seen; then
    // the VM's own QEMU was the one killed, which the other test covers.
    eprintln!("killed QEMU: {cmdline}");
}
