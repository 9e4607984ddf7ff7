//! JUnit XML through quick-junit.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunReport;
use crate::outcome::Outcome;

/// The report as JUnit XML: one suite per variant (the part of the name
/// before the first `/`), one test case per case; the report's notes are
/// each suite's `note` properties.
pub fn junit(report: &RunReport) -> String {
    document(suites(report, ""))
}

/// Suites and test cases in a JUnit document named `portrange`.
pub fn document(suites: Vec<TestSuite>) -> String {
    let mut junit = Report::new("portrange");
    junit.add_test_suites(suites);
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize JUnit report: {e} -->\n"))
}

/// One suite per variant of `report`, named `<prefix><variant>`.
pub fn suites(report: &RunReport, prefix: &str) -> Vec<TestSuite> {
    let mut suites: Vec<TestSuite> = Vec::new();
    for result in &report.results {
        let (variant, property) = result.name.split_once('/').unwrap_or(("", &result.name));
        let suite_name = format!("{prefix}{variant}");
        let index = match suites.iter().position(|s| s.name.as_str() == suite_name) {
            Some(index) => index,
            None => {
                let mut suite = TestSuite::new(suite_name);
                suite.add_property(("kernel", report.probes.kernel.as_str()));
                suite.add_property(("target", report.target.as_str()));
                // The run's notes (isolation, namespaces, VM phases), so a
                // CI log of JUnit alone shows how the cases were run.
                for note in &report.notes {
                    suite.add_property(("note", note.as_str()));
                }
                suites.push(suite);
                suites.len() - 1
            }
        };
        let status = match &result.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Skip(reason) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
            Outcome::Fail(message) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(message.as_str());
                status
            }
            Outcome::Error(message) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(format!("harness error: {message}"));
                status
            }
        };
        let mut case = TestCase::new(property, status);
        case.set_classname(format!("portrange.{prefix}{variant}"))
            .set_time(Duration::from_micros(result.micros));
        if let Some(profile) = &result.profile {
            case.add_property(("kernel-profile", profile.as_str()));
        }
        if let Some(note) = &result.note {
            case.set_system_out(note.as_str());
        }
        suites[index].add_test_case(case);
    }
    suites
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::fake_report;

    #[test]
    fn junit_groups_by_variant_and_keeps_every_outcome() {
        let xml = junit(&fake_report());
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(
            xml.contains(
                r#"<testsuites name="portrange" tests="4" skipped="1" failures="1" errors="1">"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"<testsuite name="tcp4" tests="3""#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="sockopt/round_trip" classname="portrange.sctp4""#),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"SCTP over IPv4 is not available"),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"harness error: timed out after 20 s\""),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="kernel" value="6.18.0-test"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="note" value="vm: 3.2 s from QEMU start to exit"/>"#),
            "{xml}"
        );
    }
}
