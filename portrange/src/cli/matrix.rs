//! `portrange matrix` and `portrange merge`: several kernels, one table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use arch::Arch;

use super::native::{self, RunnerArgs};
use super::output::{self, RunFacts, write_whole};
use super::selection::Selection;
use super::vm::BootArgs;
use crate::compare;
use crate::matrix::{Asked, KernelReport, Matrix, Shard, catalogue_version};
use crate::vm::host;
use harness::Case;
use harness::outcome::Outcome;
use harness::profile::Profile;
use harness::report::{self, RunReport};
use harness::runner::RunOptions;

/// The kernel label that means "the kernel this runs on", natively.
const RUNNING: &str = "running";

/// Arguments of `portrange matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    boot: BootArgs,
    #[command(flatten)]
    runner: RunnerArgs,
    /// A kernel column: `running` (natively), a prebuilt (`debian-6.1`,
    /// `debian-6.12`) or a kernel image path, optionally followed by
    /// `:PROFILE` to pin the profile it must match (`debian-6.12:upstream`,
    /// `debian-6.1:stable-6.1`). Repeatable; default: running, debian-6.1
    /// and debian-6.12 (without `running` for `--arch` other than the
    /// host's). With `--arch` other than the host's, every column is named
    /// `<kernel>-<arch>[:PROFILE]` (`debian-6.12-arm64`).
    #[arg(long = "kernel", value_name = "KERNEL")]
    kernels: Vec<String>,
    #[command(flatten)]
    baseline: BaselineArgs,
    #[command(flatten)]
    kcidb: KcidbFilesArgs,
    /// Where to write `<kernel>.ktap`, `junit.xml` and `summary.json`.
    #[arg(long, value_name = "DIR", default_value = "portrange-matrix")]
    out_dir: PathBuf,
}

/// `--kcidb` and `--kcidb-origin`, of `matrix` and `merge`.
#[derive(Debug, Clone, clap::Args)]
struct KcidbFilesArgs {
    /// Also write `<kernel>.kcidb.json`: each column's run as a KCIDB
    /// report of its own (as `--format kcidb` of `vm`).
    #[arg(long)]
    kcidb: bool,
    /// The CI system the KCIDB files report as (KCIDB's `origin`:
    /// lowercase letters, digits, `_`).
    #[arg(long, value_name = "ORIGIN", default_value = report::kcidb::DEFAULT_ORIGIN,
          value_parser = output::kcidb_origin)]
    kcidb_origin: String,
}

impl KcidbFilesArgs {
    /// Each column's KCIDB file's name and contents, if asked for.
    fn files(&self, matrix: &Matrix) -> Vec<(String, String)> {
        if !self.kcidb {
            return Vec::new();
        }
        matrix
            .kernels
            .iter()
            .map(|kernel| {
                let facts = RunFacts {
                    arch: kernel.asked.arch.as_deref().and_then(|a| a.parse().ok()),
                    build_config: None,
                    console_log: None,
                };
                let provenance = output::provenance(&self.kcidb_origin, &kernel.report, &facts);
                (
                    format!("{}.kcidb.json", file_name(&kernel.label)),
                    report::kcidb::kcidb(&kernel.report, &provenance),
                )
            })
            .collect()
    }
}

/// `--baseline`, of `matrix` and `merge`.
#[derive(Debug, Clone, clap::Args)]
struct BaselineArgs {
    /// The kernel column (as labelled in the table) every other column is
    /// compared with, as `portrange compare` does: the comparisons follow
    /// the table and go into summary.json.
    #[arg(long, value_name = "KERNEL")]
    baseline: Option<String>,
}

impl BaselineArgs {
    /// Refuses a baseline none of `labels` is, before anything runs.
    fn check(&self, labels: &[String]) -> anyhow::Result<()> {
        match &self.baseline {
            Some(baseline) if !labels.contains(baseline) => anyhow::bail!(
                "--baseline {baseline} is none of the matrix's kernels ({}): name one of them",
                labels.join(", ")
            ),
            _ => Ok(()),
        }
    }

    /// `matrix` with its columns compared with the baseline, if one was
    /// asked for.
    fn apply(&self, mut matrix: Matrix) -> anyhow::Result<Matrix> {
        if let Some(baseline) = &self.baseline {
            let labels: Vec<String> = matrix.kernels.iter().map(|k| k.label.clone()).collect();
            self.check(&labels)?;
            matrix.comparisons =
                compare::against_baseline(&matrix, baseline).expect("checked: a column");
        }
        Ok(matrix)
    }
}

/// Arguments of `portrange merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The shards' `summary.json` files, or the directories holding them.
    #[arg(required = true, value_name = "SUMMARY")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    baseline: BaselineArgs,
    #[command(flatten)]
    kcidb: KcidbFilesArgs,
    /// Where to write the merged files.
    #[arg(long, value_name = "DIR", default_value = "portrange-matrix")]
    out_dir: PathBuf,
}

/// Runs `portrange matrix`.
pub fn run(args: &MatrixArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let catalogue = catalogue_version(cases.iter().map(|case| case.name.as_str()));
    let cases = args.selection.apply(cases)?;
    let planned: Vec<String> = cases.iter().map(|case| case.name.clone()).collect();
    let shard = args.selection.shard.unwrap_or(Shard::WHOLE);
    let options = args.runner.options()?;
    let foreign = args.boot.arch.filter(|arch| *arch != Arch::host());
    let specs: Vec<String> = match (args.kernels.is_empty(), foreign) {
        (false, _) => args.kernels.clone(),
        (true, None) => [RUNNING, "debian-6.1", "debian-6.12"]
            .map(str::to_owned)
            .to_vec(),
        (true, Some(_)) => ["debian-6.1", "debian-6.12"].map(str::to_owned).to_vec(),
    };
    if let Some(arch) = foreign
        && specs
            .iter()
            .any(|spec| split_profile(spec).is_ok_and(|(kernel, _)| kernel == RUNNING))
    {
        anyhow::bail!(
            "--kernel {RUNNING} runs natively on this {} host, and --arch {arch} asks for {arch} \
             kernels: drop --kernel {RUNNING}, or run it in a matrix without --arch",
            Arch::host()
        );
    }
    let labels: Vec<String> = specs.iter().map(|spec| column(spec, foreign)).collect();
    distinct_files(&labels)?;
    args.baseline.check(&labels)?;
    fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating --out-dir {}", args.out_dir.display()))?;
    let asked = Asked {
        selection: selection_words(&args.selection),
        catalogue,
        seed: options.randomized.seed,
        expect_profile: options.expect_profile,
        kernel: None,
        arch: None,
    };
    let mut matrix = Matrix::default();
    for (index, (spec, label)) in specs.iter().zip(labels).enumerate() {
        eprintln!(
            "portrange: [{}/{}] {label}: {} cases",
            index + 1,
            specs.len(),
            cases.len()
        );
        let (report, asked) = kernel_report(args, &options, spec, &label, &cases, &asked);
        eprintln!(
            "portrange: [{}/{}] {label}: {}",
            index + 1,
            specs.len(),
            report.totals()
        );
        matrix.kernels.push(KernelReport {
            label,
            shard,
            planned: planned.clone(),
            asked,
            report,
        });
    }
    publish(&args.baseline.apply(matrix)?, &args.kcidb, &args.out_dir)
}

/// The selection as the command line gave it, without the shard:
/// `--exact`, `--include-harness-faults` and the filters (empty: every case).
fn selection_words(selection: &Selection) -> String {
    let switches = [
        (selection.exact, "--exact"),
        (selection.include_harness_faults, "--include-harness-faults"),
    ];
    switches
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, switch)| switch.to_owned())
        .chain(selection.filters.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses columns whose files would overwrite each other: a kernel given
/// twice (its columns could not be told apart in the table nor matched in
/// a merge either), or labels that differ only where a file name has `_`.
/// Numbering repeated columns instead would name a column by its place on
/// the command line, and a merge would pair the wrong shards when another
/// shard gave the kernels in another order.
fn distinct_files(labels: &[String]) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for label in labels {
        let file = format!("{}.ktap", file_name(label));
        match seen.insert(file.clone(), label) {
            None => {}
            Some(first) if first == label => anyhow::bail!(
                "--kernel {label} is given twice: the two columns would overwrite each other's \
                 files; give each kernel once (a second profile is a column of its own: \
                 {label}:PROFILE)"
            ),
            Some(first) => anyhow::bail!(
                "columns {first} and {label} would both be written to {file}: give one of the \
                 kernels another name (a path of another name)"
            ),
        }
    }
    Ok(())
}

/// A kernel's column name: `spec` (the `--kernel` value) as given, with
/// `-<arch>` after the kernel when it boots on another architecture than
/// the host's (`debian-6.12-arm64`, `debian-6.12-arm64:upstream`), so
/// columns, report files and shards of different architectures never
/// collide and the host's stay as they always were.
fn column(spec: &str, foreign: Option<Arch>) -> String {
    let Some(arch) = foreign else {
        return spec.to_owned();
    };
    let kernel = split_profile(spec).map_or(spec, |(kernel, _)| kernel);
    format!("{kernel}-{arch}{}", &spec[kernel.len()..])
}

/// One kernel's report, named `label`, for `spec` (the `--kernel` value),
/// and `asked` completed with the column's profile and what it ran on; a
/// kernel that cannot be run at all (no privileges, no image, no QEMU)
/// gets every case marked with the reason instead of stopping the other
/// columns.
fn kernel_report(
    args: &MatrixArgs,
    options: &RunOptions,
    spec: &str,
    label: &str,
    cases: &[Case],
    asked: &Asked,
) -> (RunReport, Asked) {
    let (kernel, pinned) = match split_profile(spec) {
        Ok(split) => split,
        Err(e) => {
            let report = native::unrunnable_report(label, cases, &Outcome::Error(e));
            return (report, asked.clone());
        }
    };
    let options = &RunOptions {
        expect_profile: pinned.or(options.expect_profile),
        ..options.clone()
    };
    let asked = Asked {
        expect_profile: options.expect_profile,
        ..asked.clone()
    };
    let ran_on = |report: &RunReport, arch: Arch| Asked {
        kernel: Some(report.probes.kernel.clone()),
        arch: Some(arch.to_string()),
        ..asked.clone()
    };
    if kernel == RUNNING {
        return match native::run_report(cases, options, |_| {}, |_| {}) {
            Ok(report) => {
                let asked = ran_on(&report, Arch::host());
                (report, asked)
            }
            Err(e) => (native::unrunnable_report(label, cases, &e.outcome()), asked),
        };
    }
    let request = args.boot.request(kernel, None);
    match host::run_suite(&request, cases, options, &mut |_| {}) {
        Ok(run) => {
            let asked = ran_on(&run.report, run.arch);
            (run.report, asked)
        }
        Err(e) => {
            eprintln!("portrange: {label}: {e:#}");
            let outcome = Outcome::Error(format!("{e:#}"));
            (native::unrunnable_report(label, cases, &outcome), asked)
        }
    }
}

/// Splits `KERNEL:PROFILE` into the kernel and the profile pinned for it;
/// a label without a profile suffix is all kernel.
fn split_profile(label: &str) -> Result<(&str, Option<Profile>), String> {
    match label.rsplit_once(':') {
        None => Ok((label, None)),
        Some(_) if Path::new(label).exists() => Ok((label, None)),
        Some((kernel, profile)) => profile
            .parse()
            .map(|profile| (kernel, Some(profile)))
            .map_err(|e| format!("--kernel {label}: {e}")),
    }
}

/// Runs `portrange merge`.
pub fn merge(args: &MergeArgs, cases: &[Case]) -> anyhow::Result<ExitCode> {
    let mut parts = Vec::new();
    for input in &args.inputs {
        let path = if input.is_dir() {
            input.join("summary.json")
        } else {
            input.clone()
        };
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let part: Matrix = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a summary.json of this portrange's `matrix` (which records each column's shard and planned cases): re-run the shard with this version",
                path.display()
            )
        })?;
        parts.push(part);
    }
    let order: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let merged = args.baseline.apply(Matrix::merge(parts, &order)?)?;
    publish(&merged, &args.kcidb, &args.out_dir)
}

/// Writes the files (summary.json first, then each kernel's KTAP, then
/// junit.xml, then with `--kcidb` each kernel's KCIDB report; a file that
/// cannot be written does not stop the others),
/// prints the table and verdict, and gives the exit code: the verdict's,
/// or an error naming every file that could not be written.
fn publish(matrix: &Matrix, kcidb: &KcidbFilesArgs, out_dir: &Path) -> anyhow::Result<ExitCode> {
    let labels: Vec<String> = matrix.kernels.iter().map(|k| k.label.clone()).collect();
    distinct_files(&labels)?;
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let summary = serde_json::to_string_pretty(matrix).context("serializing summary.json")?;
    let mut files = vec![("summary.json".to_owned(), summary)];
    files.extend(matrix.kernels.iter().map(|kernel| {
        let name = format!("{}.ktap", file_name(&kernel.label));
        (name, report::ktap(&kernel.report))
    }));
    files.push(("junit.xml".to_owned(), matrix.junit()));
    files.extend(kcidb.files(matrix));
    let failed: Vec<String> = files
        .iter()
        .filter_map(|(name, contents)| write_whole(&out_dir.join(name), contents).err())
        .map(|e| format!("{e:#}"))
        .collect();
    print!("{}", matrix.table());
    println!("(ok* = passed where it ran, skipped on some variants)");
    for comparison in &matrix.comparisons {
        print!("\n{}", comparison.text());
    }
    println!(
        "\nverdict: {} ({} kernels); KTAP, junit.xml and summary.json in {}",
        matrix.verdict(),
        matrix.kernels.len(),
        out_dir.display()
    );
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} files were not written (the others were): {}",
            failed.len(),
            files.len(),
            failed.join("; ")
        );
    }
    Ok(matrix.verdict().process_exit())
}

/// A kernel label as a file name: path separators and odd characters become `_`.
fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_carry_the_arch_only_for_a_foreign_one() {
        assert_eq!(column("debian-6.12", None), "debian-6.12");
        assert_eq!(column("debian-6.12:upstream", None), "debian-6.12:upstream");
        assert_eq!(
            column("debian-6.12", Some(Arch::Arm64)),
            "debian-6.12-arm64"
        );
        assert_eq!(
            column("debian-6.1:stable-6.1", Some(Arch::Arm64)),
            "debian-6.1-arm64:stable-6.1"
        );
        assert_eq!(
            column("debian-6.1", Some(Arch::X86_64)),
            "debian-6.1-x86_64"
        );
    }

    #[test]
    fn columns_that_would_share_files_are_refused() {
        let labels = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert!(distinct_files(&labels(&["running", "running:upstream", "debian-6.1"])).is_ok());
        assert_eq!(
            distinct_files(&labels(&["running", "debian-6.1", "running"]))
                .unwrap_err()
                .to_string(),
            "--kernel running is given twice: the two columns would overwrite each other's \
             files; give each kernel once (a second profile is a column of its own: \
             running:PROFILE)"
        );
        assert_eq!(
            distinct_files(&labels(&["/k/bzImage", "_k_bzImage"]))
                .unwrap_err()
                .to_string(),
            "columns /k/bzImage and _k_bzImage would both be written to _k_bzImage.ktap: give \
             one of the kernels another name (a path of another name)"
        );
    }

    #[test]
    fn the_selection_is_recorded_as_given_without_the_shard() {
        let selection = Selection {
            filters: vec!["tcp4/a".into(), "udp4/b".into()],
            exact: true,
            shard: Some(Shard { index: 1, count: 2 }),
            include_harness_faults: true,
        };
        assert_eq!(
            selection_words(&selection),
            "--exact --include-harness-faults tcp4/a udp4/b"
        );
        assert_eq!(selection_words(&Selection::default()), "");
    }

    #[test]
    fn a_kernel_label_may_pin_a_profile() {
        assert_eq!(split_profile("debian-6.12"), Ok(("debian-6.12", None)));
        assert_eq!(
            split_profile("debian-6.12:upstream"),
            Ok(("debian-6.12", Some(Profile::Upstream)))
        );
        assert_eq!(
            split_profile("running:stable-6.1"),
            Ok(("running", Some(Profile::Stable61)))
        );
        assert_eq!(
            split_profile("debian-6.1:6.1"),
            Err("--kernel debian-6.1:6.1: unknown kernel profile \"6.1\": use upstream or stable-6.1".into())
        );
    }
}
