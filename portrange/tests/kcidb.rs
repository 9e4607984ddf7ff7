//! `--format kcidb` validated by KernelCI's own `kcidb-io` (its schema
//! validator on its latest schema, from a virtual environment under the
//! cache that `.ci/install-deps` makes, or this test when it is missing),
//! and every case's status read back from it. In QEMU on Debian's 6.1
//! kernel with the harness's fault cases (pass, fail, skip, error and a
//! faulted kernel's console log); natively (needs root); a matrix's file
//! per column against its summary.json.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Validates the KCIDB file given as its argument with kcidb-io's latest
/// schema (which must be of the major version the file says) and prints
/// the schema's version.
const VALIDATE: &str = r#"
import json, sys
import kcidb_io
latest = kcidb_io.schema.LATEST
data = json.load(open(sys.argv[1]))
if data["version"]["major"] != latest.major:
    sys.exit(f"written for major version {data['version']} but kcidb-io's latest is v{latest.major}.{latest.minor}")
latest.validate(data)
print(f"valid under v{latest.major}.{latest.minor}")
"#;

/// The python of the virtual environment `.ci/install-deps` makes with
/// kcidb-io in it (the one place that installs it); `None` (said, or failed
/// under PORTRANGE_REQUIRE with ci-engines) when it is not there.
fn kcidb_python() -> Option<PathBuf> {
    let python = qemu::kernel::default_cache_dir().join("kcidb-venv/bin/python");
    let has_kcidb = Command::new(&python)
        .args(["-c", "import kcidb_io"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_kcidb {
        require::skip_or_fail(
            require::Requirement::CiEngines,
            &format!(
                "kcidb-io is not installed in {} (.ci/install-deps installs it from PyPI)",
                python.display()
            ),
        );
        return None;
    }
    Some(python)
}

/// Validates `file` with kcidb-io; gives the document.
fn validated(python: &Path, file: &Path) -> Value {
    let output = Command::new(python)
        .args(["-c", VALIDATE])
        .arg(file)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "kcidb-io refuses {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "kcidb-io: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Each case's KCIDB status from the progress lines (`test NAME ... ok`).
fn progress(stdout: &str) -> BTreeMap<String, &'static str> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, status) = line.strip_prefix("test ")?.split_once(" ... ")?;
            let status = match status.split([' ', ',']).next()? {
                "ok" => "PASS",
                "FAILED" => "FAIL",
                "skipped" => "SKIP",
                "ERROR" => "ERROR",
                other => panic!("unknown status {other:?} in {line:?}"),
            };
            Some((name.to_owned(), status))
        })
        .collect()
}

/// Each test's case name (its path without `portrange.`, dots back to
/// slashes) and status; checks the ids and the run they belong to.
fn tests_of(document: &Value, origin: &str) -> BTreeMap<String, String> {
    let build = &document["builds"][0];
    let build_id = build["id"].as_str().unwrap();
    assert!(build_id.starts_with(&format!("{origin}:")), "{build:#}");
    assert_eq!(build["checkout_id"], document["checkouts"][0]["id"]);
    document["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|test| {
            assert_eq!(test["build_id"], build_id);
            assert_eq!(test["origin"], origin);
            let path = test["path"].as_str().unwrap();
            assert_eq!(test["id"], format!("{build_id}:{path}"));
            let name = path.strip_prefix("portrange.").unwrap().replace('.', "/");
            assert_eq!(test["misc"]["case"], name.as_str());
            (name, test["status"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// What the VM run runs: passes (TCP), skips (MPTCP on 6.1), a failure,
/// errors and a fault that kills `/init` (the harness's fault cases).
const SELECTION: [&str; 3] = [
    "tcp4/sockopt/",
    "mptcp4/sockopt/round_trip",
    "harness_fault",
];

#[test]
fn a_vm_run_with_faults_validates_and_every_status_reads_back() {
    if common::qemu_missing() {
        return;
    }
    let Some(python) = kcidb_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kcidb.json");
    let output = common::portrange(
        &[
            "vm",
            "--kernel",
            "debian-6.1",
            "--include-harness-faults",
            "--case-timeout",
            "3",
            "--timeout",
            "90",
            "--format",
            "kcidb",
            "--kcidb-origin",
            "portrange_test",
            "--output",
            file.to_str().unwrap(),
        ]
        .into_iter()
        .chain(SELECTION)
        .collect::<Vec<_>>(),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = validated(&python, &file);
    // A case the VM died in has no progress line: the report makes it an
    // error, and adds the fault's own result, `vm/run`.
    let seen = progress(&stdout);
    let mut planned = vec!["list", "--include-harness-faults"];
    planned.extend(SELECTION);
    let planned = String::from_utf8(common::portrange(&planned).stdout).unwrap();
    let mut expected: BTreeMap<String, String> = planned
        .lines()
        .map(|name| {
            (
                name.to_owned(),
                seen.get(name).unwrap_or(&"ERROR").to_string(),
            )
        })
        .collect();
    expected.insert("vm/run".into(), "ERROR".into());
    assert_eq!(tests_of(&document, "portrange_test"), expected, "{stdout}");
    let statuses: Vec<&String> = expected.values().collect();
    for status in ["PASS", "FAIL", "SKIP", "ERROR"] {
        assert!(
            statuses.iter().any(|s| *s == status),
            "no {status}: {expected:?}"
        );
    }

    let build = &document["builds"][0];
    assert_eq!(build["architecture"], "x86_64");
    let release = build["misc"]["kernel_release"].as_str().unwrap();
    assert!(release.starts_with("6.1."), "{build:#}");
    let vm_run = document["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "portrange.vm.run")
        .unwrap();
    assert_eq!(vm_run["environment"]["misc"]["kernel_release"], release);
    let console = vm_run["output_files"][0]["url"].as_str().unwrap();
    let console = console.strip_prefix("file://").unwrap();
    let log = std::fs::read_to_string(console).unwrap();
    assert!(log.contains("Attempted to kill init"), "{console}");
    let passed = document["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "PASS")
        .unwrap();
    assert!(passed.get("output_files").is_none(), "{passed:#}");
}

#[test]
fn a_native_run_validates_and_reads_back() {
    if common::not_root() {
        return;
    }
    let Some(python) = kcidb_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kcidb.json");
    let output = common::portrange(&[
        "run",
        "--format",
        "kcidb",
        "--output",
        file.to_str().unwrap(),
        "tcp4/sockopt/",
        "udp6/connect/",
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let document = validated(&python, &file);
    let expected: BTreeMap<String, String> = progress(&stdout)
        .into_iter()
        .map(|(name, status)| (name, status.to_owned()))
        .collect();
    assert!(!expected.is_empty(), "{stdout}");
    assert_eq!(tests_of(&document, "portrange"), expected, "{stdout}");
    assert_eq!(
        document["builds"][0]["architecture"],
        arch::Arch::host().to_string()
    );
}

#[test]
fn an_origin_kcidb_refuses_is_refused_before_running() {
    let output = common::portrange(&["run", "--format", "kcidb", "--kcidb-origin", "My-Lab"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"My-Lab\" is no KCIDB origin: use lowercase letters, digits and `_`"),
        "{stderr}"
    );
}

#[test]
fn a_matrix_writes_a_valid_file_per_column_matching_its_summary() {
    if common::qemu_missing() {
        return;
    }
    let Some(python) = kcidb_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = common::portrange(&[
        "matrix",
        "--kernel",
        "debian-6.1",
        "--kernel",
        "debian-6.12",
        "--kcidb",
        "--kcidb-origin",
        "matrix_test",
        "--out-dir",
        dir.path().to_str().unwrap(),
        "tcp4/sockopt/",
        "mptcp4/sockopt/round_trip",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    for kernel in summary["kernels"].as_array().unwrap() {
        let label = kernel["label"].as_str().unwrap();
        let document = validated(&python, &dir.path().join(format!("{label}.kcidb.json")));
        let expected: BTreeMap<String, String> = kernel["report"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let outcome = r["outcome"].as_str().unwrap();
                (
                    r["name"].as_str().unwrap().to_owned(),
                    outcome.to_uppercase(),
                )
            })
            .collect();
        assert_eq!(tests_of(&document, "matrix_test"), expected, "{label}");
        assert_eq!(document["builds"][0]["architecture"], "x86_64");
        assert_eq!(
            document["builds"][0]["misc"]["kernel_release"],
            kernel["asked"]["kernel"]
        );
    }
}
