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
