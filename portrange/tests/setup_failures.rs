//! Why no case can run decides the verdict: only a lack of privileges is a
//! skip (exit 4); any other failure to set up is a harness error (exit 1)
//! naming it. Both are provoked for real, with util-linux's `setpriv` and
//! `unshare`; needs root.

mod common;

use std::process::Command;

use common::PORTRANGE;

const CASE: &str = "tcp4/sockopt/round_trip";

/// Runs `portrange run --format ktap --exact CASE` under `wrapper`; gives
/// the exit code, stdout and stderr.
fn run_under(wrapper: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .args([PORTRANGE, "run", "--format", "ktap", "--exact", CASE])
        .output()
        .expect("run the wrapper");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code(),
        text(output.stdout),
        text(output.stderr),
    )
}

/// Root without any capability: unshare(CLONE_NEWNET) answers EPERM,
/// which is a lack of privileges: every case skipped, exit 4.
#[test]
fn no_capabilities_skips_every_case_with_the_reason() {
    if common::not_root() {
        return;
    }
    let (code, ktap, stderr) =
        run_under(&["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"]);
    assert_eq!(code, Some(4), "{ktap}\n{stderr}");
    assert!(ktap.contains("1..0 # SKIP needs root or user namespaces: no privilege to create network namespaces (unshare(CLONE_NEWNET)"), "{ktap}");
}

/// Root of a user namespace whose `user.max_net_namespaces` is 0:
/// unshare(CLONE_NEWNET) answers ENOSPC. That is no lack of privileges but
/// a failure of the harness: every case an error naming it, exit 1.
#[test]
fn a_namespace_limit_is_a_harness_error_not_a_skip() {
    if common::not_root() {
        return;
    }
    let script = format!(
        "echo 0 > /proc/sys/user/max_net_namespaces && exec {PORTRANGE} run --format ktap --exact {CASE}"
    );
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let ktap = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{ktap}\n{stderr}");
    let line = format!("not ok 1 {CASE}");
    assert!(ktap.contains(&line), "{ktap}");
    assert!(
        ktap.contains("probing the kernel failed: cannot create a network namespace with unshare(CLONE_NEWNET): \
             check the limit user.max_net_namespaces and that the kernel has CONFIG_NET_NS: ENOSPC"),
        "{ktap}"
    );
    assert!(
        stderr.contains("harness error, no case can run"),
        "{stderr}"
    );
    assert!(!ktap.contains("SKIP"), "{ktap}");
}

/// The same in the matrix's native column: an error, not a skipped column.
#[test]
fn a_namespace_limit_fails_the_matrix_column() {
    if common::not_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let script = format!(
        "echo 0 > /proc/sys/user/max_net_namespaces && exec {PORTRANGE} matrix --kernel running --out-dir {out} --exact {CASE}"
    );
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{table}");
    assert!(table.contains("verdict: FAIL"), "{table}");
    let ktap = std::fs::read_to_string(dir.path().join("running.ktap")).unwrap();
    assert!(ktap.contains("ENOSPC"), "{ktap}");
}
