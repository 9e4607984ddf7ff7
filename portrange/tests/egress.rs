//! `portrange scenario egress` end to end: several client namespaces share
//! one egress address, each with its own port slice, and the router steers
//! replies by destination port. Natively (needs root or user namespaces;
//! without them each test says why and returns) and inside a VM on
//! debian-6.12 (skipped with a reason where qemu-system-x86_64 is missing).

mod common;

use std::process::Output;
use std::time::Instant;

use netns_util::Snapshot;

/// Runs the binary with `args`, shows what it printed and how long it took,
/// and gives its exit code and stdout.
fn shown(args: &[&str]) -> (i32, String) {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = common::portrange(args);
    let stdout = String::from_utf8(stdout).expect("utf-8 output");
    let stderr = String::from_utf8_lossy(&stderr);
    eprintln!(
        "portrange {} ({:.1}s):\n{stdout}{stderr}",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    (status.code().unwrap_or(-1), stdout)
}

/// Whether this process may build namespaces; says why not when it may not.
fn privileged() -> bool {
    match netns_util::Netns::new() {
        Ok(_) => true,
        Err(e) if e.is_no_privileges() => {
            common::unprivileged(&format!("needs root or user namespaces: {e}"));
            false
        }
        Err(e) => panic!("creating a namespace: {e}"),
    }
}

/// The verdict line of host `k`.
fn verdict(report: &str, k: usize) -> Option<&str> {
    let prefix = format!("host {k}: ");
    report.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// The lines of host `k`'s block.
fn block(report: &str, k: usize) -> Vec<&str> {
    let head = format!("host {k}  slice ");
    report
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .take_while(|l| !l.starts_with(&format!("host {k}: ")))
        .collect()
}

/// Every host passes; each block shows its slice, its flows per protocol
/// and family with all replies, and no errors.
fn assert_all_pass(report: &str, hosts: usize, slices: &[&str]) {
    assert_eq!(slices.len(), hosts);
    for (k, slice) in slices.iter().enumerate() {
        assert_eq!(verdict(report, k), Some("PASS"), "host {k}\n{report}");
        let lines = block(report, k);
        assert!(lines[0].contains(slice), "host {k}: {}", lines[0]);
        for label in ["tcp4", "udp4", "tcp6", "udp6"] {
            let line = lines
                .iter()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("host {k}: no {label} line\n{report}"));
            assert!(
                line.contains("flows 4/4") && line.contains("replies 4/4"),
                "host {k}: {line}"
            );
        }
        assert!(
            lines.iter().any(|l| l.contains("0 meant for other hosts")),
            "host {k} received other hosts' replies\n{report}"
        );
    }
    assert!(
        report.contains(&format!("egress: PASS: {hosts}/{hosts} hosts")),
        "{report}"
    );
}

const SLICES: [&str; 4] = [
    "slice 20000-20015",
    "slice 20016-20031",
    "slice 20032-20047",
    "slice 20048-20063",
];

#[test]
fn four_hosts_share_one_address_natively_and_leave_the_host_alone() {
    if !privileged() {
        return;
    }
    let before = Snapshot::current().expect("host snapshot");
    let started = Instant::now();
    let (code, report) = shown(&[
        "scenario", "egress", "--hosts", "4", "--slice", "16", "--family", "both",
    ]);
    eprintln!("native scenario: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(code, 0, "{report}");
    assert_all_pass(&report, 4, &SLICES);
    // Host 0 asked for a range reaching below the netns range, host 3 for
    // one reaching above it: both clamped back to their slice.
    assert!(
        block(&report, 0)[0].contains("asked 19984-20015"),
        "{report}"
    );
    assert!(
        block(&report, 3)[0].contains("asked 20048-20079"),
        "{report}"
    );
    // Host 0's slice, exhausted: exactly 16 flows, then the protocol's
    // error; TCP still reaches another server port, UDP does not.
    for family in ["4", "6"] {
        let tcp = format!(
            "exhaust tcp{family}  16 flows to one server port (ports 20000-20015, 16 answered), then EADDRNOTAVAIL"
        );
        let udp = format!(
            "exhaust udp{family}  16 flows to one server port (ports 20000-20015, 16 answered), then EAGAIN"
        );
        assert!(report.contains(&tcp), "no {tcp:?} in\n{report}");
        assert!(report.contains(&udp), "no {udp:?} in\n{report}");
    }
    // While host 0 is exhausted, the others keep connecting.
    for k in 1..4 {
        let line = block(&report, k)
            .into_iter()
            .find(|l| l.contains("while host 0 is exhausted"))
            .unwrap_or_else(|| panic!("host {k}: no exhaustion line\n{report}"));
        assert_eq!(line.matches(" ok").count(), 4, "host {k}: {line}");
    }
    assert_eq!(
        Snapshot::current().expect("host snapshot"),
        before,
        "the host's links, rules or port sysctls changed"
    );
}

#[test]
fn a_range_outside_the_netns_range_is_not_steered_back() {
    if !privileged() {
        return;
    }
    let (code, report) = shown(&[
        "scenario",
        "egress",
        "--hosts",
        "4",
        "--slice",
        "16",
        "--outside",
        "2",
        "--wait",
        "2",
    ]);
    assert_eq!(code, 0, "{report}");
    let lines = block(&report, 2);
    assert!(
        lines[0].contains("slice 20000-20063  asked 20064-20079"),
        "{report}"
    );
    for label in ["tcp4", "udp4", "tcp6", "udp6"] {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line\n{report}"));
        assert!(line.contains("replies 0/4"), "{line}");
    }
    assert!(
        report.contains("none came back to it"),
        "the consequence is not shown\n{report}"
    );
    for k in [0, 1, 3] {
        assert_eq!(verdict(&report, k), Some("PASS"), "host {k}\n{report}");
    }
}

#[test]
fn removing_any_one_policy_rule_fails_the_scenario() {
    if !privileged() {
        return;
    }
    for removed in 0..4 {
        let removed_text = removed.to_string();
        let (code, report) = shown(&[
            "scenario",
            "egress",
            "--hosts",
            "4",
            "--slice",
            "16",
            "--remove-rule",
            &removed_text,
            "--wait",
            "2",
        ]);
        assert_eq!(code, 1, "rule of host {removed} removed, yet:\n{report}");
        assert!(
            report.contains(&format!("removed host {removed}'s 2 policy rule(s)")),
            "{report}"
        );
        for k in 0..4 {
            let want = if k == removed { "FAIL" } else { "PASS" };
            assert_eq!(verdict(&report, k), Some(want), "host {k}\n{report}");
        }
        assert!(report.contains("egress: FAIL: 3/4 hosts"), "{report}");
    }
}

#[test]
fn four_hosts_share_one_address_in_a_debian_6_12_vm() {
    if common::qemu_missing() {
        return;
    }
    let started = Instant::now();
    let (code, report) = shown(&[
        "vm",
        "--kernel",
        "debian-6.12",
        // An unstripped debug build of portrange is ~90 MB; packed into the
        // initramfs it does not fit the default 512 MiB ("No working init
        // found").
        "--memory",
        "1024",
        "--",
        common::PORTRANGE,
        "scenario",
        "egress",
        "--hosts",
        "4",
        "--slice",
        "16",
    ]);
    eprintln!("VM scenario: {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(code, 0, "{report}");
    assert_all_pass(&report, 4, &SLICES);
}
