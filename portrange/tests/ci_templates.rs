//! The pipeline templates under ci/ parse as YAML and have the shape their
//! engines expect, and the GitHub and GitLab ones do all their work through
//! the same ci/scripts/ (so the GitLab run in gitlab_pipeline.rs covers
//! GitHub's logic too); the kselftest drop-in runs under the kernel's own
//! kselftest runner (taken from Debian's linux-source-6.12, fetched into
//! the cache on first use).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use arch::Arch;
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

/// The shell lines of every job of the GitHub workflow (its steps' `run`),
/// by job name.
fn github_job_lines(workflow: &Yaml) -> Vec<(String, Vec<String>)> {
    let jobs = workflow["jobs"].as_hash().expect("jobs");
    jobs.iter()
        .map(|(name, job)| {
            let lines = job["steps"]
                .as_vec()
                .expect("steps")
                .iter()
                .filter_map(|s| s["run"].as_str())
                .flat_map(str::lines)
                .map(str::to_owned)
                .collect();
            (name.as_str().unwrap().to_owned(), lines)
        })
        .collect()
}

/// The shell lines of every job of the GitLab pipeline (`before_script`,
/// `script`, `after_script`), by top-level key; hidden jobs (`.name`) and
/// `default` included.
fn gitlab_job_lines(pipeline: &Yaml) -> Vec<(String, Vec<String>)> {
    let entries = pipeline.as_hash().expect("a mapping of jobs");
    entries
        .iter()
        .filter(|(_, job)| job.as_hash().is_some())
        .map(|(name, job)| {
            let lines = ["before_script", "script", "after_script"]
                .iter()
                .filter_map(|key| job[*key].as_vec())
                .flatten()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect();
            (name.as_str().unwrap().to_owned(), lines)
        })
        .collect()
}

/// The `ci/scripts/` programs the lines call, checking every line is such
/// a call (job bodies stay thin, so the GitLab run covers the logic).
fn scripts_called(jobs: &[(String, Vec<String>)]) -> BTreeSet<String> {
    let mut scripts = BTreeSet::new();
    for (job, lines) in jobs {
        for line in lines {
            let program = line.split_whitespace().next().unwrap_or_default();
            assert!(
                program.starts_with("ci/scripts/"),
                "job {job} runs {line:?}: job bodies only call ci/scripts/"
            );
            let path = ci_dir().join("..").join(program);
            let mode = fs::metadata(&path)
                .unwrap_or_else(|e| panic!("job {job} calls {program}: {e}"))
                .permissions()
                .mode();
            assert!(mode & 0o111 != 0, "{program} is not executable");
            scripts.insert(program.to_owned());
        }
    }
    scripts
}

#[test]
fn github_workflow_runs_a_kernel_matrix_and_merges_it() {
    let workflow = load("github/portrange.yml");
    assert!(!workflow["on"].is_badvalue(), "no triggers");
    let jobs = github_job_lines(&workflow);
    let lines = |name: &str| {
        jobs.iter()
            .find(|(job, _)| job == name)
            .unwrap_or_else(|| panic!("no {name} job"))
            .1
            .join("\n")
    };
    assert!(lines("build").contains("ci/scripts/build.sh"));
    let vm = &workflow["jobs"]["vm"];
    let kernels = vm["strategy"]["matrix"]["kernel"]
        .as_vec()
        .expect("kernel matrix");
    assert!(kernels.iter().any(|k| k.as_str() == Some("debian-6.1")));
    assert!(!vm["strategy"]["matrix"]["shard"].is_badvalue());
    for job in ["native", "vm"] {
        assert!(lines(job).contains("ci/scripts/shard.sh"), "{job}");
        assert_eq!(workflow["jobs"][job]["needs"].as_str(), Some("build"));
        assert!(
            workflow["jobs"][job]["steps"]
                .as_vec()
                .unwrap()
                .iter()
                .any(|s| {
                    s["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("actions/upload-artifact"))
                })
        );
    }
    let report = &workflow["jobs"]["report"];
    let needs: Vec<&str> = report["needs"]
        .as_vec()
        .expect("report needs")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(needs, ["native", "vm", "vm-arm64"]);
    assert!(lines("report").contains("ci/scripts/merge.sh"));
    assert!(lines("build-static").contains("ci/scripts/deps.sh build x86_64 arm64"));
    assert!(lines("build-static").contains("ci/scripts/static.sh"));
    let uploaded = workflow["jobs"]["build-static"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find_map(|s| s["with"]["path"].as_str())
        .expect("build-static uploads the binaries");
    assert_eq!(
        uploaded.lines().collect::<Vec<_>>(),
        ["bin/portrange-x86_64", "bin/portrange-arm64"]
    );
    let arm64 = &workflow["jobs"]["vm-arm64"];
    let kernels: Vec<&str> = arm64["strategy"]["matrix"]["kernel"]
        .as_vec()
        .expect("arm64 kernel matrix")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(kernels, ["debian-6.1", "debian-6.12"]);
    assert!(lines("vm-arm64").contains("ci/scripts/deps.sh vm arm64"));
    assert!(lines("vm-arm64").contains(" 1/1 ") && lines("vm-arm64").ends_with(" arm64"));
    // The SQUAD submission: a step of the report job, off unless its
    // settings are there.
    let squad = report["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("ci/scripts/squad-submit.sh merged/summary.json"))
        })
        .expect("a SQUAD submission step in the report job");
    let condition = squad["if"].as_str().expect("the SQUAD step is conditional");
    for var in SQUAD_SETTINGS {
        assert!(
            condition.contains(&format!("env.{var} != ''")),
            "{condition}"
        );
        assert!(
            !report["env"][var].is_badvalue(),
            "report job env lacks {var}"
        );
    }
    assert!(condition.starts_with("always()"), "{condition}");
}

/// What says where to submit to SQUAD: without all four, no submission.
const SQUAD_SETTINGS: [&str; 4] = ["SQUAD_URL", "SQUAD_TOKEN", "SQUAD_GROUP", "SQUAD_PROJECT"];

#[test]
fn gitlab_pipeline_runs_a_kernel_matrix_with_junit_reports() {
    let pipeline = load("gitlab/portrange.gitlab-ci.yml");
    let jobs = gitlab_job_lines(&pipeline);
    let lines = |name: &str| {
        jobs.iter()
            .find(|(job, _)| job == name)
            .unwrap_or_else(|| panic!("no {name} job"))
            .1
            .join("\n")
    };
    assert!(lines("portrange-build").contains("ci/scripts/build.sh"));
    for job in ["portrange-native", "portrange-vm"] {
        assert!(
            pipeline[job]["parallel"]["matrix"].as_vec().is_some(),
            "{job}: no parallel matrix"
        );
        assert!(lines(job).contains("ci/scripts/shard.sh"), "{job}");
        assert_eq!(pipeline[job]["extends"].as_str(), Some(".portrange-shard"));
    }
    assert!(
        pipeline[".portrange-shard"]["artifacts"]["reports"]["junit"]
            .as_str()
            .is_some()
    );
    assert!(lines("portrange-build-static").contains("ci/scripts/static.sh"));
    let artifacts: Vec<&str> = pipeline["portrange-build-static"]["artifacts"]["paths"]
        .as_vec()
        .expect("the static binaries as artifacts")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(artifacts, ["bin/portrange-x86_64", "bin/portrange-arm64"]);
    let arm64 = lines("portrange-vm-arm64");
    assert!(arm64.contains("ci/scripts/deps.sh vm arm64"), "{arm64}");
    assert!(
        arm64.contains("ci/scripts/shard.sh \"$KERNEL\" 1/1 \"out/$KERNEL-arm64\" arm64"),
        "{arm64}"
    );
    assert_eq!(
        pipeline["portrange-vm-arm64"]["extends"].as_str(),
        Some(".portrange-shard")
    );
    assert!(lines("portrange-report").contains("ci/scripts/merge.sh"));
    assert!(
        pipeline["portrange-report"]["artifacts"]["reports"]["junit"]
            .as_str()
            .is_some()
    );
    assert!(lines("portrange-squad").contains("ci/scripts/squad-submit.sh merged/summary.json"));
    let rule = &pipeline["portrange-squad"]["rules"][0];
    let condition = rule["if"].as_str().expect("the SQUAD job runs on a rule");
    for var in SQUAD_SETTINGS {
        assert!(condition.contains(&format!("${var}")), "{condition}");
    }
    assert_eq!(rule["when"].as_str(), Some("always"));
}

#[test]
fn github_and_gitlab_call_the_same_scripts() {
    let github = scripts_called(&github_job_lines(&load("github/portrange.yml")));
    let gitlab = scripts_called(&gitlab_job_lines(&load("gitlab/portrange.gitlab-ci.yml")));
    assert_eq!(github, gitlab);
    for script in [
        "build.sh",
        "static.sh",
        "shard.sh",
        "merge.sh",
        "squad-submit.sh",
    ] {
        assert!(github.contains(&format!("ci/scripts/{script}")), "{script}");
    }
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

#[test]
fn lava_job_deploys_the_static_binary_into_the_ramdisk_and_runs_the_definition() {
    let job = load("lava/job-qemu.yaml");
    let actions = job["actions"].as_vec().expect("actions");
    let deploy = &actions[0]["deploy"];
    assert_eq!(deploy["to"].as_str(), Some("tmpfs"));
    let ramdisk = &deploy["images"]["ramdisk"];
    assert_eq!(ramdisk["format"].as_str(), Some("cpio.newc"));
    assert_eq!(ramdisk["overlays"]["lava"].as_bool(), Some(true));
    let binary = &ramdisk["overlays"]["portrange"];
    assert!(
        binary["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/portrange-x86_64")),
        "the static build's artifact"
    );
    assert_eq!(binary["format"].as_str(), Some("file"));
    let path = binary["path"].as_str().expect("where the binary goes");
    assert_eq!(actions[1]["boot"]["method"].as_str(), Some("qemu"));
    let definition = &actions[2]["test"]["definitions"][0];
    assert_eq!(definition["from"].as_str(), Some("git"));
    assert_eq!(definition["path"].as_str(), Some("ci/lava/portrange.yaml"));
    assert_eq!(
        definition["parameters"]["PORTRANGE_URL"].as_str(),
        Some(format!("file://{path}").as_str()),
        "the definition takes the binary from where the overlay put it"
    );
    let device = load("lava/device-qemu.yaml");
    assert_eq!(job["device_type"], device["device_type"]);
    let arch = job["context"]["arch"].as_str().expect("the job's arch");
    assert!(
        device["available_architectures"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|a| a.as_str() == Some(arch))
    );
    assert!(!device["actions"]["boot"]["methods"]["qemu"]["parameters"]["command"].is_badvalue());
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
    let install = common::kselftest_install(&tree, Path::new(common::PORTRANGE));
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

#[test]
fn the_scripts_name_arm64_guests_as_portrange_does() {
    let lib = ci_dir().join("scripts/lib.sh");
    let output = Command::new("bash")
        .arg("-c")
        .arg(
            "source \"$1\"; for a in arm64 aarch64 x86_64; do \
             echo \"$(guest_arch $a) $(rust_target $a) $(basename $(guest_bin $a))\"; done; \
             (guest_arch riscv64); (x=$(guest_bin riscv64) && echo \"$x\"); \
             x=$(rust_target riscv64) && echo \"$x\"",
        )
        .arg("bash")
        .arg(&lib)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected: Vec<String> = [Arch::Arm64, Arch::Arm64, Arch::X86_64]
        .iter()
        .map(|arch| {
            format!(
                "{arch} {} portrange-{arch}",
                qemu::guest_program::rust_target(*arch)
            )
        })
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    assert_eq!(output.status.code(), Some(2), "an unknown arch is refused");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("unknown architecture riscv64: use x86_64 or arm64")
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
    let real = portrange_on_path.then_some(Path::new(common::PORTRANGE));
    run_lava_helper_with(real, args)
}

/// [`run_lava_helper`] with `portrange` (if any) as the `portrange` on PATH.
fn run_lava_helper_with(portrange: Option<&Path>, args: &[&str]) -> LavaRun {
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
    if let Some(portrange) = portrange {
        std::os::unix::fs::symlink(portrange, bin.join("portrange")).unwrap();
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

/// A run that skips as a whole (`1..0 # SKIP`, no privileges) reports
/// each planned case as skipped, not failed. The `portrange` here is a
/// fake for the test: it plans two cases and skips the run, as the real
/// one does without privileges.
#[test]
fn lava_helper_reports_the_plan_of_a_wholly_skipped_run_as_skips() {
    let scratch = tempfile::tempdir().unwrap();
    let fake = scratch.path().join("fake-portrange-that-skips-everything");
    fs::write(
        &fake,
        "#!/bin/sh\n# Test fake of portrange: plans two cases, skips the whole run.\n\
         case \"$*\" in\n\
         *--list*) printf 'tcp4/sockopt/round_trip\\nudp4/sockopt/round_trip\\n' ;;\n\
         *) printf 'KTAP version 1\\n1..0 # SKIP no privileges\\n'; exit 4 ;;\n\
         esac\n",
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let skipped = run_lava_helper_with(Some(&fake), &["", "sockopt/round_trip"]);
    assert_eq!(skipped.status, Some(4), "{}", skipped.stderr);
    assert_eq!(
        skipped.calls,
        [
            "portrange-setup --result pass",
            "tcp4.sockopt.round_trip --result skip",
            "udp4.sockopt.round_trip --result skip",
        ]
    );
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

    // The run dies in its third case, after the first two results were
    // streamed: the third planned case is reported too, as a failure.
    let aborted = run_lava_helper(
        true,
        &[
            "",
            "--include-harness-faults",
            "--threads",
            "1",
            "--exact",
            "tcp4/sockopt/round_trip",
            "udp4/sockopt/round_trip",
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
            "udp4.sockopt.round_trip --result pass",
            "tcp4.harness_fault.aborts_the_process --result fail",
        ]
    );
    assert!(
        aborted.stderr.contains(
            "portrange: tcp4/harness_fault/aborts_the_process never reported: the run ended (exit status 134) before it"
        ),
        "{}",
        aborted.stderr
    );

    let refused = run_lava_helper(true, &["", "--shard", "3/2"]);
    assert_eq!(refused.status, Some(2), "{}", refused.stderr);
    assert_eq!(refused.calls, ["portrange-setup --result fail"]);
    assert!(
        refused.stderr.contains("expected I/N"),
        "{}",
        refused.stderr
    );

    // Not on PATH: copied from the device's file system, where a LAVA
    // overlay put it (ci/lava/job-qemu.yaml).
    let url = format!("file://{}", common::PORTRANGE);
    let copied = run_lava_helper(false, &[&url, "--exact", "tcp4/sockopt/round_trip"]);
    assert_eq!(copied.status, Some(0), "{}", copied.stderr);
    assert_eq!(
        copied.calls,
        [
            "portrange-setup --result pass",
            "tcp4.sockopt.round_trip --result pass",
        ]
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
