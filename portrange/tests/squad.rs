//! Results submitted to LKFT's SQUAD with `ci/scripts/squad-submit.sh` and
//! read back through SQUAD's REST API: a real SQUAD server (the `squad`
//! package from PyPI, in the virtual environment `.ci/install-deps` makes
//! under the cache) started by the test on a loopback port with its SQLite
//! database in a temporary directory, its group, project, user and token
//! made with squad's own management commands. Natively (needs root): a
//! `run --format json` report with its KTAP and log attached, and a
//! `matrix --kernel running` summary.json (the CI templates' form).

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const GROUP: &str = "portrange-ci";
const PROJECT: &str = "conformance";
/// The API token the test gives its user (squad's `users set-token`).
const TOKEN: &str = "portrangetest0123456789abcdef0123456789a";
const SELECTION: [&str; 2] = ["tcp4/sockopt/", "udp6/connect/"];

/// The `squad-admin` program's directory in the virtual environment
/// `.ci/install-deps` makes (the one place that installs squad); `None`
/// (said, or failed under PORTRANGE_REQUIRE with ci-engines) when squad,
/// curl or jq is missing.
fn squad_bin() -> Option<PathBuf> {
    let bin = qemu::kernel::default_cache_dir().join("squad-venv/bin");
    let runs = |program: &Path, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing = if !runs(&bin.join("squad"), "--version") || !bin.join("squad-admin").exists() {
        format!(
            "squad is not installed in {} (.ci/install-deps installs it from PyPI)",
            bin.display()
        )
    } else if let Some(tool) = ["curl", "jq"]
        .into_iter()
        .find(|tool| !runs(Path::new(tool), "--version"))
    {
        format!(
            "{tool} not found (.ci/install-deps installs it; ci/scripts/squad-submit.sh needs it)"
        )
    } else {
        return Some(bin);
    };
    require::skip_or_fail(require::Requirement::CiEngines, &missing);
    None
}

/// A SQUAD server of the test's own, killed when it is dropped (a panic
/// included) and bound to the test's thread should the test be killed.
struct Squad {
    server: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Squad {
    /// Makes the database (`migrate`), a superuser with [`TOKEN`], the group
    /// and project (`import_data` of an empty directory creates them), then
    /// serves it on a free loopback port until `/api/version/` answers.
    fn start(bin: &Path) -> Squad {
        let dir = tempfile::tempdir().unwrap();
        let settings = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/squad");
        let env = |command: &mut Command| {
            command
                .env("PYTHONPATH", &settings)
                .env("DJANGO_SETTINGS_MODULE", "portrange_squad_settings")
                .env("ENV", "production")
                .env("SECRET_KEY", "portrange-test")
                .env(
                    "DATABASE",
                    format!("NAME={}", dir.path().join("db.sqlite3").display()),
                )
                .env("SQUAD_STORAGE_DIR", dir.path().join("storage"))
                .env("SQUAD_STATIC_DIR", dir.path().join("static"));
        };
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let project = format!("{GROUP}/{PROJECT}");
        for args in [
            vec!["migrate", "--verbosity", "0"],
            vec!["users", "add", "ci", "--superuser"],
            vec!["users", "set-token", "ci", TOKEN],
            vec!["import_data", "--silent", &project, empty.to_str().unwrap()],
        ] {
            let mut command = Command::new(bin.join("squad-admin"));
            env(command.args(&args));
            let output = command.output().expect("run squad-admin");
            assert!(
                output.status.success(),
                "squad-admin {args:?}: {}",
                text(&output)
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let log = dir.path().join("server.log");
        // Django's server in one process (--noreload: no watcher child), so
        // that killing it leaves nothing behind, as gunicorn's workers
        // would be when their master is SIGKILLed.
        let mut command = Command::new(bin.join("squad-admin"));
        env(command.args(["runserver", "--noreload"]));
        command
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        let server = child_lifetime::bind_to_this_thread(&mut command)
            .spawn()
            .expect("start squad");
        let mut squad = Squad {
            server,
            url,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = squad.server.try_wait().unwrap() {
                panic!("squad ended ({status}) before serving: {}", squad.log());
            }
            if let Some(version) = squad.get("/api/version/") {
                eprintln!("squad {} on {}", version.trim(), squad.url);
                return squad;
            }
            assert!(
                Instant::now() < deadline,
                "squad did not answer on {} in 60 s: {}",
                squad.url,
                squad.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The body of GET `path` (or a full URL), `None` on no answer or an
    /// HTTP error.
    fn get(&self, path: &str) -> Option<String> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.url)
        };
        let output = Command::new("curl")
            .args(["--silent", "--fail", &url])
            .output()
            .expect("run curl");
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    }

    fn json(&self, path: &str) -> Value {
        let body = self
            .get(path)
            .unwrap_or_else(|| panic!("GET {path} failed: {}", self.log()));
        serde_json::from_str(&body).unwrap()
    }

    /// Every item of a paginated list, following `next`.
    fn all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut page = self.json(path);
        loop {
            items.extend(page["results"].as_array().unwrap().iter().cloned());
            match page["next"].as_str() {
                Some(next) => page = self.json(next),
                None => return items,
            }
        }
    }

    /// Runs ci/scripts/squad-submit.sh with `args` against this server.
    fn submit(&self, args: &[&Path]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/scripts/squad-submit.sh");
        let output = Command::new(script)
            .args(args)
            .env("SQUAD_URL", &self.url)
            .env("SQUAD_TOKEN", TOKEN)
            .env("SQUAD_GROUP", GROUP)
            .env("SQUAD_PROJECT", PROJECT)
            .env("SQUAD_JOB_ID", "job-7")
            .env("SQUAD_BUILD_CONFIG", "x86_64_defconfig")
            .output()
            .expect("run squad-submit.sh");
        assert!(
            output.status.success(),
            "squad-submit.sh {args:?}: {}\nserver: {}",
            text(&output),
            self.log()
        );
        text(&output)
    }

    /// The test run of `build`/`environment`: its record, and each test's
    /// status and log by case name (`portrange/` taken off).
    fn test_run(
        &self,
        build: &str,
        environment: &str,
    ) -> (Value, BTreeMap<String, (String, Value)>) {
        let runs: Vec<Value> = self
            .all("/api/testruns/")
            .into_iter()
            .filter(|run| {
                let build_url = run["build"].as_str().unwrap();
                let environment_url = run["environment"].as_str().unwrap();
                self.json(build_url)["version"] == build
                    && self.json(environment_url)["slug"] == environment
            })
            .collect();
        assert_eq!(runs.len(), 1, "{build}/{environment}: {runs:#?}");
        let run = runs.into_iter().next().unwrap();
        let tests = self
            .all(run["tests"].as_str().unwrap())
            .into_iter()
            .map(|test| {
                let name = test["name"].as_str().unwrap();
                let name = name.strip_prefix("portrange/").unwrap().to_owned();
                (
                    name,
                    (
                        test["status"].as_str().unwrap().to_owned(),
                        test["log"].clone(),
                    ),
                )
            })
            .collect();
        (run, tests)
    }
}

impl Drop for Squad {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What SQUAD should hold for each case of a JSON report: its status
/// (an error is a fail, SQUAD knowing pass, fail and skip only) and log.
fn squad_view(report: &Value) -> BTreeMap<String, (String, Value)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            let outcome = result["outcome"].as_str().unwrap();
            let message = &result["message"];
            let expected = match outcome {
                "pass" => ("pass", Value::Null),
                "error" => (
                    "fail",
                    format!("error: {}", message.as_str().unwrap()).into(),
                ),
                "fail" | "skip" => (outcome, message.clone()),
                other => panic!("unknown outcome {other:?}"),
            };
            let name = result["name"].as_str().unwrap().to_owned();
            (name, (expected.0.to_owned(), expected.1))
        })
        .collect()
}

/// The run's metadata and attachments (by file name, with their content).
fn metadata_and_attachments(squad: &Squad, run: &Value) -> (Value, BTreeMap<String, String>) {
    let metadata = squad.json(run["metadata_file"].as_str().unwrap());
    let attachments = run["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let body = squad.get(a["download_url"].as_str().unwrap()).unwrap();
            (a["filename"].as_str().unwrap().to_owned(), body)
        })
        .collect();
    (metadata, attachments)
}

#[test]
fn a_native_run_and_a_matrix_summary_read_back_from_squad() {
    if common::not_root() {
        return;
    }
    let Some(bin) = squad_bin() else {
        return;
    };
    let squad = Squad::start(&bin);
    let dir = tempfile::tempdir().unwrap();

    // A run's JSON report, its KTAP and its terminal output as the log.
    let report_file = dir.path().join("report.json");
    let ktap = dir.path().join("portrange.ktap");
    let log = dir.path().join("portrange.log");
    let mut run = vec![
        "run",
        "--format",
        "json",
        "--output",
        report_file.to_str().unwrap(),
    ];
    run.extend(SELECTION);
    std::fs::write(&log, text(&common::portrange(&run))).unwrap();
    let mut run_ktap = vec![
        "run",
        "--format",
        "ktap",
        "--output",
        ktap.to_str().unwrap(),
    ];
    run_ktap.extend(SELECTION);
    common::portrange(&run_ktap);
    let said = squad.submit(&[
        &report_file,
        Path::new("native-1"),
        Path::new("running"),
        &ktap,
        &log,
    ]);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    let (run, tests) = squad.test_run("native-1", "running");
    let expected = squad_view(&report);
    assert!(expected.len() > 10, "{said}");
    assert_eq!(tests, expected, "{said}");
    let (metadata, attachments) = metadata_and_attachments(&squad, &run);
    assert_eq!(metadata["kernel_release"], report["probes"]["kernel"]);
    assert_eq!(metadata["arch"], std::env::consts::ARCH);
    assert_eq!(metadata["build_config"], "x86_64_defconfig");
    assert_eq!(metadata["job_id"], "job-7");
    assert_eq!(metadata["profiles"], report["probes"]["profiles"]);
    assert_eq!(run["job_id"], "job-7");
    let files: BTreeMap<String, String> = [&ktap, &log]
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read_to_string(f).unwrap())
        })
        .collect();
    assert_eq!(attachments, files);
    let metrics: BTreeMap<String, f64> = squad
        .all(run["metrics"].as_str().unwrap())
        .into_iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["result"].as_f64().unwrap(),
            )
        })
        .collect();
    let phases = &report["phases"];
    let micros = |phase: &str| phases[phase].as_f64().unwrap() / 1e6;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(
        close(metrics["portrange/cases_seconds"], micros("cases_micros")),
        "{metrics:?}"
    );
    assert!(
        close(
            metrics["portrange/duration_seconds"],
            micros("cases_micros") + micros("probes_micros")
        ),
        "{metrics:?} {phases}"
    );

    // Fail, skip and error, which a native run here does not give: the
    // same report with stand-in outcomes in its first three cases.
    let mut stand_in = report.clone();
    for (result, (outcome, message)) in
        stand_in["results"].as_array_mut().unwrap().iter_mut().zip([
            ("fail", "stand-in: a check did not hold"),
            ("skip", "stand-in: not in this kernel"),
            ("error", "stand-in: the harness could not run it"),
        ])
    {
        result["outcome"] = outcome.into();
        result["message"] = message.into();
    }
    let stand_in_file = dir.path().join("stand-in-outcomes.json");
    std::fs::write(&stand_in_file, stand_in.to_string()).unwrap();
    squad.submit(&[
        &stand_in_file,
        Path::new("stand-in-outcomes-1"),
        Path::new("running"),
    ]);
    let (_, tests) = squad.test_run("stand-in-outcomes-1", "running");
    let statuses: Vec<&str> = tests.values().map(|(status, _)| status.as_str()).collect();
    for status in ["pass", "fail", "skip"] {
        assert!(statuses.contains(&status), "no {status}: {tests:?}");
    }
    assert_eq!(tests, squad_view(&stand_in));
    let error = stand_in["results"][2]["name"].as_str().unwrap();
    assert_eq!(
        tests[error],
        (
            "fail".into(),
            "error: stand-in: the harness could not run it".into()
        )
    );

    // The CI templates' form: a summary.json, one run per kernel column.
    let out = dir.path().join("matrix");
    let mut matrix = vec![
        "matrix",
        "--kernel",
        "running",
        "--out-dir",
        out.to_str().unwrap(),
    ];
    matrix.extend(SELECTION);
    common::portrange(&matrix);
    let summary_file = out.join("summary.json");
    squad.submit(&[&summary_file, Path::new("matrix-1")]);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    let kernels = summary["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), 1, "{summary:#}");
    let label = kernels[0]["label"].as_str().unwrap();
    let (run, tests) = squad.test_run("matrix-1", label);
    assert_eq!(tests, squad_view(&kernels[0]["report"]), "{label}");
    assert_eq!(run["job_id"], format!("job-7-{label}"));
    let (metadata, attachments) = metadata_and_attachments(&squad, &run);
    assert_eq!(
        metadata["kernel_release"],
        kernels[0]["report"]["probes"]["kernel"]
    );
    let ktap_name = format!("{label}.ktap");
    assert_eq!(
        attachments.get(&ktap_name),
        Some(&std::fs::read_to_string(out.join(&ktap_name)).unwrap()),
        "{:?}",
        attachments.keys()
    );
}
