//! A full native run leaves the host's own network namespace as it was:
//! its port range, reserved ports and interfaces. Needs root (or user
//! namespaces); without them it says so and returns early.

use std::fs;

use harness::Probes;
use harness::runner::{RunOptions, run_all};

fn host_state() -> Vec<(String, String)> {
    [
        "/proc/sys/net/ipv4/ip_local_port_range",
        "/proc/sys/net/ipv4/ip_local_reserved_ports",
        "/proc/net/dev",
    ]
    .into_iter()
    .map(|path| {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        // /proc/net/dev carries counters that move; keep interface names only.
        let text = if path.ends_with("dev") {
            text.lines()
                .skip(2)
                .filter_map(|l| l.split(':').next())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            text
        };
        (path.to_owned(), text)
    })
    .collect()
}

#[test]
fn full_run_leaves_host_port_settings_unchanged() {
    let probes = match Probes::run() {
        Ok(probes) => probes,
        Err(e) => {
            eprintln!("skipped: needs root or user namespaces: {e}");
            return;
        }
    };
    let before = host_state();
    let cases = cases::catalogue();
    let results = run_all(&cases, &probes, &RunOptions::default(), |_| {});
    assert_eq!(results.len(), cases.len());
    assert!(
        results.iter().any(|r| r.outcome == harness::Outcome::Pass),
        "the run must have executed cases for this check to mean anything"
    );
    assert_eq!(host_state(), before);
}
