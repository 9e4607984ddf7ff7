//! The shipped GitLab pipeline (ci/gitlab/portrange.gitlab-ci.yml), run for
//! real by gitlab-ci-local with its shell executor: the build job, the
//! static build (whose binaries must come out static), both native shards,
//! both debian-6.12 shards and the merge job (the debian-6.1 cells and the
//! one job per arm64 kernel are listed but not run, to keep the test to one
//! kernel in QEMU; the arm64 suite runs in tests/arm64.rs).
//! The merged junit.xml and summary.json must hold the same cases with the
//! same verdicts as one unsharded `portrange matrix` over the same kernels.
//!
//! Requirement `ci-engines`: gitlab-ci-local as `.ci/install-deps` installs
//! it (pinned, under the portrange cache), rsync and git; without them the
//! test skips, saying which is missing. It needs QEMU and root (or user
//! namespaces) like the other VM tests.
//!
//! Nothing is written to the git tree: the pipeline runs in a copy of the
//! checked-out files under the target directory (removed after a passing
//! run, kept for inspection after a failing one), with the release build
//! going to the same target directory, so later runs build incrementally.
//! gitlab-ci-local runs in a process group of its own that is killed if
//! the test fails or times out, and the test checks none of it is left.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portrange::matrix::Matrix;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};

/// The jobs run, as gitlab-ci-local names the cells of a parallel matrix.
const JOBS: [&str; 7] = [
    "portrange-build",
    "portrange-build-static",
    "portrange-native: [1/2]",
    "portrange-native: [2/2]",
    "portrange-vm: [debian-6.12,1/2]",
    "portrange-vm: [debian-6.12,2/2]",
    "portrange-report",
];

/// The debian-6.1 cells and the arm64 VM jobs, listed by gitlab-ci-local
/// but not run.
const NOT_RUN: [&str; 4] = [
    "portrange-vm: [debian-6.1,1/2]",
    "portrange-vm: [debian-6.1,2/2]",
    "portrange-vm-arm64: [debian-6.1]",
    "portrange-vm-arm64: [debian-6.12]",
];

/// The kernels those jobs cover, for the unsharded reference run.
const KERNELS: [&str; 2] = ["running", "debian-6.12"];

/// Longest the pipeline may take: a release build from cold caches on a
/// busy two-core machine plus two VM shards.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// How long gitlab-ci-local's helper processes may take to exit after it.
const LINGER_GRACE: Duration = Duration::from_secs(10);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `.ci/install-deps` puts gitlab-ci-local.
fn gitlab_ci_local() -> PathBuf {
    qemu::kernel::default_cache_dir()
        .join("ci-tools/gitlab-ci-local/node_modules/.bin/gitlab-ci-local")
}

/// Why the `ci-engines` requirement is not met, if it is not.
fn missing_engine() -> Option<String> {
    let tool = gitlab_ci_local();
    if !tool.exists() {
        return Some(format!(
            "gitlab-ci-local not installed at {}: run .ci/install-deps (needs Node.js 20+ and npm)",
            tool.display()
        ));
    }
    for (program, package) in [("rsync", "rsync"), ("git", "git")] {
        if Command::new(program).arg("--version").output().is_err() {
            return Some(format!(
                "{program} not found (gitlab-ci-local needs it): apt-get install {package}"
            ));
        }
    }
    None
}

/// Runs `git` in `dir` and gives its stdout, panicking with its stderr.
fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Copies the checkout's files (tracked and untracked, not ignored, so the
/// working tree as it is) to `to`, keeping modes and modification times so
/// cargo sees unchanged sources as unchanged; then makes `to` a git
/// repository with every file added, which gitlab-ci-local needs to copy
/// the project into each job.
fn copy_checkout(to: &Path) {
    let from = workspace();
    let listing = git(
        &from,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    );
    for name in listing.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).expect("UTF-8 file name");
        let source = from.join(name);
        let Ok(modified) = fs::metadata(&source).and_then(|m| m.modified()) else {
            continue; // tracked but deleted in the working tree
        };
        let target = to.join(name);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(&source, &target).unwrap_or_else(|e| panic!("copy {name}: {e}"));
        fs::File::options()
            .write(true)
            .open(&target)
            .and_then(|f| f.set_modified(modified))
            .unwrap_or_else(|e| panic!("set the time of {name}: {e}"));
    }
    git(to, &["init", "--quiet"]);
    git(to, &["add", "--all"]);
}

/// gitlab-ci-local's arguments for the pipeline in `project`: the shell
/// executor (there is no container engine here), the portrange cache the
/// other tests fill, and the test's own target directory for the build.
fn pipeline_args() -> Vec<String> {
    let cache = qemu::kernel::default_cache_dir();
    [
        "--file",
        "ci/gitlab/portrange.gitlab-ci.yml",
        "--force-shell-executor",
        "--shell-isolation",
        "--no-color",
        "--variable",
        &format!("PORTRANGE_CACHE={}", cache.display()),
        "--variable",
        &format!("CARGO_TARGET_DIR={}", common::target_dir().display()),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The jobs gitlab-ci-local finds in the pipeline, by name.
fn listed_jobs(project: &Path) -> Vec<String> {
    let output = Command::new(gitlab_ci_local())
        .current_dir(project)
        .args(pipeline_args())
        .arg("--list")
        .output()
        .expect("run gitlab-ci-local --list");
    assert!(
        output.status.success(),
        "gitlab-ci-local --list: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8_lossy(&output.stdout);
    table
        .lines()
        .skip_while(|l| !l.starts_with("name "))
        .skip(1)
        .filter_map(|l| l.split("  ").next())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Kills the process group of the pipeline run unless it ended by itself.
struct GroupGuard(Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// Runs gitlab-ci-local in `project` on [`JOBS`], at most one job at a
/// time (one VM at a time), and gives its success and its output.
fn run_pipeline(project: &Path) -> (bool, String) {
    let mut command = Command::new(gitlab_ci_local());
    command
        .current_dir(project)
        .args(pipeline_args())
        .args(["--concurrency", "1"])
        .args(JOBS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().expect("start gitlab-ci-local");
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let guard = GroupGuard(group);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < PIPELINE_TIMEOUT,
            "gitlab-ci-local still running after {PIPELINE_TIMEOUT:?}: killed"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let output = reader
        .join()
        .unwrap()
        .expect("read gitlab-ci-local's output");
    eprintln!(
        "gitlab-ci-local ran {} jobs in {:.0} s",
        JOBS.len(),
        started.elapsed().as_secs_f64()
    );
    // gitlab-ci-local's own helpers may take a moment to exit after it;
    // anything still there after the grace period is a leak.
    let lingering = group_members(group, LINGER_GRACE);
    assert!(
        lingering.is_empty(),
        "processes of the pipeline run still alive {LINGER_GRACE:?} after it ended \
         (killed now): {lingering:?}"
    );
    std::mem::forget(guard);
    (status.success(), output)
}

/// The command lines of the processes still in `group` once it empties or
/// `grace` has passed, whichever comes first.
fn group_members(group: Pid, grace: Duration) -> Vec<String> {
    let deadline = Instant::now() + grace;
    loop {
        let members: Vec<String> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
                // pid (comm) state ppid pgrp ...
                let (_, rest) = stat.rsplit_once(") ")?;
                let mut fields = rest.split(' ');
                let state = fields.next()?;
                let pgrp = fields.nth(1)?.parse::<i32>().ok()?;
                (pgrp == group.as_raw() && state != "Z").then(|| {
                    let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                })
            })
            .collect();
        if members.is_empty() || Instant::now() >= deadline {
            return members;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every case of a summary.json: (kernel, case) to its verdict, with the
/// reason for skips (failure messages can carry ports and timings) and the
/// kernel profile the case matched.
fn summary_verdicts(dir: &Path) -> BTreeMap<(String, String), String> {
    let path = dir.join("summary.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let matrix: Matrix = serde_json::from_str(&text).unwrap();
    let mut verdicts = BTreeMap::new();
    for kernel in &matrix.kernels {
        for result in &kernel.report.results {
            let verdict = match &result.outcome {
                harness::Outcome::Pass => "pass".to_owned(),
                harness::Outcome::Skip(reason) => format!("skip: {reason}"),
                harness::Outcome::Fail(_) => "fail".to_owned(),
                harness::Outcome::Error(_) => "error".to_owned(),
            };
            let key = (kernel.label.clone(), result.name.clone());
            let value = format!("{verdict} (profile {:?})", result.profile);
            assert!(
                verdicts.insert(key, value).is_none(),
                "{} twice",
                result.name
            );
        }
    }
    verdicts
}

/// Every test case of a junit.xml: (suite, case) to its verdict.
fn junit_verdicts(dir: &Path) -> BTreeMap<(String, String), &'static str> {
    let path = dir.join("junit.xml");
    let xml = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let report = Report::deserialize_from_str(&xml).unwrap();
    let mut verdicts = BTreeMap::new();
    for suite in &report.test_suites {
        for case in &suite.test_cases {
            let verdict = match &case.status {
                TestCaseStatus::Success { .. } => "pass",
                TestCaseStatus::Skipped { .. } => "skip",
                TestCaseStatus::NonSuccess { kind, .. } => match kind {
                    NonSuccessKind::Failure => "fail",
                    NonSuccessKind::Error => "error",
                },
            };
            let key = (suite.name.to_string(), case.name.to_string());
            assert!(
                verdicts.insert(key, verdict).is_none(),
                "{} twice",
                case.name.as_str()
            );
        }
    }
    verdicts
}

#[test]
fn gitlab_pipeline_under_gitlab_ci_local_equals_an_unsharded_run() {
    if let Some(reason) = missing_engine() {
        return require::skip_or_fail(require::Requirement::CiEngines, &reason);
    }
    if common::qemu_missing() {
        return;
    }
    let project = common::target_dir().join("gitlab-ci-local/project");
    if project.exists() {
        fs::remove_dir_all(&project).unwrap();
    }
    copy_checkout(&project);
    let listed = listed_jobs(&project);
    let expected: Vec<&str> = JOBS.iter().chain(&NOT_RUN).copied().collect();
    assert_eq!(
        listed.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected.into_iter().collect(),
        "the pipeline's jobs"
    );

    let (success, output) = run_pipeline(&project);
    eprintln!("{output}");
    assert!(
        success,
        "the pipeline failed; its jobs' logs are under {}",
        project.join(".gitlab-ci-local/output").display()
    );
    for job in JOBS {
        assert!(
            output
                .lines()
                .any(|l| l.trim_start().starts_with("PASS") && l.contains(job)),
            "{job} did not pass"
        );
    }
    for arch in ["x86_64", "arm64"] {
        let binary = project.join(format!("bin/portrange-{arch}"));
        let file = Command::new("file")
            .arg(&binary)
            .output()
            .expect("run file");
        let file = String::from_utf8_lossy(&file.stdout);
        assert!(
            file.contains("statically linked") || file.contains("static-pie linked"),
            "the static build job's artifact: {file}"
        );
    }
    let merged = project.join("merged");

    let reference = tempfile::tempdir().unwrap();
    let mut args = vec!["matrix"];
    for kernel in KERNELS {
        args.extend(["--kernel", kernel]);
    }
    args.extend(["--out-dir", reference.path().to_str().unwrap()]);
    let output = common::portrange(&args);
    assert!(
        output.status.code().is_some_and(|c| c != 2),
        "the unsharded run failed to run: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let whole = summary_verdicts(reference.path());
    assert_eq!(
        whole
            .keys()
            .map(|(k, _)| k.as_str())
            .collect::<BTreeSet<_>>(),
        KERNELS.into_iter().collect(),
    );
    assert_eq!(summary_verdicts(&merged), whole, "summary.json");
    let junit = junit_verdicts(reference.path());
    assert_eq!(junit.len(), whole.len(), "one JUnit test case per result");
    assert_eq!(junit_verdicts(&merged), junit, "junit.xml");

    fs::remove_dir_all(&project).unwrap();
}
