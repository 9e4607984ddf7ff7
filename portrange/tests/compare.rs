//! `portrange compare` on real runs in QEMU (needs qemu-system-x86_64):
//! Debian's 6.1 kernel against its 6.12 shows the profile changes and the
//! MPTCP cases newly run, with no regression; 6.12 against itself pinned to
//! the wrong profile shows the cases that then fail as regressions, by
//! property; a matrix's summary.json gives its columns by label, and
//! `matrix --baseline` adds the same comparison to its summary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

/// TCP's connect() cases (the parity case among them: a profile property)
/// and MPTCP's sockopt cases (they run on 6.12 only).
const SELECTION: [&str; 2] = ["tcp4/connect/", "mptcp4/sockopt/"];

/// The runs every test compares, made once: debian-6.1, debian-6.12, and
/// debian-6.12 pinned to stable-6.1 (its parity and MPTCP cases fail).
struct Runs {
    _dir: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
    pinned_wrong: PathBuf,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |file: &str, args: &[&str]| -> PathBuf {
            let path = dir.path().join(file);
            let mut all = vec!["vm"];
            all.extend(args);
            all.extend(["--format", "json", "--output", path.to_str().unwrap()]);
            all.extend(SELECTION);
            let output = common::portrange(&all);
            assert!(
                matches!(output.status.code(), Some(0 | 1)),
                "portrange {all:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            path
        };
        Runs {
            old: run("debian-6.1.json", &["--kernel", "debian-6.1"]),
            new: run("debian-6.12.json", &["--kernel", "debian-6.12"]),
            pinned_wrong: run(
                "pinned.json",
                &["--kernel", "debian-6.12", "--expect-profile", "stable-6.1"],
            ),
            _dir: dir,
        }
    })
}

fn compare(base: &Path, new: &Path, more: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    args.extend(more);
    let Output {
        status,
        stdout,
        stderr,
    } = common::portrange(&args);
    (
        status.code(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// The names of the cases of `kind` in a JSON comparison.
fn cases_of(json: &Value, kind: &str) -> Vec<String> {
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == kind)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn debian_6_1_to_6_12_changes_profiles_and_runs_mptcp_without_regression() {
    if common::qemu_missing() {
        return;
    }
    let runs = runs();
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("compare.json");
    let (code, text, stderr) = compare(
        &runs.old,
        &runs.new,
        &["--format", "json", "--output", json_path.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{text}{stderr}");
    for line in [
        "kernel profile of MPTCP: stable-6.1 -> upstream\n",
        "kernel profile of connect() parity: stable-6.1 -> upstream\n",
        "newly run:\n  mptcp4/sockopt/round_trip: skip -> pass\n",
        "verdict: no regression\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    let release = text
        .lines()
        .find(|l| l.starts_with("kernel release: 6.1."))
        .unwrap_or_else(|| panic!("no kernel release change in\n{text}"));
    assert!(release.contains(" -> 6.12."), "{release}");

    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(cases_of(&json, "regression").is_empty(), "{json:#}");
    let newly_run = cases_of(&json, "newly_run");
    assert_eq!(
        newly_run
            .iter()
            .filter(|n| n.starts_with("mptcp4/sockopt/"))
            .count(),
        common::portrange(&["list", "mptcp4/sockopt/"])
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        "every MPTCP sockopt case is newly run: {newly_run:?}"
    );
    assert!(
        newly_run.iter().all(|n| n.starts_with("mptcp4/")),
        "{newly_run:?}"
    );
    assert_ne!(json["base_kernel"], json["new_kernel"]);
}

#[test]
fn the_same_kernel_pinned_wrong_regresses_by_property() {
    if common::qemu_missing() {
        return;
    }
    let runs = runs();
    let out = tempfile::tempdir().unwrap();
    let junit_path = out.path().join("compare.xml");
    let (code, text, stderr) = compare(
        &runs.new,
        &runs.pinned_wrong,
        &[
            "--format",
            "junit",
            "--output",
            junit_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{text}{stderr}");
    for line in [
        "regressions, by property:\n  connect() parity:\n    tcp4/connect/",
        "    tcp4/connect/port_parity_matches_a_known_profile: pass -> fail (connect() parity matched the upstream profile, but stable-6.1 was expected (--expect-profile stable-6.1))\n",
        "  sockopt/:\n    mptcp4/sockopt/round_trip: pass -> fail (mptcp4 sockets, probed: MPTCP matched the upstream profile, but stable-6.1 was expected",
        "verdict: REGRESSED\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("kernel release:"), "{text}");
    assert!(!text.contains("kernel profile of"), "{text}");
    let xml = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        xml.contains(
            r#"<testcase name="mptcp4/sockopt/round_trip" classname="portrange.compare.sockopt/">"#
        ),
        "{xml}"
    );
    let (code, _, _) = compare(&runs.new, &runs.new, &[]);
    assert_eq!(code, Some(0), "a run against itself has no regression");
}

#[test]
fn a_summary_gives_its_columns_by_label_and_a_baseline_compares_them() {
    if common::qemu_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("matrix");
    let mut args = vec![
        "matrix",
        "--kernel",
        "debian-6.1",
        "--kernel",
        "debian-6.12",
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--baseline",
    ];
    let refused = [args.as_slice(), &["debian-7"], &SELECTION].concat();
    let output = common::portrange(&refused);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "--baseline debian-7 is none of the matrix's kernels (debian-6.1, debian-6.12)"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!out_dir.join("summary.json").exists());
    args.push("debian-6.1");
    args.extend(SELECTION);
    let output = common::portrange(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("\nbase: debian-6.1 (kernel 6.1.")
            && stdout.contains("kernel profile of MPTCP: stable-6.1 -> upstream\n"),
        "the baseline's comparison follows the table: {stdout}"
    );
    let summary = out_dir.join("summary.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let comparisons = json["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 1, "{json:#}");
    assert_eq!(comparisons[0]["base"], "debian-6.1");
    assert_eq!(comparisons[0]["new"], "debian-6.12");
    assert!(
        cases_of(&comparisons[0], "newly_run").contains(&"mptcp4/sockopt/round_trip".to_owned()),
        "{json:#}"
    );
    assert!(
        cases_of(&comparisons[0], "regression").is_empty(),
        "{json:#}"
    );

    let (code, _, stderr) = compare(&summary, &summary, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("holds 2 kernels (debian-6.1, debian-6.12): name one with --column LABEL"),
        "{stderr}"
    );
    let (code, _, stderr) = compare(&summary, &summary, &["--column", "debian-7"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("has no kernel \"debian-7\": its kernels are debian-6.1, debian-6.12"),
        "{stderr}"
    );

    let (code, text, stderr) = compare(
        &summary,
        &summary,
        &["--column", "debian-6.1", "--column", "debian-6.12"],
    );
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(
        text.contains("kernel profile of MPTCP: stable-6.1 -> upstream\n"),
        "{text}"
    );
    assert!(text.contains("[debian-6.12] (kernel 6.12."), "{text}");
    // A run's report against a summary's column.
    let (code, text, stderr) = compare(&runs().new, &summary, &["--column", "debian-6.1"]);
    assert_eq!(
        code,
        Some(0),
        "fewer passes are no regression: {text}{stderr}"
    );
    assert!(
        text.contains("newly skipped:\n  mptcp4/sockopt/round_trip: pass -> skip"),
        "{text}"
    );
}
