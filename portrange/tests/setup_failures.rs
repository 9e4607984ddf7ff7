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
    assert!(ktap.contains(&format!("ok 1 {CASE} # SKIP needs root or user namespaces: no privilege to create network namespaces (unshare(CLONE_NEWNET)")), "{ktap}");
}

/// Runs `script` with sh as root of a user and network namespace made for
/// it, whose uids and gids 0-65535 are the host's own (so `setpriv` can
/// become uid 1000 in it) and whose `user.*` limits are its own to set;
/// gives the exit code, stdout and stderr. The host's limits stay as they
/// are.
fn in_user_namespace(script: &str) -> (Option<i32>, String, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;
    // The first shell waits for the maps, then execs the script's shell,
    // which starts with root's capabilities now that uid 0 is mapped.
    let mut child = Command::new("unshare")
        .args(["--user", "--net", "sh", "-c"])
        .arg("echo mapped?; read _; exec sh -c \"$0\"")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "mapped?\n");
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{map}", child.id()), "0 0 65536").unwrap();
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut ktap = String::new();
    stdout.read_to_string(&mut ktap).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.code(), ktap, stderr)
}

/// uid 1000 where `user.max_user_namespaces` is 0 (set in a user namespace
/// made for the test, whose children it limits): unshare(CLONE_NEWUSER)
/// answers ENOSPC. A limit is no lack of privileges: every case an error
/// naming the call and the limit, exit 1.
#[test]
fn an_unprivileged_user_at_the_user_namespace_limit_gets_a_harness_error() {
    if common::not_root() {
        return;
    }
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && \
         exec setpriv --reuid 1000 --regid 1000 --clear-groups \
         {PORTRANGE} run --format ktap --exact {CASE}"
    );
    let (code, ktap, stderr) = in_user_namespace(&script);
    assert_eq!(code, Some(1), "{ktap}\n{stderr}");
    assert!(ktap.contains(&format!("not ok 1 {CASE}")), "{ktap}");
    assert!(
        ktap.contains(
            "cannot make a user namespace to create network namespaces in: \
             unshare(CLONE_NEWUSER) failed: ENOSPC means the limit user.max_user_namespaces"
        ),
        "{ktap}"
    );
    assert!(ktap.contains("No space left on device"), "{ktap}");
    assert!(!ktap.contains("SKIP"), "{ktap}");
    assert!(
        stderr.contains("harness error, no case can run"),
        "{stderr}"
    );
}

/// The egress scenario under the same limit: an error naming the call,
/// exit 1, never a skip.
#[test]
fn the_egress_scenario_at_the_user_namespace_limit_is_an_error() {
    if common::not_root() {
        return;
    }
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && \
         exec setpriv --reuid 1000 --regid 1000 --clear-groups \
         {PORTRANGE} scenario egress"
    );
    let (code, stdout, stderr) = in_user_namespace(&script);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("egress: ERROR: could not get the privileges to make namespaces"),
        "{stdout}"
    );
    assert!(stdout.contains("ENOSPC"), "{stdout}");
    assert!(!stdout.contains("SKIP"), "{stdout}");
}

/// uid 1000 in a chroot (a bind mount of / in a mount namespace made for
/// the test): unshare(CLONE_NEWUSER) answers EPERM, a refusal, so every
/// case is skipped naming it (exit 4), and the report asked for is written
/// all the same, replacing an older passing one.
#[test]
fn a_refused_user_namespace_skips_and_still_writes_the_report() {
    if common::not_root() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    nix::unistd::chown(out.path(), Some(1000.into()), Some(1000.into())).unwrap();
    for format in ["junit", "json"] {
        let report = out.path().join(format!("report.{format}"));
        std::fs::write(&report, "an older run's passing report").unwrap();
        let script = format!(
            "mount --rbind / {root} && exec chroot --userspec=1000:1000 {root} \
             {PORTRANGE} run --format {format} --output {report} --exact {CASE}",
            root = root.path().display(),
            report = report.display(),
        );
        let output = Command::new("unshare")
            .args(["--mount", "sh", "-c", &script])
            .output()
            .expect("unshare");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(4), "{format}: {stderr}");
        assert!(
            stderr.contains("unshare(CLONE_NEWUSER) failed") && stderr.contains("os error 1"),
            "{stderr}"
        );
        let written = std::fs::read_to_string(&report).unwrap();
        let skipped = match format {
            "junit" => written.contains(r#"tests="1" skipped="1" failures="0" errors="0""#),
            _ => {
                let json: serde_json::Value = serde_json::from_str(&written).unwrap();
                let result = &json["results"][0];
                result["name"] == CASE
                    && result["outcome"] == "skip"
                    && result["message"]
                        .as_str()
                        .is_some_and(|reason| reason.contains("unshare(CLONE_NEWUSER)"))
            }
        };
        assert!(skipped, "{format}: {written}");
    }
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
