//! Text for people: a libtest-style line per case as it ends, then the
//! failures, a property x variant table and the verdict.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{RunReport, one_line};
use crate::outcome::{CaseResult, Outcome};

/// The line printed when a case ends (`test tcp4/x ... ok`).
pub fn progress_line(result: &CaseResult) -> String {
    let status = match &result.outcome {
        Outcome::Pass => "ok".to_owned(),
        Outcome::Fail(_) => "FAILED".to_owned(),
        Outcome::Skip(reason) => format!("skipped, {}", one_line(reason)),
        Outcome::Error(_) => "ERROR".to_owned(),
    };
    match &result.note {
        Some(note) => format!("test {} ... {status} ({note})", result.name),
        None => format!("test {} ... {status}", result.name),
    }
}

/// Failures with their messages, the table, probe notes and the verdict.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let problems: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_) | Outcome::Error(_)))
        .collect();
    if !problems.is_empty() {
        out.push_str("\nfailures:\n");
        for result in problems {
            let (kind, message) = match &result.outcome {
                Outcome::Fail(m) => ("failed", m),
                Outcome::Error(m) => ("harness error", m),
                Outcome::Pass | Outcome::Skip(_) => continue,
            };
            let _ = writeln!(out, "    {} ({kind}): {message}", result.name);
        }
    }
    out.push('\n');
    out.push_str(&table(report));
    let notes = report.probes.notes();
    if !notes.is_empty() {
        out.push_str("\nskipped because the kernel lacks them:\n");
        for note in notes {
            let _ = writeln!(out, "    {note}");
        }
    }
    if !report.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in &report.notes {
            let _ = writeln!(out, "    {note}");
        }
    }
    let _ = writeln!(out, "\nkernel profile: {}", report.profiles_line());
    let _ = write!(
        out,
        "verdict: {} ({}) on {}, kernel {}",
        report.verdict(),
        report.totals(),
        report.target,
        report.probes.kernel
    );
    match report.mixed() {
        Some(mixed) => {
            let _ = writeln!(out, "; {mixed}");
        }
        None => out.push('\n'),
    }
    out
}

/// Properties as rows, variants as columns, one short status per cell.
fn table(report: &RunReport) -> String {
    let split = |r: &'_ CaseResult| -> (String, String) {
        match r.name.split_once('/') {
            Some((variant, property)) => (variant.to_owned(), property.to_owned()),
            None => (String::new(), r.name.clone()),
        }
    };
    let mut variants: Vec<String> = Vec::new();
    let mut properties: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for result in &report.results {
        let (variant, property) = split(result);
        if !variants.contains(&variant) {
            variants.push(variant);
        }
        if seen.insert(property.clone()) {
            properties.push(property);
        }
    }
    let width = properties.iter().map(String::len).max().unwrap_or(0).max(8);
    let mut out = format!("{:width$}", "property");
    for variant in &variants {
        let _ = write!(out, " {variant:>6}");
    }
    out.push('\n');
    for property in &properties {
        let _ = write!(out, "{property:width$}");
        for variant in &variants {
            let cell = report
                .results
                .iter()
                .find(|r| split(r) == (variant.clone(), property.clone()))
                .map_or("-", |r| match r.outcome {
                    Outcome::Pass => "ok",
                    Outcome::Fail(_) => "FAIL",
                    Outcome::Skip(_) => "skip",
                    Outcome::Error(_) => "ERROR",
                });
            let _ = write!(out, " {cell:>6}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::fake_report;

    #[test]
    fn summary_is_pinned() {
        let expected = "
failures:
    tcp4/bind_zero/exhausts_with_eaddrinuse (failed): 9th bind(): expected EADDRINUSE,
but it succeeded
    tcp4/connect/autobind_in_range (harness error): timed out after 20 s

property                             tcp4  sctp4
sockopt/round_trip                     ok   skip
bind_zero/exhausts_with_eaddrinuse   FAIL      -
connect/autobind_in_range           ERROR      -

skipped because the kernel lacks them:
    sctp4: SCTP over IPv4 is not available in this kernel (socket: EPROTONOSUPPORT (Protocol not supported))

notes:
    vm: 3.2 s from QEMU start to exit

kernel profile: upstream (matched 1 times)
verdict: FAIL (1 passed, 1 failed, 1 skipped, 1 errors) on running kernel, kernel 6.18.0-test
";
        assert_eq!(summary(&fake_report()), expected);
    }

    /// MPTCP probed as stable-6.1 while connect() parity matched upstream:
    /// the verdict line says which property matched which profile.
    #[test]
    fn a_mixed_run_says_so_in_the_verdict_line() {
        let mut report = fake_report();
        report.results[0].property = Some("connect() parity".into());
        report
            .probes
            .profiles
            .insert("mptcp4".into(), "stable-6.1".into());
        let text = summary(&report);
        let mixed = "mixed: MPTCP as stable-6.1, connect() parity as upstream";
        assert!(
            text.ends_with(&format!("kernel 6.18.0-test; {mixed}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("kernel profile: {mixed}\n")),
            "{text}"
        );
        report
            .probes
            .profiles
            .insert("mptcp4".into(), "upstream".into());
        assert!(summary(&report).ends_with("kernel 6.18.0-test\n"));
    }

    #[test]
    fn progress_lines_read_like_libtest() {
        let report = fake_report();
        let lines: Vec<String> = report.results.iter().map(progress_line).collect();
        assert_eq!(
            lines[0],
            "test tcp4/sockopt/round_trip ... ok (500 configurations)"
        );
        assert_eq!(
            lines[1],
            "test tcp4/bind_zero/exhausts_with_eaddrinuse ... FAILED"
        );
        assert!(lines[2].starts_with("test sctp4/sockopt/round_trip ... skipped, SCTP over IPv4"));
        assert_eq!(lines[3], "test tcp4/connect/autobind_in_range ... ERROR");
    }
}
