//! `--expect-profile`: a case or probe matching the other profile fails,
//! naming the property and both profiles; without the flag the kernel's
//! version decides (docs/profiles.md). Natively (needs root) and in QEMU on
//! Debian's 6.1 and 6.12 kernels (needs qemu-system-x86_64).

mod common;

use common::{portrange, qemu_missing, validate_ktap};

/// The connect() parity case over TCP and MPTCP, and one MPTCP case that
/// only the probe's verdict on MPTCP decides.
const SELECTION: [&str; 2] = ["tcp4/connect/port_parity", "mptcp4/sockopt/round_trip"];

/// Runs `args` then the selection as KTAP; gives the exit code and KTAP.
fn ktap(args: &[&str]) -> (Option<i32>, String) {
    let mut all = args.to_vec();
    all.extend(["--format", "ktap"]);
    all.extend(SELECTION);
    let output = portrange(&all);
    let text = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    validate_ktap(&text);
    (output.status.code(), format!("{text}\n{stderr}"))
}

#[test]
fn the_running_kernel_pinned_to_the_other_profile_fails_naming_both() {
    if common::not_root() {
        return;
    }
    let (code, text) = ktap(&["run", "--expect-profile", "stable-6.1"]);
    assert_eq!(code, Some(1), "{text}");
    for line in [
        "connect() parity matched the upstream profile, but stable-6.1 was expected (--expect-profile stable-6.1)",
        "mptcp4/sockopt/round_trip: mptcp4 sockets, probed: MPTCP matched the upstream profile, but stable-6.1 was expected",
        "not ok 2 mptcp4/sockopt/round_trip",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
}

#[test]
fn debian_6_1_pinned_to_upstream_fails_naming_the_properties() {
    if qemu_missing() {
        return;
    }
    let (code, text) = ktap(&[
        "vm",
        "--kernel",
        "debian-6.1",
        "--expect-profile",
        "upstream",
    ]);
    assert_eq!(code, Some(1), "{text}");
    for line in [
        "tcp4/connect/port_parity_matches_a_known_profile: connect() parity matched the stable-6.1 profile, but upstream was expected (--expect-profile upstream)",
        "mptcp4/sockopt/round_trip: mptcp4 sockets, probed: MPTCP matched the stable-6.1 profile, but upstream was expected (--expect-profile upstream)",
        "not ok 1 tcp4/connect/port_parity_matches_a_known_profile",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
}

#[test]
fn debian_6_1_by_default_passes_as_stable() {
    if qemu_missing() {
        return;
    }
    let (code, text) = ktap(&["vm", "--kernel", "debian-6.1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("# kernel profile: stable-6.1"), "{text}");
}

#[test]
fn debian_6_12_pinned_to_stable_fails_naming_the_properties() {
    if qemu_missing() {
        return;
    }
    let (code, text) = ktap(&[
        "vm",
        "--kernel",
        "debian-6.12",
        "--expect-profile",
        "stable-6.1",
    ]);
    assert_eq!(code, Some(1), "{text}");
    for line in [
        "connect() parity matched the upstream profile, but stable-6.1 was expected (--expect-profile stable-6.1)",
        "mptcp4/sockopt/round_trip: mptcp4 sockets, probed: MPTCP matched the upstream profile, but stable-6.1 was expected",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
}

#[test]
fn debian_6_12_by_default_passes_as_upstream() {
    if qemu_missing() {
        return;
    }
    let (code, text) = ktap(&["vm", "--kernel", "debian-6.12"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("# kernel profile: upstream"), "{text}");
}
