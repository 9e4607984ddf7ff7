//! `portrange matrix` and `portrange merge`: several kernels, one table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use arch::Arch;

use super::native::{self, RunnerArgs};
use super::output::write_whole;
use super::selection::Selection;
use super::vm::BootArgs;
use crate::matrix::{KernelReport, Matrix};
use crate::vm::host;
use harness::Case;
use harness::outcome::{CaseResult, Outcome};
use harness::probe::{Availability, Probes};
use harness::report::{self, Phases, RunReport};
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
    /// `debian-6.12`) or a kernel image path. Repeatable; default: running,
    /// debian-6.1 and debian-6.12 (without `running` for `--arch` other
    /// than the host's). With `--arch` other than the host's, every column
    /// is named `<kernel>-<arch>` (`debian-6.12-arm64`).
    #[arg(long = "kernel", value_name = "KERNEL")]
    kernels: Vec<String>,
    /// Where to write `<kernel>.ktap`, `junit.xml` and `summary.json`.
    #[arg(long, value_name = "DIR", default_value = "portrange-matrix")]
    out_dir: PathBuf,
}

/// Arguments of `portrange merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The shards' `summary.json` files, or the directories holding them.
    #[arg(required = true, value_name = "SUMMARY")]
    inputs: Vec<PathBuf>,
    /// Where to write the merged files.
    #[arg(long, value_name = "DIR", default_value = "portrange-matrix")]
    out_dir: PathBuf,
}

/// Runs `portrange matrix`.
pub fn run(args: &MatrixArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let cases = args.selection.apply(cases);
    let options = args.runner.options()?;
    let foreign = args.boot.arch.filter(|arch| *arch != Arch::host());
    let kernels: Vec<String> = match (args.kernels.is_empty(), foreign) {
        (false, _) => args.kernels.clone(),
        (true, None) => [RUNNING, "debian-6.1", "debian-6.12"]
            .map(str::to_owned)
            .to_vec(),
        (true, Some(_)) => ["debian-6.1", "debian-6.12"].map(str::to_owned).to_vec(),
    };
    if let Some(arch) = foreign
        && kernels.iter().any(|kernel| kernel == RUNNING)
    {
        anyhow::bail!(
            "--kernel {RUNNING} runs natively on this {} host, and --arch {arch} asks for {arch} \
             kernels: drop --kernel {RUNNING}, or run it in a matrix without --arch",
            Arch::host()
        );
    }
    let mut matrix = Matrix::default();
    for (index, kernel) in kernels.iter().enumerate() {
        let label = column(kernel, foreign);
        eprintln!(
            "portrange: [{}/{}] {label}: {} cases",
            index + 1,
            kernels.len(),
            cases.len()
        );
        let report = kernel_report(args, &options, kernel, &label, &cases);
        eprintln!(
            "portrange: [{}/{}] {label}: {}",
            index + 1,
            kernels.len(),
            report.totals()
        );
        matrix.kernels.push(KernelReport { label, report });
    }
    publish(&matrix, &args.out_dir)
}

/// A kernel's column name: the kernel as given, with `-<arch>` when it
/// boots on another architecture than the host's (`debian-6.12-arm64`), so
/// columns, report files and shards of different architectures never
/// collide and the host's stay as they always were.
fn column(kernel: &str, foreign: Option<Arch>) -> String {
    match foreign {
        Some(arch) => format!("{kernel}-{arch}"),
        None => kernel.to_owned(),
    }
}

/// One kernel's report under `label`; a kernel that cannot be run at all
/// (no privileges, no image, no QEMU) gets every case marked with the
/// reason instead of stopping the other columns.
fn kernel_report(
    args: &MatrixArgs,
    options: &RunOptions,
    kernel: &str,
    label: &str,
    cases: &[Case],
) -> RunReport {
    if kernel == RUNNING {
        return native::run_report(cases, options, |_| {})
            .unwrap_or_else(|reason| unrunnable(label, cases, Outcome::Skip(reason)));
    }
    let request = args.boot.request(kernel, None);
    host::run_suite(&request, cases, options, &mut |_| {}).unwrap_or_else(|e| {
        eprintln!("portrange: {label}: {e:#}");
        unrunnable(label, cases, Outcome::Error(format!("{e:#}")))
    })
}

fn unrunnable(label: &str, cases: &[Case], outcome: Outcome) -> RunReport {
    let reason = match &outcome {
        Outcome::Skip(m) | Outcome::Error(m) | Outcome::Fail(m) => m.clone(),
        Outcome::Pass => String::new(),
    };
    RunReport {
        target: label.to_owned(),
        probes: Probes {
            kernel: "unknown".into(),
            option: Availability::Broken(reason),
            variants: BTreeMap::new(),
            profiles: BTreeMap::new(),
        },
        notes: Vec::new(),
        phases: Phases::default(),
        results: cases
            .iter()
            .map(|case| CaseResult::new(case.name.clone(), outcome.clone(), Duration::ZERO))
            .collect(),
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
        let part: Matrix = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a portrange summary.json", path.display()))?;
        parts.push(part);
    }
    let order: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    publish(&Matrix::merge(parts, &order)?, &args.out_dir)
}

/// Prints the table and verdict, writes the files, and gives the exit code.
fn publish(matrix: &Matrix, out_dir: &Path) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for kernel in &matrix.kernels {
        let path = out_dir.join(format!("{}.ktap", file_name(&kernel.label)));
        write_whole(&path, &report::ktap(&kernel.report))?;
    }
    write_whole(&out_dir.join("junit.xml"), &matrix.junit())?;
    let summary = serde_json::to_string_pretty(matrix).context("serializing summary.json")?;
    write_whole(&out_dir.join("summary.json"), &summary)?;
    print!("{}", matrix.table());
    println!("(ok* = passed where it ran, skipped on some variants)");
    println!(
        "\nverdict: {} ({} kernels); KTAP, junit.xml and summary.json in {}",
        matrix.verdict(),
        matrix.kernels.len(),
        out_dir.display()
    );
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
        assert_eq!(
            column("debian-6.12", Some(Arch::Arm64)),
            "debian-6.12-arm64"
        );
        assert_eq!(
            column("debian-6.1", Some(Arch::X86_64)),
            "debian-6.1-x86_64"
        );
    }
}
