//! The `portrange` binary end to end against the running kernel: its KTAP
//! is well formed, its JUnit parses, its exit codes follow kselftest.
//! Needs root (or user namespaces) to execute cases; without them the
//! binary reports a whole-run skip, which these tests accept and say so.

mod common;

use common::{command, portrange, validate_ktap};

#[test]
fn ktap_output_is_valid_and_exit_code_matches_it() {
    let output = portrange(&["run", "--format", "ktap"]);
    let text = String::from_utf8(output.stdout).unwrap();
    let results = validate_ktap(&text);
    let code = output.status.code().unwrap();
    let failed = results.iter().any(|l| l.starts_with("not ok"));
    let all_skipped = results.iter().all(|l| l.contains(" # SKIP "));
    let expected = if failed {
        1
    } else if all_skipped {
        4
    } else {
        0
    };
    assert_eq!(code, expected, "exit code for:\n{text}");
    if results.is_empty() {
        eprintln!("note: no case ran (no privileges?): {text}");
    } else {
        assert_eq!(results.len(), cases::catalogue().len());
    }
}

#[test]
fn junit_file_parses_and_counts_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    let output = portrange(&[
        "run",
        "--format",
        "junit",
        "--output",
        path.to_str().unwrap(),
        "tcp4/",
    ]);
    let summary = String::from_utf8(output.stdout).unwrap();
    if output.status.code() == Some(4) && !path.exists() {
        common::unprivileged(&format!("no case could run: {summary}"));
        return;
    }
    let xml = std::fs::read_to_string(&path).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let selected = cases::catalogue()
        .iter()
        .filter(|c| c.name.contains("tcp4/"))
        .count();
    assert_eq!(report.tests, selected);
    assert!(
        summary.contains("verdict: "),
        "terminal summary missing: {summary}"
    );
}

#[test]
fn list_prints_every_case_name_once() {
    let output = portrange(&["list"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = text.lines().collect();
    let expected: Vec<String> = cases::catalogue().into_iter().map(|c| c.name).collect();
    assert_eq!(names, expected);
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate case names");
}

#[test]
fn unknown_option_is_a_usage_error() {
    let output = portrange(&["run", "--no-such-option"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--no-such-option"), "{stderr}");
}

/// `--seed` and `--random-configs` reach the randomized case; the command
/// line wins over PORTRANGE_SEED, PORTRANGE_RANDOM_CONFIGS fills in.
#[test]
fn seed_and_configuration_count_reach_the_randomized_case() {
    let case = "udp4/model/random_configurations_agree_with_kernel";
    let note = |envs: &[(&str, &str)], args: &[&str]| {
        let output = command(&["run", "--format", "ktap", "--exact", case])
            .args(args)
            .envs(envs.iter().copied())
            .output()
            .expect("run portrange");
        let text = String::from_utf8(output.stdout).unwrap();
        if output.status.code() == Some(4) {
            common::unprivileged(&format!("the case could not run here\n{text}"));
            return None;
        }
        assert_eq!(output.status.code(), Some(0), "{text}");
        let prefix = format!("# {case}: ");
        let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
        Some(
            line.unwrap_or_else(|| panic!("no note in\n{text}"))
                .to_owned(),
        )
    };
    let Some(given) = note(
        &[("PORTRANGE_SEED", "9")],
        &["--seed", "0x11", "--random-configs", "3"],
    ) else {
        return;
    };
    assert!(given.starts_with("3 configurations agreed"), "{given}");
    assert!(given.ends_with("(--seed 17)"), "{given}");
    let from_env = note(
        &[("PORTRANGE_SEED", "9"), ("PORTRANGE_RANDOM_CONFIGS", "4")],
        &[],
    )
    .unwrap();
    assert!(
        from_env.starts_with("4 configurations agreed"),
        "{from_env}"
    );
    assert!(from_env.ends_with("(--seed 9)"), "{from_env}");
}

#[test]
fn bad_randomized_settings_are_usage_errors() {
    let output = command(&["run", "model/"])
        .env("PORTRANGE_RANDOM_CONFIGS", "lots")
        .output()
        .expect("run portrange");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("PORTRANGE_RANDOM_CONFIGS"), "{stderr}");
    let output = portrange(&["run", "--random-configs", "0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("check nothing"), "{stderr}");
}
