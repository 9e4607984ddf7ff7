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

/// Runs `matrix --kernel KERNEL` over `cases` (exact names), shard
/// `shard`, into `out`; gives the exit code.
fn matrix_shard(kernel: &str, cases: &[&str], shard: &str, out: &Path) -> i32 {
    let mut args = vec!["matrix", "--kernel", kernel, "--exact"];
    args.extend(cases);
    args.extend(["--shard", shard, "--out-dir", out.to_str().unwrap()]);
    exit_code(&args)
}

#[test]
fn merge_refuses_shards_of_other_selections_and_other_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let sockopt = ["tcp4/sockopt/round_trip", "udp4/sockopt/round_trip"];
    let clamp = [
        "tcp4/clamp/partial_overlap_uses_the_overlap",
        "udp4/clamp/partial_overlap_uses_the_overlap",
    ];
    let (first, second, other) = (
        dir.path().join("sockopt-1"),
        dir.path().join("sockopt-2"),
        dir.path().join("clamp-2"),
    );
    if matrix_shard("running", &sockopt, "1/2", &first) == 4 {
        common::unprivileged("no case could run here, so the kernel is never learned");
        return;
    }
    matrix_shard("running", &sockopt, "2/2", &second);
    matrix_shard("running", &clamp, "2/2", &other);
    let out = dir.path().join("merged");
    assert_eq!(
        merge_refused(&[&first, &other], &out),
        format!(
            "portrange: error: running: shards 1/2 and 2/2 disagree on the selection: \"--exact {}\" and \"--exact {}\": merge only the shards of one run (same selection, catalogue, seed, expected profile, kernel release and arch)",
            sockopt.join(" "),
            clamp.join(" ")
        )
    );

    // A summary written on another machine, booted into another kernel
    // (a stand-in: the release field edited, as the other kernel's run
    // would have written it).
    let summary = second.join("summary.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let ours = json["kernels"][0]["asked"]["kernel"]
        .as_str()
        .unwrap()
        .to_owned();
    json["kernels"][0]["asked"]["kernel"] = "6.1.0-56-cloud-amd64".into();
    std::fs::write(&summary, json.to_string()).unwrap();
    assert!(
        merge_refused(&[&first, &second], &out).starts_with(&format!(
            "portrange: error: running: shards 1/2 and 2/2 disagree on the kernel release: \"{ours}\" and \"6.1.0-56-cloud-amd64\""
        ))
    );
}

#[test]
fn matrix_refuses_a_kernel_given_twice_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let output = common::portrange(&[
        "matrix",
        "--kernel",
        "running",
        "--kernel",
        "running",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--kernel running is given twice"),
        "{stderr}"
    );
    assert!(!out.exists(), "a refused matrix wrote {}", out.display());
}

/// One file that cannot be written (junit.xml is a directory) costs that
/// file and the exit status, not the others.
#[test]
fn merge_writes_every_file_it_can_and_names_the_one_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let cases = ["tcp4/sockopt/round_trip", "udp4/sockopt/round_trip"];
    let (first, second) = (dir.path().join("1"), dir.path().join("2"));
    matrix_shard("running", &cases, "1/2", &first);
    matrix_shard("running", &cases, "2/2", &second);
    let out = dir.path().join("merged");
    std::fs::create_dir_all(out.join("junit.xml")).unwrap();
    let output = common::portrange(&[
        "merge",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1 of 3 files were not written (the others were): cannot write")
            && stderr.contains("junit.xml"),
        "{stderr}"
    );
    assert_eq!(outcomes(&out).len(), 2, "summary.json misses results");
    assert!(out.join("running.ktap").is_file());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("verdict: "),
        "the verdict was not printed"
    );
}

/// Two VM shards that each ended with a fault (in one the guest's /init
/// dies, a harness fault case aborts it; in the other a case hangs until
/// the VM's time limit) merge, each shard's `vm/run` kept under its own
/// name.
#[test]
fn vm_shards_that_each_ended_in_a_fault_merge() {
    if common::qemu_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shard = |index: &str| {
        let out = dir.path().join(index);
        let spec = format!("{index}/2");
        let code = exit_code(&[
            "matrix",
            "--kernel",
            "debian-6.12",
            "--accel",
            "tcg",
            "--timeout",
            "30",
            "--case-timeout",
            "300",
            "--include-harness-faults",
            "--exact",
            "tcp4/harness_fault/aborts_the_process",
            "tcp4/harness_fault/hangs",
            "--shard",
            &spec,
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 1);
        out
    };
    let (first, second) = (shard("1"), shard("2"));
    let out = dir.path().join("merged");
    let output = common::portrange(&[
        "merge",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let names: Vec<String> = outcomes(&out)
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "tcp4/harness_fault/hangs",
            "tcp4/harness_fault/aborts_the_process",
            "vm/run/shard-1-of-2",
            "vm/run/shard-2-of-2",
        ]
    );
}

/// An --out-dir that cannot be made is refused before any column runs.
#[test]
fn matrix_refuses_an_out_dir_it_cannot_make_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("matrix");
    let output = common::portrange(&[
        "matrix",
        "--kernel",
        "running",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("creating --out-dir {}", out.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("[1/1]"), "a column ran: {stderr}");
}
