//! Several kernels at once: one report per kernel, a properties x kernels
//! table, and the merge of sharded runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use harness::outcome::{CaseResult, Outcome, Verdict};
use harness::profile::Profile;
use harness::report::{self, RunReport};

use crate::compare::Comparison;

/// One kernel's column of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    /// The kernel as the user named it (`running`, `debian-6.1`, a path).
    pub label: String,
    /// The shard of the selected cases this column ran (1/1 unsharded).
    pub shard: Shard,
    /// The cases this shard was to run, in catalogue order: what `merge`
    /// checks the results against.
    pub planned: Vec<String>,
    /// What the column was asked to run and what it ran on: what `merge`
    /// checks the shards of one label against each other.
    pub asked: Asked,
    /// What ran on it.
    pub report: RunReport,
}

/// What a column was asked to run and what it ran on. The shards of one
/// run agree on all of it; `merge` refuses shards that do not, since their
/// planned cases would not add up to one run of one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// The name filters with `--exact` and `--include-harness-faults`, as
    /// given (`sockopt/`; empty: every case).
    pub selection: String,
    /// The catalogue the selection was applied to ([`catalogue_version`]).
    pub catalogue: String,
    /// `--seed` (or PORTRANGE_SEED); `None`: each randomized case drew its
    /// own.
    pub seed: Option<u64>,
    /// The profile the kernel had to match (`--expect-profile` or the
    /// column's `:PROFILE`); `None`: expected from its release.
    pub expect_profile: Option<Profile>,
    /// The kernel's release as the run saw it; `None` when the column could
    /// not run at all, so it never learned it.
    pub kernel: Option<String>,
    /// The kernel's architecture; `None` when the column could not run at
    /// all.
    pub arch: Option<String>,
}

impl Asked {
    /// Each field's name and value, for comparing shards: `None` where the
    /// shard does not know the value, which agrees with any.
    fn fields(&self) -> [(&'static str, Option<String>); 6] {
        let or_none = |value: Option<String>| value.unwrap_or_else(|| "none".into());
        [
            ("selection", Some(self.selection.clone())),
            ("catalogue", Some(self.catalogue.clone())),
            ("seed", Some(or_none(self.seed.map(|s| s.to_string())))),
            (
                "expected profile",
                Some(or_none(self.expect_profile.map(|p| p.name().to_owned()))),
            ),
            ("kernel release", self.kernel.clone()),
            ("arch", self.arch.clone()),
        ]
    }

    /// The first field on which `self` and `other` disagree: its name and
    /// both values.
    fn disagreement(&self, other: &Asked) -> Option<(&'static str, String, String)> {
        self.fields().into_iter().zip(other.fields()).find_map(
            |((field, mine), (_, theirs))| match (mine, theirs) {
                (Some(mine), Some(theirs)) if mine != theirs => Some((field, mine, theirs)),
                _ => None,
            },
        )
    }

    /// `self` with what only `other` knows (kernel release, arch) filled in.
    fn completed_by(self, other: &Asked) -> Asked {
        Asked {
            kernel: self.kernel.or_else(|| other.kernel.clone()),
            arch: self.arch.or_else(|| other.arch.clone()),
            ..self
        }
    }
}

/// The version of the catalogue `names` (every case's name, in catalogue
/// order): portrange's version, the number of cases and a CRC-32 of their
/// names. The version alone stays the same between commits of a work
/// tree, and the count alone misses a case renamed or swapped for another;
/// the names' checksum catches both. A case whose checks changed under the
/// same name is not caught: that takes a release with a new version.
pub fn catalogue_version<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = crc32fast::Hasher::new();
    let mut count = 0;
    for name in names {
        hasher.update(name.as_bytes());
        hasher.update(b"\n");
        count += 1;
    }
    format!(
        "portrange {} ({count} cases, names crc32 {:08x})",
        env!("CARGO_PKG_VERSION"),
        hasher.finalize()
    )
}

/// Shard `index` of `count`, 1-based: case k of the filtered catalogue
/// belongs to shard k mod count + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards the run was split into.
    pub count: usize,
}

impl Shard {
    /// The whole run, unsharded.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether the `position`-th case (from 0) of the filtered list is this
    /// shard's.
    pub fn keeps(self, position: usize) -> bool {
        position % self.count + 1 == self.index
    }

    fn is_valid(self) -> bool {
        (1..=self.count).contains(&self.index)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("--shard {text:?}: expected I/N with 1 <= I <= N, e.g. 2/4");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: usize = index.trim().parse().map_err(|_| usage())?;
        let count: usize = count.trim().parse().map_err(|_| usage())?;
        let shard = Shard { index, count };
        if shard.is_valid() {
            Ok(shard)
        } else {
            Err(usage())
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Reports for a list of kernels; also the machine-readable summary
/// (`summary.json`) that `merge` reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix {
    /// One entry per kernel, in the order given.
    pub kernels: Vec<KernelReport>,
    /// With `--baseline`: every other column compared with that one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
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
    /// A summary records a shard that cannot exist (`0/2`, `3/2`).
    #[error(
        "{kernel}: a summary records shard {shard}, which cannot exist: pass summary.json files written by `portrange matrix`"
    )]
    BadShard {
        /// The kernel label.
        kernel: String,
        /// The shard recorded.
        shard: Shard,
    },
    /// The same shard of a kernel was given twice.
    #[error("{kernel}: shard {shard} was given twice: pass each shard's summary.json once")]
    DuplicateShard {
        /// The kernel label.
        kernel: String,
        /// The shard.
        shard: Shard,
    },
    /// Shards of one kernel were split different ways.
    #[error(
        "{kernel}: shards {first} and {second} come from runs split into different numbers of shards: merge the shards of one run"
    )]
    ShardCounts {
        /// The kernel label.
        kernel: String,
        /// One shard.
        first: Shard,
        /// A shard of another split.
        second: Shard,
    },
    /// Shards of one label were asked to run different things, or ran on
    /// different kernels.
    #[error(
        "{kernel}: shards {first} and {second} disagree on the {field}: {first_value:?} and {second_value:?}: merge only the shards of one run (same selection, catalogue, seed, expected profile, kernel release and arch)"
    )]
    Disagree {
        /// The kernel label.
        kernel: String,
        /// The field they disagree on.
        field: &'static str,
        /// One shard.
        first: Shard,
        /// Its value.
        first_value: String,
        /// The other shard.
        second: Shard,
        /// Its value.
        second_value: String,
    },
    /// Shards of a kernel are missing.
    #[error(
        "{kernel}: {} of {count} shards missing ({}{}): pass every shard's summary.json, or re-run the missing shards",
        count - given,
        missing.iter().map(Shard::to_string).collect::<Vec<_>>().join(", "),
        if count - given > missing.len() { ", ..." } else { "" }
    )]
    MissingShards {
        /// The kernel label.
        kernel: String,
        /// How many shards the run was split into.
        count: usize,
        /// How many were given.
        given: usize,
        /// The first few of the missing ones.
        missing: Vec<Shard>,
    },
    /// Cases a shard was to run have no result in any shard.
    #[error(
        "{kernel}: {total} planned case(s) have no result in any shard ({}{}): the shard that was to run them lost them; re-run it",
        cases.join(", "),
        if *total > cases.len() { ", ..." } else { "" }
    )]
    MissingCases {
        /// The kernel label.
        kernel: String,
        /// How many cases have no result.
        total: usize,
        /// The first few of them.
        cases: Vec<String>,
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
    ///
    /// Refuses, per kernel, a shard given twice, a shard missing, shards of
    /// runs split different ways, shards that disagree on what they were
    /// asked to run or what they ran on ([`Asked`]), and a case some shard
    /// was to run that no shard has a result for. The harness's own results
    /// of a shard (a VM's `vm/run`) are named after it. The merged columns
    /// are whole runs (shard 1/1).
    pub fn merge(parts: Vec<Matrix>, order: &[String]) -> Result<Matrix, MergeError> {
        let rank: BTreeMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut merged: Vec<KernelReport> = Vec::new();
        let mut shards: BTreeMap<String, Vec<Shard>> = BTreeMap::new();
        for part in parts {
            for kernel in part.kernels {
                record_shard(shards.entry(kernel.label.clone()).or_default(), &kernel)?;
                let kernel = harness_results_named_by_shard(kernel);
                let Some(into) = merged.iter_mut().find(|k| k.label == kernel.label) else {
                    merged.push(kernel);
                    continue;
                };
                if let Some((field, first_value, second_value)) =
                    into.asked.disagreement(&kernel.asked)
                {
                    return Err(MergeError::Disagree {
                        kernel: kernel.label,
                        field,
                        first: into.shard,
                        first_value,
                        second: kernel.shard,
                        second_value,
                    });
                }
                into.asked = into.asked.clone().completed_by(&kernel.asked);
                for name in kernel.planned {
                    if !into.planned.contains(&name) {
                        into.planned.push(name);
                    }
                }
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
            check_complete(&kernel.label, &shards[&kernel.label])?;
            let ran: BTreeSet<&str> = kernel
                .report
                .results
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            let lost: Vec<&String> = kernel
                .planned
                .iter()
                .filter(|name| !ran.contains(name.as_str()))
                .collect();
            if !lost.is_empty() {
                return Err(MergeError::MissingCases {
                    kernel: kernel.label.clone(),
                    total: lost.len(),
                    cases: lost.into_iter().take(8).cloned().collect(),
                });
            }
            let by_rank = |name: &str| rank.get(name).copied().unwrap_or(usize::MAX);
            kernel.report.results.sort_by_key(|r| by_rank(&r.name));
            kernel.planned.sort_by_key(|name| by_rank(name));
            kernel.shard = Shard::WHOLE;
        }
        Ok(Matrix {
            kernels: merged,
            comparisons: Vec::new(),
        })
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

/// `kernel` with each result of a case it did not plan (the harness's own,
/// as a VM's `vm/run`) named after its shard (`vm/run/shard-1-of-2`), so
/// two shards that each ended with a fault merge with both faults kept.
fn harness_results_named_by_shard(mut kernel: KernelReport) -> KernelReport {
    let Shard { index, count } = kernel.shard;
    if kernel.shard == Shard::WHOLE {
        return kernel;
    }
    for result in &mut kernel.report.results {
        if !kernel.planned.contains(&result.name) {
            result.name = format!("{}/shard-{index}-of-{count}", result.name);
        }
    }
    kernel
}

/// Adds `kernel`'s shard to those seen for its label, refusing one that
/// cannot exist, one seen before and one of another split.
fn record_shard(seen: &mut Vec<Shard>, kernel: &KernelReport) -> Result<(), MergeError> {
    let (label, shard) = (&kernel.label, kernel.shard);
    if !shard.is_valid() {
        return Err(MergeError::BadShard {
            kernel: label.clone(),
            shard,
        });
    }
    if seen.contains(&shard) {
        return Err(MergeError::DuplicateShard {
            kernel: label.clone(),
            shard,
        });
    }
    if let Some(&first) = seen.iter().find(|s| s.count != shard.count) {
        return Err(MergeError::ShardCounts {
            kernel: label.clone(),
            first,
            second: shard,
        });
    }
    seen.push(shard);
    Ok(())
}

/// Refuses a kernel whose shards do not cover 1..=N.
fn check_complete(label: &str, seen: &[Shard]) -> Result<(), MergeError> {
    let count = seen.first().map_or(1, |s| s.count);
    if seen.len() == count {
        return Ok(());
    }
    let missing: Vec<Shard> = (1..=count)
        .map(|index| Shard { index, count })
        .filter(|shard| !seen.contains(shard))
        .take(8)
        .collect();
    Err(MergeError::MissingShards {
        kernel: label.to_owned(),
        count,
        given: seen.len(),
        missing,
    })
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

    fn column(label: &str, report: RunReport) -> KernelReport {
        KernelReport {
            label: label.into(),
            shard: Shard::WHOLE,
            planned: report.results.iter().map(|r| r.name.clone()).collect(),
            asked: Asked {
                selection: String::new(),
                catalogue: catalogue_version(report.results.iter().map(|r| r.name.as_str())),
                seed: None,
                expect_profile: None,
                kernel: Some(report.probes.kernel.clone()),
                arch: Some("x86_64".into()),
            },
            report,
        }
    }

    fn two_kernels() -> Matrix {
        let mut passing = fake_report();
        passing
            .results
            .retain(|r| matches!(r.outcome, Outcome::Pass | Outcome::Skip(_)));
        Matrix {
            kernels: vec![
                column("running", fake_report()),
                column("debian-6.1", passing),
            ],
            comparisons: Vec::new(),
        }
    }

    fn order(matrix: &Matrix) -> Vec<String> {
        matrix.kernels[0].planned.clone()
    }

    /// `whole` split as `portrange matrix --shard i/count` would have run it.
    fn shard(whole: &Matrix, index: usize, count: usize) -> Matrix {
        let shard = Shard { index, count };
        let mut part = whole.clone();
        for kernel in &mut part.kernels {
            kernel.shard = shard;
            let mut k = 0;
            kernel.planned.retain(|_| {
                k += 1;
                shard.keeps(k - 1)
            });
            let planned = kernel.planned.clone();
            kernel.report.results.retain(|r| planned.contains(&r.name));
        }
        part
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
        let shards = vec![shard(&whole, 2, 2), shard(&whole, 1, 2)];
        assert!(
            shards
                .iter()
                .all(|s| !s.kernels[0].report.results.is_empty())
        );
        let merged = Matrix::merge(shards, &order(&whole)).unwrap();
        assert_eq!(merged, whole);
    }

    #[test]
    fn a_shard_given_twice_is_refused() {
        let whole = two_kernels();
        let parts = vec![
            shard(&whole, 1, 2),
            shard(&whole, 2, 2),
            shard(&whole, 1, 2),
        ];
        let err = Matrix::merge(parts, &order(&whole)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "running: shard 1/2 was given twice: pass each shard's summary.json once"
        );
        let err = Matrix::merge(vec![whole.clone(), whole.clone()], &order(&whole)).unwrap_err();
        assert!(matches!(err, MergeError::DuplicateShard { .. }), "{err}");
    }

    #[test]
    fn a_missing_shard_is_refused() {
        let whole = two_kernels();
        let parts = vec![shard(&whole, 3, 4), shard(&whole, 1, 4)];
        let err = Matrix::merge(parts, &order(&whole)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "running: 2 of 4 shards missing (2/4, 4/4): pass every shard's summary.json, or re-run the missing shards"
        );
        let mut no_second_kernel = shard(&whole, 2, 2);
        no_second_kernel.kernels.truncate(1);
        let parts = vec![shard(&whole, 1, 2), no_second_kernel];
        let err = Matrix::merge(parts, &order(&whole)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("debian-6.1: 1 of 2 shards missing (2/2)"),
            "{err}"
        );
    }

    #[test]
    fn shards_of_different_splits_are_refused() {
        let whole = two_kernels();
        let parts = vec![shard(&whole, 1, 2), shard(&whole, 2, 3)];
        let err = Matrix::merge(parts, &order(&whole)).unwrap_err();
        assert!(matches!(err, MergeError::ShardCounts { .. }), "{err}");
        let mut impossible = shard(&whole, 1, 2);
        impossible.kernels[0].shard = Shard { index: 0, count: 2 };
        let err = Matrix::merge(vec![impossible], &order(&whole)).unwrap_err();
        assert!(matches!(err, MergeError::BadShard { .. }), "{err}");
    }

    #[test]
    fn a_planned_case_without_a_result_is_refused() {
        let whole = two_kernels();
        let mut lossy = shard(&whole, 2, 2);
        let lost = lossy.kernels[0].report.results.remove(0).name;
        let err = Matrix::merge(vec![shard(&whole, 1, 2), lossy], &order(&whole)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "running: 1 planned case(s) have no result in any shard ({lost}): the shard that was to run them lost them; re-run it"
            )
        );
    }

    #[test]
    fn shards_that_disagree_are_refused_naming_the_field_and_both_values() {
        let whole = two_kernels();
        let mut other_selection = shard(&whole, 2, 2);
        other_selection.kernels[0].asked.selection = "clamp/".into();
        let mut parts = vec![shard(&whole, 1, 2), other_selection];
        parts[0].kernels[0].asked.selection = "sockopt/".into();
        let err = Matrix::merge(parts, &order(&whole)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "running: shards 1/2 and 2/2 disagree on the selection: \"sockopt/\" and \"clamp/\": \
             merge only the shards of one run (same selection, catalogue, seed, expected profile, \
             kernel release and arch)"
        );
        let mut other_kernel = shard(&whole, 2, 2);
        other_kernel.kernels[0].asked.kernel = Some("6.1.0-56-cloud-amd64".into());
        let err =
            Matrix::merge(vec![shard(&whole, 1, 2), other_kernel], &order(&whole)).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "running: shards 1/2 and 2/2 disagree on the kernel release: \"6.18.0-test\" and \"6.1.0-56-cloud-amd64\""
            ),
            "{err}"
        );
        let changes: [fn(&mut Asked); 4] = [
            |a: &mut Asked| a.catalogue = "portrange 0.0.9 (1 cases, names crc32 00000000)".into(),
            |a: &mut Asked| a.seed = Some(7),
            |a: &mut Asked| a.expect_profile = Some(Profile::Stable61),
            |a: &mut Asked| a.arch = Some("arm64".into()),
        ];
        for change in changes {
            let mut changed = shard(&whole, 2, 2);
            change(&mut changed.kernels[1].asked);
            let err =
                Matrix::merge(vec![shard(&whole, 1, 2), changed], &order(&whole)).unwrap_err();
            assert!(matches!(err, MergeError::Disagree { .. }), "{err}");
        }
    }

    #[test]
    fn a_shard_that_never_learned_its_kernel_agrees_and_learns_it() {
        let whole = two_kernels();
        let mut unrun = shard(&whole, 2, 2);
        unrun.kernels[0].asked.kernel = None;
        unrun.kernels[0].asked.arch = None;
        let merged = Matrix::merge(vec![unrun, shard(&whole, 1, 2)], &order(&whole)).unwrap();
        assert_eq!(merged.kernels[0].asked, whole.kernels[0].asked);
    }

    #[test]
    fn harness_results_of_two_shards_merge_named_by_shard() {
        let whole = two_kernels();
        let mut parts = vec![shard(&whole, 1, 2), shard(&whole, 2, 2)];
        for part in &mut parts {
            part.kernels[0].report.results.push(CaseResult::new(
                "vm/run",
                Outcome::Error("kernel panic".into()),
                std::time::Duration::ZERO,
            ));
        }
        let merged = Matrix::merge(parts, &order(&whole)).unwrap();
        let names: Vec<&str> = merged.kernels[0]
            .report
            .results
            .iter()
            .map(|r| r.name.as_str())
            .filter(|name| name.starts_with("vm/"))
            .collect();
        assert_eq!(names, ["vm/run/shard-1-of-2", "vm/run/shard-2-of-2"]);
        assert_eq!(merged.verdict(), Verdict::Fail);
    }

    #[test]
    fn the_catalogue_version_changes_with_any_name() {
        let names = ["tcp4/a", "tcp4/b"];
        let version = catalogue_version(names);
        assert_eq!(
            version,
            format!(
                "portrange {} (2 cases, names crc32 {:08x})",
                env!("CARGO_PKG_VERSION"),
                crc32fast::hash(b"tcp4/a\ntcp4/b\n")
            )
        );
        assert_ne!(catalogue_version(["tcp4/a", "tcp4/c"]), version);
        assert_ne!(catalogue_version(["tcp4/a"]), version);
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
