//! The pipeline templates under ci/ parse as YAML and have the shape their
//! engines expect; the kselftest drop-in runs under the kernel's own
//! kselftest runner (taken from Debian's linux-source-6.12, fetched into
//! the cache on first use).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci")
}

fn load(relative: &str) -> Yaml {
    let path = ci_dir().join(relative);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut documents = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"));
    assert_eq!(documents.len(), 1, "{relative}: one document expected");
    documents.remove(0)
}

#[test]
fn github_workflow_runs_a_kernel_matrix_and_merges_it() {
    let workflow = load("github/portrange.yml");
    assert!(!workflow["on"].is_badvalue(), "no triggers");
    let job = &workflow["jobs"]["conformance"];
    let kernels = job["strategy"]["matrix"]["kernel"]
        .as_vec()
        .expect("kernel matrix");
    assert!(kernels.iter().any(|k| k.as_str() == Some("debian-6.1")));
    let steps = job["steps"].as_vec().expect("steps");
    let runs: String = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(
        runs.contains("portrange matrix") && runs.contains("--shard"),
        "{runs}"
    );
    assert!(steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
    }));
    let report = &workflow["jobs"]["report"];
    assert_eq!(report["needs"].as_str(), Some("conformance"));
    let merge: String = report["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(merge.contains("portrange merge"), "{merge}");
}

#[test]
fn gitlab_job_runs_a_kernel_matrix_with_junit_reports() {
    let pipeline = load("gitlab/portrange.gitlab-ci.yml");
    let job = &pipeline["portrange"];
    assert!(
        job["parallel"]["matrix"].as_vec().is_some(),
        "no parallel matrix"
    );
    let script: Vec<&str> = job["script"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        script.iter().any(|l| l.contains("portrange matrix")),
        "{script:?}"
    );
    assert!(job["artifacts"]["reports"]["junit"].as_str().is_some());
    assert!(
        pipeline["portrange-report"]["script"].as_vec().unwrap()[0]
            .as_str()
            .unwrap()
            .contains("merge")
    );
}

#[test]
fn lava_definition_has_metadata_and_run_steps() {
    let definition = load("lava/portrange.yaml");
    assert_eq!(
        definition["metadata"]["format"].as_str(),
        Some("Lava-Test Test Definition 1.0")
    );
    assert!(definition["metadata"]["name"].as_str().is_some());
    let steps = definition["run"]["steps"].as_vec().expect("run steps");
    assert!(
        steps
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains("run-portrange.sh")))
    );
    assert!(ci_dir().join("lava/run-portrange.sh").exists());
}

/// Lays out the kernel's real kselftest runner the way `make install`
/// does, drops portrange in with ci/kselftest/install.sh, and runs the
/// collection. Needs root (or user namespaces) for a pass; the network
/// once to fetch the kernel source.
#[test]
fn kselftest_runner_runs_the_dropped_in_binary() {
    let cache = qemu::kernel::default_cache_dir();
    let tree = kbuild::source::fetch_debian("6.12", &cache, &mut |line| eprintln!("{line}"))
        .unwrap_or_else(|e| panic!("fetching linux-source-6.12 for its kselftest runner: {e}"));
    let selftests = tree.join("tools/testing/selftests");
    let install = tempfile::tempdir().unwrap();
    fs::copy(
        selftests.join("run_kselftest.sh"),
        install.path().join("run_kselftest.sh"),
    )
    .unwrap();
    fs::create_dir(install.path().join("kselftest")).unwrap();
    for file in ["runner.sh", "ktap_helpers.sh", "prefix.pl"] {
        fs::copy(
            selftests.join("kselftest").join(file),
            install.path().join("kselftest").join(file),
        )
        .unwrap();
    }
    fs::write(install.path().join("kselftest-list.txt"), "").unwrap();
    let status = Command::new(ci_dir().join("kselftest/install.sh"))
        .arg(common::PORTRANGE)
        .arg(install.path())
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new(install.path().join("run_kselftest.sh"))
        .args(["-c", "portrange"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("# KTAP version 1"),
        "the binary's KTAP is relayed:\n{stdout}"
    );
    assert!(
        stdout.contains("# ok 1 tcp4/sockopt/round_trip"),
        "{stdout}"
    );
    let verdict = stdout
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("selftests: portrange: portrange"))
        .unwrap_or_default();
    assert!(
        verdict.starts_with("ok 1 selftests: portrange: portrange"),
        "kselftest's verdict line: {verdict:?}\n{stdout}"
    );
}

/// What one run of ci/lava/run-portrange.sh did: its exit status and the
/// calls its `lava-test-case` got, one line each.
struct LavaRun {
    status: Option<i32>,
    calls: Vec<String>,
    stderr: String,
}

/// Runs ci/lava/run-portrange.sh with `args` in a scratch directory, with a
/// stand-in for LAVA's `lava-test-case` first on PATH (it only records its
/// arguments; LAVA's own needs a LAVA job around it) and, if
/// `portrange_on_path`, the real binary under test beside it.
fn run_lava_helper(portrange_on_path: bool, args: &[&str]) -> LavaRun {
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let calls = scratch.path().join("calls");
    let stand_in = bin.join("lava-test-case");
    fs::write(
        &stand_in,
        "#!/bin/sh\n# Test stand-in for LAVA's lava-test-case: records its arguments.\necho \"$*\" >>\"$LAVA_STAND_IN_CALLS\"\n",
    )
    .unwrap();
    fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    if portrange_on_path {
        std::os::unix::fs::symlink(common::PORTRANGE, bin.join("portrange")).unwrap();
    }
    let output = Command::new(ci_dir().join("lava/run-portrange.sh"))
        .args(args)
        .current_dir(scratch.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("LAVA_STAND_IN_CALLS", &calls)
        .output()
        .unwrap();
    LavaRun {
        status: output.status.code(),
        calls: fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn lava_helper_reports_setup_and_exits_as_portrange_did() {
    let passing = run_lava_helper(
        true,
        &[
            "",
            "--exact",
            "tcp4/sockopt/round_trip",
            "udp6/sockopt/round_trip",
        ],
    );
    if passing.status == Some(4) {
        eprintln!("skipped: no case could run here: {:?}", passing.calls);
        return;
    }
    assert_eq!(passing.status, Some(0), "{}", passing.stderr);
    assert_eq!(
        passing.calls,
        [
            "portrange-setup --result pass",
            "tcp4.sockopt.round_trip --result pass",
            "udp6.sockopt.round_trip --result pass",
        ]
    );

    let failing = run_lava_helper(
        true,
        &[
            "",
            "--include-harness-faults",
            "--exact",
            "tcp4/sockopt/round_trip",
            "tcp4/harness_fault/panics",
        ],
    );
    assert_eq!(failing.status, Some(1), "{}", failing.stderr);
    assert_eq!(
        failing.calls,
        [
            "portrange-setup --result pass",
            "tcp4.sockopt.round_trip --result pass",
            "tcp4.harness_fault.panics --result fail",
        ]
    );

    // The run dies in its second case; the first one's result was streamed.
    let aborted = run_lava_helper(
        true,
        &[
            "",
            "--include-harness-faults",
            "--threads",
            "1",
            "--exact",
            "tcp4/sockopt/round_trip",
            "tcp4/harness_fault/aborts_the_process",
        ],
    );
    assert_eq!(
        aborted.status,
        Some(128 + libc::SIGABRT),
        "{}",
        aborted.stderr
    );
    assert_eq!(
        aborted.calls,
        [
            "portrange-setup --result pass",
            "tcp4.sockopt.round_trip --result pass",
        ]
    );

    let refused = run_lava_helper(true, &["", "--shard", "3/2"]);
    assert_eq!(refused.status, Some(2), "{}", refused.stderr);
    assert_eq!(refused.calls, ["portrange-setup --result fail"]);
    assert!(
        refused.stderr.contains("expected I/N"),
        "{}",
        refused.stderr
    );

    let missing = run_lava_helper(false, &[]);
    assert_eq!(missing.status, Some(1), "{}", missing.stderr);
    assert_eq!(missing.calls, ["portrange-setup --result fail"]);
    assert!(
        missing
            .stderr
            .contains("not on PATH and PORTRANGE_URL is empty"),
        "{}",
        missing.stderr
    );
}
