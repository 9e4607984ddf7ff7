//! Every kind of run leaves the host's own network namespace as it was:
//! its links, policy rules, port range and reserved ports, and no network
//! namespace is left mounted. Runs a passing native suite, a failing one
//! (harness fault cases), both again with namespaces made ahead and with
//! reused ones, the egress
//! scenario and, where QEMU exists, a VM run. Needs root (or user namespaces) for the runs to do anything.

mod common;

use netns_util::Snapshot;

/// The host's links, rules and port sysctls, and the number of namespace
/// mounts (`nsfs` entries, which `ip netns add` would leave behind).
fn host() -> (Snapshot, usize) {
    let snapshot = Snapshot::current().expect("snapshot of the host namespace");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let nsfs = mounts.lines().filter(|l| l.contains(" - nsfs ")).count();
    (snapshot, nsfs)
}

/// Runs the binary with `args` and gives its exit code, which must be a
/// verdict (0, 1 or 4), not a failure to run.
fn exit_code(args: &[&str]) -> i32 {
    let output = common::portrange(args);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        [0, 1, 4].contains(&code),
        "portrange {args:?} could not run (exit {code}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    code
}

/// The exit code of a run with namespaces from a pool (`--isolation
/// isolation`) of a case that hangs, one that panics and one that passes.
fn faults_beside_a_good_case(isolation: &str) -> i32 {
    exit_code(&[
        "run",
        "--isolation",
        isolation,
        "--include-harness-faults",
        "--exact",
        "--case-timeout",
        "1",
        "tcp4/harness_fault/hangs",
        "tcp4/harness_fault/panics",
        "tcp4/sockopt/round_trip",
    ])
}

#[test]
fn every_kind_of_run_leaves_the_host_namespace_unchanged() {
    let before = host();
    let full = exit_code(&["run", "--format", "ktap"]);
    let failing = exit_code(&[
        "run",
        "--include-harness-faults",
        "--exact",
        "--case-timeout",
        "1",
        "tcp4/harness_fault/hangs",
        "tcp4/harness_fault/panics",
    ]);
    let ahead = exit_code(&["run", "--isolation", "ahead"]);
    // A case that times out and one that panics never give their
    // namespaces made ahead back; the spares left are released at the end.
    let ahead_failing = faults_beside_a_good_case("ahead");
    let reused = exit_code(&["run", "--isolation", "reuse"]);
    // A case that times out and one that panics keep their pooled
    // namespaces from coming back.
    let reused_failing = faults_beside_a_good_case("reuse");
    let scenario = exit_code(&["scenario", "egress", "--hosts", "2", "--slice", "8"]);
    if full == 4 {
        eprintln!(
            "note: no case could run here (no privileges), so the runs changed nothing by not running"
        );
    } else {
        assert_eq!(full, 0, "the native suite should pass on this kernel");
        assert_eq!(failing, 1, "the fault cases must fail");
        assert_eq!(
            ahead, 0,
            "the native suite should pass with namespaces made ahead"
        );
        assert_eq!(
            ahead_failing, 1,
            "the fault cases must fail with namespaces made ahead"
        );
        assert_eq!(
            reused, 0,
            "the native suite should pass with reused namespaces"
        );
        assert_eq!(
            reused_failing, 1,
            "the fault cases must fail with reused namespaces"
        );
        assert_eq!(scenario, 0, "the egress scenario should pass");
    }
    if !common::qemu_missing() {
        exit_code(&[
            "vm",
            "--kernel",
            "debian-6.12",
            "--exact",
            "tcp4/sockopt/round_trip",
        ]);
    }
    assert_eq!(host(), before);
}
