//! Several kernels at once: one report per kernel, a properties x kernels
//! table, and the merge of sharded runs.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use harness::outcome::{CaseResult, Outcome, Verdict};
use harness::report::{self, RunReport};

/// One kernel's column of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    /// The kernel as the user named it (`running`, `debian-6.1`, a path).
    pub label: String,
    /// What ran on it.
    pub report: RunReport,
}

/// Reports for a list of kernels; also the machine-readable summary
/// (`summary.json`) that `merge` reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix {
    /// One entry per kernel, in the order given.
    pub kernels: Vec<KernelReport>,
}

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Two shards both ran the same case on the same kernel.
    #[error(
        "case {case} on {kernel} appears in two shards: were the same shard's files given twice?"
    )]
    Duplicate {
        /// The kernel label.
        kernel: String,
        /// The case.
        case: String,
    },
}

impl Matrix {
    /// The verdict over every kernel: a failure anywhere fails the matrix;
    /// it is a skip only if every kernel's run was.
    pub fn verdict(&self) -> Verdict {
        let verdicts: Vec<Verdict> = self.kernels.iter().map(|k| k.report.verdict()).collect();
        if verdicts.contains(&Verdict::Fail) {
            Verdict::Fail
        } else if verdicts.iter().all(|v| *v == Verdict::Skip) {
            Verdict::Skip
        } else {
            Verdict::Pass
        }
    }

    /// Joins shards: per kernel label, the union of their results, put back
    /// in `order` (the catalogue's case names; names not in it go last).
    pub fn merge(parts: Vec<Matrix>, order: &[String]) -> Result<Matrix, MergeError> {
        let rank: BTreeMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut merged: Vec<KernelReport> = Vec::new();
        for part in parts {
            for kernel in part.kernels {
                let Some(into) = merged.iter_mut().find(|k| k.label == kernel.label) else {
                    merged.push(kernel);
                    continue;
                };
                for result in kernel.report.results {
                    if into.report.results.iter().any(|r| r.name == result.name) {
                        return Err(MergeError::Duplicate {
                            kernel: into.label.clone(),
                            case: result.name,
                        });
                    }
                    into.report.results.push(result);
                }
                for note in kernel.report.notes {
                    if !into.report.notes.contains(&note) {
                        into.report.notes.push(note);
                    }
                }
            }
        }
        for kernel in &mut merged {
            kernel
                .report
                .results
                .sort_by_key(|r| rank.get(r.name.as_str()).copied().unwrap_or(usize::MAX));
        }
        Ok(Matrix { kernels: merged })
    }

    /// Properties as rows, kernels as columns; a cell sums up the property
    /// over its variants (`FAIL` if any failed or errored, `ok` if all
    /// passed, `ok*` if some passed and the others were skipped, `skip` if
    /// all were skipped), then the profile and verdict of each kernel.
    pub fn table(&self) -> String {
        let mut properties: Vec<&str> = Vec::new();
        for kernel in &self.kernels {
            for result in &kernel.report.results {
                let property = property_of(result);
                if !properties.contains(&property) {
                    properties.push(property);
                }
            }
        }
        let width = properties
            .iter()
            .map(|p| p.len())
            .max()
            .unwrap_or(0)
            .max(16);
        let columns: Vec<usize> = self.kernels.iter().map(|k| k.label.len().max(10)).collect();
        let mut out = format!("{:width$}", "property");
        for (kernel, column) in self.kernels.iter().zip(&columns) {
            let _ = write!(out, "  {:>column$}", kernel.label);
        }
        out.push('\n');
        for property in &properties {
            let _ = write!(out, "{property:width$}");
            for (kernel, column) in self.kernels.iter().zip(&columns) {
                let cell = cell(
                    kernel
                        .report
                        .results
                        .iter()
                        .filter(|r| property_of(r) == *property),
                );
                let _ = write!(out, "  {cell:>column$}");
            }
            out.push('\n');
        }
        let summary_rows = [
            ("kernel profile", SummaryRow::Profile),
            ("verdict", SummaryRow::Verdict),
        ];
        for (label, row) in summary_rows {
            let _ = write!(out, "{label:width$}");
            for (kernel, column) in self.kernels.iter().zip(&columns) {
                let _ = write!(out, "  {:>column$}", row.value(&kernel.report));
            }
            out.push('\n');
        }
        out
    }

    /// One JUnit document with a suite per kernel and variant
    /// (`debian-6.1/tcp4`).
    pub fn junit(&self) -> String {
        report::junit_document(
            self.kernels
                .iter()
                .flat_map(|k| report::junit_suites(&k.report, &format!("{}/", k.label)))
                .collect(),
        )
    }
}

/// The rows under the properties in [`Matrix::table`].
#[derive(Clone, Copy)]
enum SummaryRow {
    Profile,
    Verdict,
}

impl SummaryRow {
    fn value(self, report: &RunReport) -> String {
        match self {
            SummaryRow::Profile => {
                let names: Vec<&str> = report.profiles().keys().copied().collect();
                if names.is_empty() {
                    "-".into()
                } else {
                    names.join("+")
                }
            }
            SummaryRow::Verdict => report.verdict().to_string(),
        }
    }
}

fn property_of(result: &CaseResult) -> &str {
    result
        .name
        .split_once('/')
        .map_or(result.name.as_str(), |(_, p)| p)
}

fn cell<'a>(results: impl Iterator<Item = &'a CaseResult>) -> &'static str {
    let (mut pass, mut skip) = (false, false);
    for result in results {
        match result.outcome {
            Outcome::Fail(_) | Outcome::Error(_) => return "FAIL",
            Outcome::Pass => pass = true,
            Outcome::Skip(_) => skip = true,
        }
    }
    match (pass, skip) {
        (false, false) => "-",
        (true, false) => "ok",
        (true, true) => "ok*",
        (false, true) => "skip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::report::fixture::fake_report;

    fn two_kernels() -> Matrix {
        let mut passing = fake_report();
        passing
            .results
            .retain(|r| matches!(r.outcome, Outcome::Pass | Outcome::Skip(_)));
        Matrix {
            kernels: vec![
                KernelReport {
                    label: "running".into(),
                    report: fake_report(),
                },
                KernelReport {
                    label: "debian-6.1".into(),
                    report: passing,
                },
            ],
        }
    }

    #[test]
    fn table_is_pinned() {
        let expected = "\
property                               running  debian-6.1
sockopt/round_trip                         ok*         ok*
bind_zero/exhausts_with_eaddrinuse        FAIL           -
connect/autobind_in_range                 FAIL           -
kernel profile                        upstream    upstream
verdict                                   FAIL        PASS
";
        assert_eq!(two_kernels().table(), expected);
        assert_eq!(two_kernels().verdict(), Verdict::Fail);
    }

    #[test]
    fn merging_shards_gives_back_the_whole_run_in_catalogue_order() {
        let whole = two_kernels();
        let order: Vec<String> = whole.kernels[0]
            .report
            .results
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let mut shards = vec![whole.clone(), whole.clone()];
        for (index, shard) in shards.iter_mut().enumerate() {
            for kernel in &mut shard.kernels {
                let mut k = 0;
                kernel.report.results.retain(|_| {
                    k += 1;
                    (k - 1) % 2 == index
                });
            }
        }
        shards.reverse();
        let merged = Matrix::merge(shards, &order).unwrap();
        assert_eq!(merged, whole);
        let err = Matrix::merge(vec![whole.clone(), whole], &order).unwrap_err();
        assert!(err.to_string().contains("appears in two shards"), "{err}");
    }

    #[test]
    fn junit_names_suites_by_kernel_and_variant() {
        let xml = two_kernels().junit();
        assert!(xml.contains(r#"<testsuite name="running/tcp4""#), "{xml}");
        assert!(
            xml.contains(r#"<testsuite name="debian-6.1/sctp4""#),
            "{xml}"
        );
    }
}
