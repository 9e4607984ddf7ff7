//! What changed between two runs: per case (regressions, fixes, newly
//! skipped, newly run, added, removed), per property's kernel profile, and
//! the kernel release. The runs come from `--format json` reports or from a
//! column of a matrix's `summary.json`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use harness::outcome::{CaseResult, Outcome};
use harness::report::{self, RunReport};

use crate::matrix::Matrix;

/// One side of a comparison: a run and the name it goes by.
#[derive(Debug, Clone)]
pub struct Side {
    /// The file, with the matrix column when it came from one
    /// (`summary.json[debian-6.1]`).
    pub label: String,
    /// The run.
    pub report: RunReport,
}

/// Why a file could not be read as a run to compare.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is neither report nor summary.
    #[error(
        "{} is neither a JSON report of one run (`portrange run|vm|check --format json --output FILE`) nor a matrix's summary.json",
        path.display()
    )]
    NotAReport {
        /// The file.
        path: PathBuf,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A summary with several columns and no `--column`.
    #[error(
        "{} holds {} kernels ({}): name one with --column LABEL",
        path.display(), columns.len(), columns.join(", ")
    )]
    ColumnNeeded {
        /// The file.
        path: PathBuf,
        /// Its columns' labels.
        columns: Vec<String>,
    },
    /// `--column` names no column of the summary.
    #[error(
        "{} has no kernel {column:?}: its kernels are {}",
        path.display(), columns.join(", ")
    )]
    NoSuchColumn {
        /// The file.
        path: PathBuf,
        /// The label asked for.
        column: String,
        /// Its columns' labels.
        columns: Vec<String>,
    },
    /// `--column` given for a report of one run.
    #[error(
        "{} is the report of one run, which has no columns: drop --column for it",
        path.display()
    )]
    ColumnOfARun {
        /// The file.
        path: PathBuf,
    },
}

/// A file to compare: a report of one run or a matrix's summary.
#[derive(Debug, Clone)]
pub struct Input {
    path: PathBuf,
    kind: InputKind,
}

#[derive(Debug, Clone)]
enum InputKind {
    Run(Box<RunReport>),
    Summary(Matrix),
}

impl Input {
    /// Reads `path`: a `--format json` report, or a summary.json of
    /// `matrix` or `merge`.
    pub fn read(path: &Path) -> Result<Input, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let not_a_report = |source| LoadError::NotAReport {
            path: path.to_owned(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_report)?;
        let kind = if value.get("kernels").is_some() {
            InputKind::Summary(serde_json::from_value(value).map_err(not_a_report)?)
        } else {
            InputKind::Run(serde_json::from_value(value).map_err(not_a_report)?)
        };
        Ok(Input {
            path: path.to_owned(),
            kind,
        })
    }

    /// Whether it is a summary (which has columns).
    pub fn is_summary(&self) -> bool {
        matches!(self.kind, InputKind::Summary(_))
    }

    /// The run: the report itself, or the summary's column `column` (which
    /// may be left out when it has one).
    pub fn side(self, column: Option<&str>) -> Result<Side, LoadError> {
        let path = self.path;
        let matrix = match (self.kind, column) {
            (InputKind::Run(report), None) => {
                return Ok(Side {
                    label: path.display().to_string(),
                    report: *report,
                });
            }
            (InputKind::Run(_), Some(_)) => return Err(LoadError::ColumnOfARun { path }),
            (InputKind::Summary(matrix), _) => matrix,
        };
        let columns: Vec<String> = matrix.kernels.iter().map(|k| k.label.clone()).collect();
        let kernel = match column {
            Some(column) => matrix
                .kernels
                .into_iter()
                .find(|k| k.label == column)
                .ok_or_else(|| LoadError::NoSuchColumn {
                    path: path.clone(),
                    column: column.to_owned(),
                    columns,
                })?,
            None if matrix.kernels.len() == 1 => matrix.kernels.into_iter().next().expect("one"),
            None => return Err(LoadError::ColumnNeeded { path, columns }),
        };
        Ok(Side {
            label: format!("{}[{}]", path.display(), kernel.label),
            report: kernel.report,
        })
    }
}

/// Each column of `matrix` but `baseline` compared with the column
/// labelled `baseline`; `None` when no column has that label.
pub fn against_baseline(matrix: &Matrix, baseline: &str) -> Option<Vec<Comparison>> {
    let side = |kernel: &crate::matrix::KernelReport| Side {
        label: kernel.label.clone(),
        report: kernel.report.clone(),
    };
    let base = side(matrix.kernels.iter().find(|k| k.label == baseline)?);
    Some(
        matrix
            .kernels
            .iter()
            .filter(|k| k.label != baseline)
            .map(|k| Comparison::of(&base, &side(k)))
            .collect(),
    )
}

/// A case's outcome without its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Skipped.
    Skip,
    /// The harness could not run it.
    Error,
}

impl Status {
    /// The status of `outcome`.
    pub fn of(outcome: &Outcome) -> Status {
        match outcome {
            Outcome::Pass => Status::Pass,
            Outcome::Fail(_) => Status::Fail,
            Outcome::Skip(_) => Status::Skip,
            Outcome::Error(_) => Status::Error,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }

    fn failed(self) -> bool {
        matches!(self, Status::Fail | Status::Error)
    }
}

/// How a case changed between the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Passed or was skipped, now fails or errors.
    Regression,
    /// Failed or errored, now passes.
    Fix,
    /// Ran, now skipped.
    NewlySkipped,
    /// Was skipped, now passes.
    NewlyRun,
    /// Failed, now errors, or the other way round.
    StillFailing,
    /// Only in the new run.
    Added,
    /// Only in the base run.
    Removed,
}

impl Change {
    /// Every kind, in the order reports list them.
    const ALL: [Change; 7] = [
        Change::Regression,
        Change::Fix,
        Change::NewlySkipped,
        Change::NewlyRun,
        Change::StillFailing,
        Change::Added,
        Change::Removed,
    ];

    /// The change from `before` to `after`; `None` when there is none.
    fn between(before: Option<Status>, after: Option<Status>) -> Option<Change> {
        let (before, after) = match (before, after) {
            (None, None) => return None,
            (None, Some(_)) => return Some(Change::Added),
            (Some(_), None) => return Some(Change::Removed),
            (Some(before), Some(after)) => (before, after),
        };
        if before == after {
            return None;
        }
        Some(match (before, after) {
            (Status::Pass | Status::Skip, after) if after.failed() => Change::Regression,
            (before, Status::Pass) if before.failed() => Change::Fix,
            (Status::Skip, _) => Change::NewlyRun,
            (_, Status::Skip) => Change::NewlySkipped,
            _ => Change::StillFailing,
        })
    }

    fn heading(self) -> &'static str {
        match self {
            Change::Regression => "regressions",
            Change::Fix => "fixes",
            Change::NewlySkipped => "newly skipped",
            Change::NewlyRun => "newly run",
            Change::StillFailing => "still failing, differently",
            Change::Added => "only in the new run",
            Change::Removed => "only in the base run",
        }
    }
}

/// One case that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseChange {
    /// The case's name.
    pub name: String,
    /// How it changed.
    pub change: Change,
    /// Its status in the base run, if it ran there.
    pub before: Option<Status>,
    /// Its status in the new run, if it ran there.
    pub after: Option<Status>,
    /// The property it checks where the report names one
    /// (`connect() parity`), else its group (`connect/`).
    pub property: String,
    /// The new run's message (why it failed or was skipped), else the base
    /// run's.
    pub message: Option<String>,
}

/// A property whose kernel profile differs between the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChange {
    /// The property (`MPTCP`).
    pub property: String,
    /// The profiles it matched in the base run (none: not seen).
    pub before: Vec<String>,
    /// The profiles it matched in the new run.
    pub after: Vec<String>,
}

/// Everything that changed from one run to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The base run's name.
    pub base: String,
    /// The new run's name.
    pub new: String,
    /// The base run's kernel release.
    pub base_kernel: String,
    /// The new run's kernel release.
    pub new_kernel: String,
    /// Properties whose profiles changed.
    pub profiles: Vec<ProfileChange>,
    /// The cases that changed, base run's order then the added ones.
    pub cases: Vec<CaseChange>,
    /// How many cases ran in both with the same status.
    pub unchanged: usize,
}

impl Comparison {
    /// Compares `new` against `base`.
    pub fn of(base: &Side, new: &Side) -> Comparison {
        let index = |report: &RunReport| -> BTreeMap<String, CaseResult> {
            report
                .results
                .iter()
                .map(|r| (r.name.clone(), r.clone()))
                .collect()
        };
        let (before, after) = (index(&base.report), index(&new.report));
        let names = base
            .report
            .results
            .iter()
            .chain(
                new.report
                    .results
                    .iter()
                    .filter(|r| !before.contains_key(&r.name)),
            )
            .map(|r| r.name.as_str());
        let mut cases = Vec::new();
        let mut unchanged = 0;
        for name in names {
            let (was, is) = (before.get(name), after.get(name));
            let status = |r: Option<&CaseResult>| r.map(|r| Status::of(&r.outcome));
            let Some(change) = Change::between(status(was), status(is)) else {
                unchanged += 1;
                continue;
            };
            let shown = is.or(was).expect("a change has a side");
            cases.push(CaseChange {
                name: name.to_owned(),
                change,
                before: status(was),
                after: status(is),
                property: property_of(shown),
                message: message(&shown.outcome),
            });
        }
        Comparison {
            base: base.label.clone(),
            new: new.label.clone(),
            base_kernel: base.report.probes.kernel.clone(),
            new_kernel: new.report.probes.kernel.clone(),
            profiles: profile_changes(&base.report, &new.report),
            cases,
            unchanged,
        }
    }

    /// The cases that changed in the way `change` says.
    pub fn of_kind(&self, change: Change) -> impl Iterator<Item = &CaseChange> {
        self.cases.iter().filter(move |c| c.change == change)
    }

    /// Whether any case regressed.
    pub fn regressed(&self) -> bool {
        self.of_kind(Change::Regression).next().is_some()
    }

    /// The comparison for people: the kernels and profiles, regressions by
    /// property, then each other kind of change, then the counts.
    pub fn text(&self) -> String {
        let mut out = format!("base: {} (kernel {})\n", self.base, self.base_kernel);
        let _ = writeln!(out, "new:  {} (kernel {})", self.new, self.new_kernel);
        if self.base_kernel != self.new_kernel {
            let _ = writeln!(
                out,
                "kernel release: {} -> {}",
                self.base_kernel, self.new_kernel
            );
        }
        for profile in &self.profiles {
            let _ = writeln!(
                out,
                "kernel profile of {}: {} -> {}",
                profile.property,
                names(&profile.before),
                names(&profile.after)
            );
        }
        let regressions = self.regressions_by_property();
        if !regressions.is_empty() {
            let _ = writeln!(out, "\nregressions, by property:");
            for (property, cases) in &regressions {
                let _ = writeln!(out, "  {property}:");
                for case in cases {
                    let _ = writeln!(out, "    {}", line(case));
                }
            }
        }
        for change in Change::ALL.into_iter().skip(1) {
            let cases: Vec<&CaseChange> = self.of_kind(change).collect();
            if cases.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{}:", change.heading());
            for case in cases {
                let _ = writeln!(out, "  {}", line(case));
            }
        }
        let counts: Vec<String> = Change::ALL
            .into_iter()
            .map(|change| (self.of_kind(change).count(), change.heading()))
            .filter(|(count, _)| *count > 0)
            .map(|(count, heading)| format!("{count} {heading}"))
            .chain([format!("{} unchanged", self.unchanged)])
            .collect();
        let _ = writeln!(out, "\ncompared: {}", counts.join(", "));
        let _ = writeln!(
            out,
            "verdict: {}",
            if self.regressed() {
                "REGRESSED"
            } else {
                "no regression"
            }
        );
        out
    }

    /// The regressions grouped by property, properties in the order their
    /// first regression comes.
    pub fn regressions_by_property(&self) -> Vec<(&str, Vec<&CaseChange>)> {
        let mut groups: Vec<(&str, Vec<&CaseChange>)> = Vec::new();
        for case in self.of_kind(Change::Regression) {
            match groups.iter_mut().find(|(p, _)| *p == case.property) {
                Some((_, cases)) => cases.push(case),
                None => groups.push((&case.property, vec![case])),
            }
        }
        groups
    }

    /// The comparison as pretty-printed JSON, ending in a newline.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("comparisons serialize");
        text.push('\n');
        text
    }

    /// The comparison as JUnit XML: a suite per kind of change, a test case
    /// per changed case (a regression is a failure, the rest pass), and a
    /// suite `profiles` with a case per property whose profile changed.
    pub fn junit(&self) -> String {
        let mut suites = Vec::new();
        for change in Change::ALL {
            let mut suite = TestSuite::new(format!("compare/{}", change.heading()));
            suite.add_property(("base", self.base.as_str()));
            suite.add_property(("new", self.new.as_str()));
            for case in self.of_kind(change) {
                let status = if change == Change::Regression {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(line(case));
                    status
                } else {
                    TestCaseStatus::success()
                };
                let mut test = TestCase::new(case.name.as_str(), status);
                test.set_classname(format!("portrange.compare.{}", case.property));
                test.set_system_out(line(case));
                suite.add_test_case(test);
            }
            suites.push(suite);
        }
        let mut profiles = TestSuite::new("compare/kernel profiles");
        for profile in &self.profiles {
            let mut test = TestCase::new(profile.property.as_str(), TestCaseStatus::success());
            test.set_system_out(format!(
                "{} -> {}",
                names(&profile.before),
                names(&profile.after)
            ));
            profiles.add_test_case(test);
        }
        suites.push(profiles);
        report::junit_document(suites)
    }
}

/// The property a result checks, as the report names it, else the group
/// of its name (`tcp4/connect/x` -> `connect/`).
fn property_of(result: &CaseResult) -> String {
    if let Some(property) = &result.property {
        return property.clone();
    }
    let mut parts = result.name.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(group), Some(_)) => format!("{group}/"),
        _ => result.name.clone(),
    }
}

fn message(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Pass => None,
        Outcome::Fail(m) | Outcome::Skip(m) | Outcome::Error(m) => Some(m.clone()),
    }
}

fn line(case: &CaseChange) -> String {
    let status = |s: Option<Status>| s.map_or("absent", Status::name);
    let mut line = format!(
        "{}: {} -> {}",
        case.name,
        status(case.before),
        status(case.after)
    );
    if let Some(message) = &case.message {
        let _ = write!(
            line,
            " ({})",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    line
}

fn names(profiles: &[String]) -> String {
    if profiles.is_empty() {
        "none".into()
    } else {
        profiles.join("+")
    }
}

/// The properties whose set of matched profiles differs.
fn profile_changes(base: &RunReport, new: &RunReport) -> Vec<ProfileChange> {
    let owned = |report: &RunReport| -> Vec<(String, Vec<String>)> {
        report
            .profiles_by_property()
            .into_iter()
            .map(|(p, set)| (p.to_owned(), set.into_iter().map(str::to_owned).collect()))
            .collect()
    };
    let (before, after) = (owned(base), owned(new));
    let mut properties: Vec<&String> = before.iter().map(|(p, _)| p).collect();
    for (property, _) in &after {
        if !properties.contains(&property) {
            properties.push(property);
        }
    }
    let find = |side: &[(String, Vec<String>)], property: &str| -> Vec<String> {
        side.iter()
            .find(|(p, _)| p == property)
            .map(|(_, profiles)| profiles.clone())
            .unwrap_or_default()
    };
    properties
        .into_iter()
        .filter_map(|property| {
            let (was, is) = (find(&before, property), find(&after, property));
            (was != is).then(|| ProfileChange {
                property: property.clone(),
                before: was,
                after: is,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::fixture::fake_report;

    fn side(label: &str, report: RunReport) -> Side {
        Side {
            label: label.into(),
            report,
        }
    }

    #[test]
    fn every_transition_has_its_kind() {
        use Status::*;
        let table = [
            (Some(Pass), Some(Fail), Some(Change::Regression)),
            (Some(Pass), Some(Error), Some(Change::Regression)),
            (Some(Skip), Some(Fail), Some(Change::Regression)),
            (Some(Fail), Some(Pass), Some(Change::Fix)),
            (Some(Error), Some(Pass), Some(Change::Fix)),
            (Some(Pass), Some(Skip), Some(Change::NewlySkipped)),
            (Some(Fail), Some(Skip), Some(Change::NewlySkipped)),
            (Some(Skip), Some(Pass), Some(Change::NewlyRun)),
            (Some(Fail), Some(Error), Some(Change::StillFailing)),
            (None, Some(Fail), Some(Change::Added)),
            (Some(Pass), None, Some(Change::Removed)),
            (Some(Pass), Some(Pass), None),
            (Some(Skip), Some(Skip), None),
        ];
        for (before, after, expected) in table {
            assert_eq!(
                Change::between(before, after),
                expected,
                "{before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn a_report_against_itself_changes_nothing() {
        let report = fake_report();
        let comparison = Comparison::of(&side("a", report.clone()), &side("b", report));
        assert!(comparison.cases.is_empty() && comparison.profiles.is_empty());
        assert_eq!(comparison.unchanged, 4);
        assert!(!comparison.regressed());
    }

    #[test]
    fn regressions_group_by_property_else_by_group() {
        let base = fake_report();
        let mut new = base.clone();
        new.results[0].outcome = Outcome::Fail("round trip gave 0".into());
        new.results[0].property = Some("connect() parity".into());
        new.results[2].outcome = Outcome::Error("timed out".into());
        new.results.remove(1);
        let comparison = Comparison::of(&side("a", base), &side("b", new));
        let groups: Vec<(&str, Vec<&str>)> = comparison
            .regressions_by_property()
            .into_iter()
            .map(|(p, cases)| (p, cases.iter().map(|c| c.name.as_str()).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                ("connect() parity", vec!["tcp4/sockopt/round_trip"]),
                ("sockopt/", vec!["sctp4/sockopt/round_trip"]),
            ]
        );
        assert_eq!(
            comparison
                .of_kind(Change::Removed)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["tcp4/bind_zero/exhausts_with_eaddrinuse"]
        );
        assert!(comparison.regressed());
        let text = comparison.text();
        assert!(
            text.contains("regressions, by property:\n  connect() parity:\n    tcp4/sockopt/round_trip: pass -> fail (round trip gave 0)\n"),
            "{text}"
        );
    }
}
