//! bench/run's arithmetic lives in bench/per_case.py (the per-case cost,
//! the targets, the breakdown of a missed one, the model cases' share);
//! its Python unit tests run here so `cargo test` covers them, and
//! bench/run itself must at least parse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The benchmark scripts' directory.
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench")
}

/// Runs `program args` in bench/, or says why it could not start.
fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .current_dir(bench_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(|e| format!("{program} did not start: {e}"))
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} exited with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn per_case_arithmetic_passes_its_unit_tests() {
    match run("python3", &["-m", "unittest", "test_per_case"]) {
        Ok(output) => assert_success("python3 -m unittest test_per_case (in bench/)", &output),
        Err(reason) => require::skip_or_fail(require::Requirement::CiEngines, &reason),
    }
}

#[test]
fn bench_run_parses() {
    match run("bash", &["-n", "run"]) {
        Ok(output) => assert_success("bash -n bench/run", &output),
        Err(reason) => panic!("{reason}"),
    }
}
