//! `portrange matrix`, `--shard` and `merge` against the running kernel:
//! two shards merged give the same outcomes as one unsharded run. Needs
//! root (or user namespaces); without them every column is skipped, which
//! the comparison still covers.

mod common;

use std::path::Path;

use portrange::matrix::Matrix;

/// Runs the binary with `args` and gives its exit code, which must not be
/// a usage or I/O error (2).
fn exit_code(args: &[&str]) -> i32 {
    let output = common::portrange(args);
    assert!(
        output.status.code().is_some_and(|c| c != 2),
        "portrange {args:?} failed to run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.status.code().unwrap()
}

fn outcomes(dir: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let matrix: Matrix = serde_json::from_str(&text).unwrap();
    matrix
        .kernels
        .iter()
        .flat_map(|k| {
            k.report
                .results
                .iter()
                .map(|r| (k.label.clone(), r.name.clone(), format!("{:?}", r.outcome)))
        })
        .collect()
}

#[test]
fn two_shards_merged_equal_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let whole = exit_code(&["matrix", "--kernel", "running", "--out-dir", &path("whole")]);
    exit_code(&[
        "matrix",
        "--kernel",
        "running",
        "--shard",
        "1/2",
        "--out-dir",
        &path("a"),
    ]);
    exit_code(&[
        "matrix",
        "--kernel",
        "running",
        "--shard",
        "2/2",
        "--out-dir",
        &path("b"),
    ]);
    let merged = exit_code(&[
        "merge",
        &path("a"),
        &path("b"),
        "--out-dir",
        &path("merged"),
    ]);
    assert_eq!(merged, whole);
    let (a, b) = (
        outcomes(&dir.path().join("a")),
        outcomes(&dir.path().join("b")),
    );
    assert!(!a.is_empty() && !b.is_empty(), "a shard was empty");
    assert_eq!(a.len() + b.len(), cases::catalogue().len());
    assert_eq!(
        outcomes(&dir.path().join("merged")),
        outcomes(&dir.path().join("whole"))
    );
    for file in ["running.ktap", "junit.xml", "summary.json"] {
        assert!(
            dir.path().join("merged").join(file).exists(),
            "{file} missing"
        );
    }
}

/// Runs `merge` over `inputs` and gives its first stderr line, which must
/// come with exit status 2.
fn merge_refused(inputs: &[&Path], out: &Path) -> String {
    let mut args: Vec<&str> = vec!["merge", "--out-dir", out.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let output = common::portrange(&args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "merge {inputs:?}: {stderr}");
    assert!(!out.exists(), "a refused merge wrote {}", out.display());
    stderr.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn merge_refuses_a_missing_a_duplicated_shard_and_a_lost_case() {
    let dir = tempfile::tempdir().unwrap();
    let shard = |index: &str| {
        let out = dir.path().join(format!("shard-{index}"));
        let spec = format!("{index}/2");
        exit_code(&[
            "matrix",
            "--kernel",
            "running",
            "--exact",
            "tcp4/sockopt/round_trip",
            "udp4/sockopt/round_trip",
            "tcp6/sockopt/round_trip",
            "--shard",
            &spec,
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        out
    };
    let (first, second) = (shard("1"), shard("2"));
    let out = dir.path().join("merged");

    assert_eq!(
        merge_refused(&[&first], &out),
        "portrange: error: running: 1 of 2 shards missing (2/2): pass every shard's summary.json, or re-run the missing shards"
    );
    assert_eq!(
        merge_refused(&[&first, &second, &first], &out),
        "portrange: error: running: shard 1/2 was given twice: pass each shard's summary.json once"
    );

    // Shard 1 ran tcp4 and tcp6 (cases 0 and 2 of the filtered list); its
    // summary loses one of them.
    let summary = first.join("summary.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let results = json["kernels"][0]["report"]["results"]
        .as_array_mut()
        .unwrap();
    let lost = results.pop().unwrap()["name"].as_str().unwrap().to_owned();
    std::fs::write(&summary, json.to_string()).unwrap();
    assert_eq!(
        merge_refused(&[&first, &second], &out),
        format!(
            "portrange: error: running: 1 planned case(s) have no result in any shard ({lost}): the shard that was to run them lost them; re-run it"
        )
    );
}
