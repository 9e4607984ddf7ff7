//! `portrange matrix`, `--shard` and `merge` against the running kernel:
//! two shards merged give the same outcomes as one unsharded run. Needs
//! root (or user namespaces); without them every column is skipped, which
//! the comparison still covers.

use std::path::Path;
use std::process::Command;

use portrange::matrix::Matrix;

fn portrange(args: &[&str]) -> i32 {
    let output = Command::new(env!("CARGO_BIN_EXE_portrange"))
        .args(args)
        .output()
        .expect("run portrange");
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
    let whole = portrange(&["matrix", "--kernel", "running", "--out-dir", &path("whole")]);
    portrange(&[
        "matrix",
        "--kernel",
        "running",
        "--shard",
        "1/2",
        "--out-dir",
        &path("a"),
    ]);
    portrange(&[
        "matrix",
        "--kernel",
        "running",
        "--shard",
        "2/2",
        "--out-dir",
        &path("b"),
    ]);
    let merged = portrange(&[
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
