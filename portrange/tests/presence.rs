//! Presence: a kernel that must have IP_LOCAL_PORT_RANGE and lacks it
//! fails, a protocol is absent only when `socket()` says so, and the probe
//! decides presence, nothing more. Natively, with a seccomp filter standing
//! in for a kernel that answers one call with a chosen errno (the running
//! kernel is at or past 6.3, so its release line requires the option);
//! and on Debian's 5.10 kernel, which predates the option.

mod common;

use std::process::Output;

use common::seccomp::Answer;
use common::{command, not_root, qemu_missing, validate_ktap};

/// Runs `args` under `answer`.
fn run_under(answer: &Answer, args: &[&str]) -> Output {
    let mut command = command(args);
    answer.apply(&mut command);
    command.output().expect("run portrange")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The JSON report's results as (name, outcome, message).
fn results(output: &Output) -> Vec<(String, String, String)> {
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)));
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            (field("name"), field("outcome"), field("message"))
        })
        .collect()
}

const CASES: [&str; 2] = [
    "tcp4/sockopt/round_trip",
    "udp6/sockopt/lo_above_hi_is_einval",
];

/// On a kernel whose release requires the option, ENOPROTOOPT fails every
/// case with one cause naming the rule, pinned or not; `--expect-option
/// absent` turns the same kernel into a skip.
#[test]
fn a_kernel_that_must_have_the_option_and_lacks_it_fails() {
    if not_root() {
        return;
    }
    let missing = Answer::port_range_setsockopt(libc::ENOPROTOOPT);
    let mut args = vec!["run", "--exact", "--format", "ktap"];
    args.extend(CASES);
    let output = run_under(&missing, &args);
    let ktap = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = validate_ktap(&ktap);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let cause = "IP_LOCAL_PORT_RANGE is not in this kernel (setsockopt on a TCP socket: ENOPROTOOPT (Protocol not available)), but this kernel must have it: kernel ";
    assert_eq!(lines.len(), CASES.len(), "{ktap}");
    for line in &lines {
        assert!(line.starts_with("not ok "), "{line} did not fail:\n{ktap}");
    }
    assert_eq!(ktap.matches(cause).count(), lines.len(), "{ktap}");
    assert!(
        ktap.contains(
            "is at or past Linux 6.3, which introduced IP_LOCAL_PORT_RANGE (91d0b78c5177)"
        ),
        "{ktap}"
    );
    assert!(
        ktap.contains("# expectation for "),
        "no rule in the header:\n{ktap}"
    );

    for profile in ["upstream", "stable-6.1"] {
        let mut pinned = args.clone();
        pinned.extend(["--expect-profile", profile]);
        let output = run_under(&missing, &pinned);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    }

    let mut absent = args.clone();
    absent.extend(["--expect-option", "absent"]);
    let output = run_under(&missing, &absent);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let output = common::portrange(&absent);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("but this kernel must not have it: --expect-option absent"),
        "{}",
        text(&output)
    );
}

/// A matrix column of such a kernel fails too, so merging it with a
/// passing column cannot pass.
#[test]
fn a_matrix_column_lacking_a_required_option_fails() {
    if not_root() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let missing = Answer::port_range_setsockopt(libc::ENOPROTOOPT);
    let output = run_under(
        &missing,
        &[
            "matrix",
            "--exact",
            "--kernel",
            "running:upstream",
            "--out-dir",
            out.path().to_str().unwrap(),
            CASES[0],
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

/// EINVAL on the probe's valid range (a kernel decoding the halves
/// swapped) means the option is there: the cases run and fail by
/// property, none is a harness error.
#[test]
fn a_refusing_kernel_fails_by_property_not_by_harness_error() {
    if not_root() {
        return;
    }
    let swapped = Answer::port_range_setsockopt(libc::EINVAL);
    let output = run_under(
        &swapped,
        &[
            "run",
            "--format",
            "json",
            "tcp4/sockopt/round_trip",
            "tcp6/sockopt/value_is_hi_shl_16_or_lo",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    for (name, outcome, message) in results(&output) {
        assert_eq!(outcome, "fail", "{name}: {message}");
        assert!(message.contains("EINVAL"), "{name}: {message}");
    }
    assert!(
        text(&output)
            .contains("IP_LOCAL_PORT_RANGE is there, but refused the valid range 40000-40999"),
        "{}",
        text(&output)
    );
}

/// EADDRNOTAVAIL from bind() on loopback is a harness error (exit 1),
/// not a protocol missing from the kernel.
#[test]
fn a_failing_bind_is_a_harness_error_not_a_missing_protocol() {
    if not_root() {
        return;
    }
    // bind() with a sockaddr_in (16 bytes): IPv4 only, netlink untouched.
    let bind_v4 = Answer {
        syscall: libc::SYS_bind,
        args: vec![(2, 16)],
        errno: libc::EADDRNOTAVAIL,
    };
    let output = run_under(
        &bind_v4,
        &["run", "--format", "json", "udp4/sockopt/round_trip"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let results = results(&output);
    assert_eq!(results.len(), 1);
    let (_, outcome, message) = &results[0];
    assert_eq!(outcome, "error", "{message}");
    assert!(
        message.starts_with(
            "udp4: binding a socket to loopback port 0 to probe it failed: EADDRNOTAVAIL"
        ),
        "{message}"
    );
}

/// Debian bullseye's 5.10 kernel predates the option: every case skips
/// naming 6.3, exit 4.
#[test]
fn debian_5_10_skips_every_case_naming_6_3() {
    if qemu_missing() {
        return;
    }
    let output = common::portrange(&[
        "vm",
        "--kernel",
        "debian-5.10",
        "--format",
        "json",
        "tcp4/sockopt/",
        "mptcp6/sockopt/round_trip",
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let results = results(&output);
    assert!(results.len() > 1);
    for (name, outcome, message) in results {
        assert_eq!(outcome, "skip", "{name}: {message}");
        assert!(
            message.contains("it came in Linux 6.3: kernel 5.10.0-"),
            "{name}: {message}"
        );
    }
}
