//! The `portrange` binary end to end against the running kernel: its KTAP
//! is well formed, its JUnit parses, its exit codes follow kselftest.
//! Needs root (or user namespaces) to execute cases; without them the
//! binary reports a whole-run skip, which these tests accept and say so.

mod common;

use common::{command, not_root, portrange, validate_ktap, verdicts};

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
fn a_listing_whose_reader_has_gone_ends_without_an_error() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = command(&["list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
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

/// KTAP on stdout is streamed, yet once the run ends it is byte for byte
/// the report `--output` writes whole (deterministic cases, several at
/// once, so they end out of order).
#[test]
fn streamed_ktap_equals_the_whole_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.ktap");
    let selection = [
        "--threads",
        "2",
        "sockopt/",
        "clamp/one_port_range",
        "bind_zero/eight_port_range",
    ];
    let args = |extra: &[&str]| -> Vec<String> {
        ["run", "--format", "ktap"]
            .iter()
            .chain(&selection)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let streamed = command(&[]).args(args(&[])).output().unwrap();
    let whole = command(&[])
        .args(args(&["--output", file.to_str().unwrap()]))
        .output()
        .unwrap();
    assert_eq!(streamed.status.code(), whole.status.code());
    let streamed = String::from_utf8(streamed.stdout).unwrap();
    let whole = std::fs::read_to_string(&file).unwrap();
    assert!(validate_ktap(&whole).len() > 20, "{whole}");
    assert_eq!(streamed, whole);
}

/// Run bare, as kselftest's runner does, the binary writes the KTAP head
/// and plan before the cases run and each result as it comes: killed after
/// its first result, it leaves a valid head, the plan of the whole
/// catalogue and fewer results than planned (the whole report at the end
/// would leave all or nothing).
#[test]
fn kselftest_mode_streams_ktap_and_a_killed_run_keeps_its_head() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = command(&[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ktap = String::new();
    while !ktap.contains("\nok 1 ") && !ktap.contains("\nnot ok 1 ") {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        ktap.push_str(&line);
    }
    child.kill().unwrap();
    stdout.read_to_string(&mut ktap).unwrap();
    child.wait().unwrap();
    if ktap.contains("# SKIP needs root or user namespaces") {
        eprintln!("skipped: no case could run here: {ktap}");
        return;
    }
    let (planned, results) = common::validate_ktap_head(&ktap);
    assert_eq!(planned, cases::catalogue().len());
    assert!(
        !results.is_empty() && results.len() < planned,
        "{} of {planned} results after a kill right after the first",
        results.len()
    );
    let Some(kunit) = common::kunit_py() else {
        return;
    };
    let parsed = common::kunit_parse(&kunit, &ktap);
    let crashed = planned - results.len();
    assert!(
        parsed.contains(&format!("Ran {planned} tests:"))
            && parsed.contains(&format!("crashed: {crashed}")),
        "kunit.py parse:\n{parsed}"
    );
}

/// Every case gets the same verdict in a namespace made for it on its
/// path, one made ahead for it, and a reused one; each run's notes say
/// which it used and how it went.
#[test]
fn fresh_ahead_and_reused_namespaces_give_the_same_verdicts() {
    if not_root() {
        return;
    }
    let run = |mode| verdicts(&["run", "--format", "json", "--isolation", mode]);
    let (fresh, fresh_notes) = run("fresh");
    let (ahead, ahead_notes) = run("ahead");
    let (reuse, reuse_notes) = run("reuse");
    assert_eq!(fresh.len(), cases::catalogue().len());
    assert_eq!(fresh, ahead, "fresh against ahead");
    assert_eq!(fresh, reuse, "fresh against reuse");
    let has = |notes: &[String], text: &str| notes.iter().any(|n| n.contains(text));
    assert!(has(&fresh_notes, "namespaces: fresh ("), "{fresh_notes:?}");
    assert!(has(&ahead_notes, "namespaces: ahead ("), "{ahead_notes:?}");
    assert!(
        has(&ahead_notes, "case(s) in a namespace made ahead"),
        "{ahead_notes:?}"
    );
    assert!(has(&reuse_notes, "namespaces: reuse ("), "{reuse_notes:?}");
    assert!(
        has(&reuse_notes, "case(s) in a reused namespace"),
        "{reuse_notes:?}"
    );
}

/// A case's child process makes its own namespace: none can be made ahead
/// for it or reused, and asking for either is a usage error.
#[test]
fn ahead_or_reuse_with_process_isolation_is_a_usage_error() {
    for mode in ["ahead", "reuse"] {
        let output = portrange(&["run", "--isolation", mode, "--isolate", "process"]);
        assert_eq!(output.status.code(), Some(2), "{mode}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--isolation {mode} needs --isolate thread")),
            "{stderr}"
        );
    }
}
