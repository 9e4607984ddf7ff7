//! `portrange matrix` and `portrange merge`: several kernels, one table.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use arch::Arch;

use super::native::{self, RunnerArgs};
use super::output::write_whole;
use super::selection::Selection;
use super::vm::BootArgs;
use crate::matrix::{KernelReport, Matrix, Shard};
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
    let mut matrix = Matrix::default();
    for (index, spec) in specs.iter().enumerate() {
        let label = column(spec, foreign);
        eprintln!(
            "portrange: [{}/{}] {label}: {} cases",
            index + 1,
            specs.len(),
            cases.len()
        );
        let report = kernel_report(args, &options, spec, &label, &cases);
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
            report,
        });
    }
    publish(&matrix, &args.out_dir)
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

/// One kernel's report, named `label`, for `spec` (the `--kernel` value);
/// a kernel that cannot be run at all (no privileges, no image, no QEMU)
/// gets every case marked with the reason instead of stopping the other
/// columns.
fn kernel_report(
    args: &MatrixArgs,
    options: &RunOptions,
    spec: &str,
    label: &str,
    cases: &[Case],
) -> RunReport {
    let (kernel, pinned) = match split_profile(spec) {
        Ok(split) => split,
        Err(e) => return native::unrunnable_report(label, cases, &Outcome::Error(e)),
    };
    let options = &RunOptions {
        expect_profile: pinned.or(options.expect_profile),
        ..options.clone()
    };
    if kernel == RUNNING {
        return native::run_report(cases, options, |_| {}, |_| {})
            .unwrap_or_else(|e| native::unrunnable_report(label, cases, &e.outcome()));
    }
    let request = args.boot.request(kernel, None);
    host::run_suite(&request, cases, options, &mut |_| {}).unwrap_or_else(|e| {
        eprintln!("portrange: {label}: {e:#}");
        native::unrunnable_report(label, cases, &Outcome::Error(format!("{e:#}")))
    })
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
