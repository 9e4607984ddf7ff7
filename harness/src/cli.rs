//! The `portrange` command line: a thin layer over the runner and the
//! reporters.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::case::Case;
use crate::outcome::Verdict;
use crate::probe::Probes;
use crate::report::{self, Format, RunReport};
use crate::runner::{self, RunOptions};
use crate::vm::host::{self, VmRequest};
use qemu::accel::AccelChoice;

/// IP_LOCAL_PORT_RANGE conformance suite.
#[derive(Debug, Parser)]
#[command(name = "portrange", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the cases, one name per line.
    List(Selection),
    /// Run the cases against the running kernel, each in a fresh network
    /// namespace (needs root or unprivileged user namespaces).
    ///
    /// Exit status follows kselftest: 0 all passed, 1 something failed or
    /// could not run, 4 everything was skipped.
    Run(RunArgs),
    /// Boot a kernel in QEMU and run the cases inside it, reporting as
    /// `run` does; or, with `-- PROGRAM ARGS...`, run a program there (the
    /// cargo runner mode) and exit with its status.
    Vm(VmArgs),
    /// Run a named end-to-end scenario (`portrange scenario egress --help`).
    Scenario {
        /// The scenario's name.
        name: String,
        /// The scenario's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// An end-to-end scenario the command line can run by name: a use case
/// shown working across namespaces, with its own arguments.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The name after `portrange scenario`.
    pub name: &'static str,
    /// One line for `--help` listings and errors.
    pub about: &'static str,
    /// Parses its own arguments (the first is the scenario's name, for
    /// usage messages), runs, prints what happened, and returns the exit
    /// code (kselftest's: 0 pass, 1 fail, 4 skip).
    pub run: fn(&[String]) -> anyhow::Result<ExitCode>,
}

/// What the `portrange` binary offers: the cases and the scenarios.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Every case, expanded.
    pub cases: Vec<Case>,
    /// Every scenario.
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, clap::Args)]
struct VmArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Kernel to boot: a bzImage path, or a prebuilt fetched on first use
    /// (`debian-6.1`, `debian-6.12`).
    #[arg(long, default_value = "debian-6.12")]
    kernel: String,
    /// Accelerator: KVM when it really works (probed), else TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
    /// Extra kernel command line word (repeatable).
    #[arg(long, value_name = "WORD")]
    append: Vec<String>,
    /// Time limit for the whole VM run, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// Save the kernel console to FILE (kept automatically on a fault).
    #[arg(long, value_name = "FILE")]
    console_log: Option<PathBuf>,
    /// Cache for fetched kernels and kept console logs.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// A program and its arguments to run in the VM instead of the suite.
    #[arg(last = true, value_name = "PROGRAM")]
    exec: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

impl VmArgs {
    fn request(&self) -> VmRequest {
        VmRequest {
            kernel: self.kernel.clone(),
            accel: match self.accel {
                AccelArg::Auto => AccelChoice::Auto,
                AccelArg::Kvm => AccelChoice::Kvm,
                AccelArg::Tcg => AccelChoice::Tcg,
            },
            append: self.append.clone(),
            timeout: Duration::from_secs(self.timeout),
            memory_mib: self.memory,
            console_log: self.console_log.clone(),
            cache: self
                .cache
                .clone()
                .unwrap_or_else(qemu::kernel::default_cache_dir),
        }
    }
}

/// Which cases to run: name filters, as libtest takes them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selection {
    /// Only cases whose name contains one of these strings.
    filters: Vec<String>,
    /// Match filters against whole names only.
    #[arg(long)]
    exact: bool,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    selection: Selection,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the formatted report to FILE (the terminal then gets the text
    /// summary).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Cases run at once (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

impl Selection {
    /// The selection the host encoded with [`crate::vm::suite_args`].
    pub fn from_guest_args(args: &[String]) -> Selection {
        match args.split_first() {
            Some((mode, filters)) => Selection {
                filters: filters.to_vec(),
                exact: mode == "exact",
            },
            None => Selection::default(),
        }
    }

    /// The cases this selection keeps, in their order.
    pub fn apply(&self, cases: Vec<Case>) -> Vec<Case> {
        if self.filters.is_empty() {
            return cases;
        }
        cases
            .into_iter()
            .filter(|case| {
                self.filters.iter().any(|f| {
                    if self.exact {
                        case.name == *f
                    } else {
                        case.name.contains(f.as_str())
                    }
                })
            })
            .collect()
    }
}

/// Runs the command line over `cases` and returns the process exit code.
///
/// Booted as `/init` of a VM that `portrange vm` started, the same binary
/// runs the guest side instead and powers the VM off when done.
pub fn main(catalogue: Catalogue) -> ExitCode {
    if qemu::guest::is_guest() {
        crate::vm::guest::main(catalogue.cases);
    }
    let cli = Cli::parse();
    match dispatch(cli, catalogue) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portrange: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli, catalogue: Catalogue) -> anyhow::Result<ExitCode> {
    let Catalogue { cases, scenarios } = catalogue;
    match cli.command {
        Command::List(selection) => {
            let mut out = std::io::stdout().lock();
            for case in selection.apply(cases) {
                writeln!(out, "{}", case.name)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(&args, cases),
        Command::Vm(args) => vm(&args, cases),
        Command::Scenario { name, args } => {
            let Some(scenario) = scenarios.iter().find(|s| s.name == name) else {
                let known: Vec<String> = scenarios
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.about))
                    .collect();
                anyhow::bail!("no scenario {name:?}: known scenarios are {}", known.join(", "));
            };
            let argv: Vec<String> = std::iter::once(format!("portrange scenario {name}"))
                .chain(args)
                .collect();
            (scenario.run)(&argv)
        }
    }
}

fn vm(args: &VmArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let request = args.request();
    if let Some((program, program_args)) = args.exec.split_first() {
        let code = host::run_exec(&request, Path::new(program), program_args)?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    let selection = &args.run.selection;
    let cases = selection.apply(cases);
    let stream_progress = args.run.format == Format::Text || args.run.output.is_some();
    let report = host::run_suite(
        &request,
        &cases,
        &selection.filters,
        selection.exact,
        &mut |result| {
            if stream_progress {
                println!("{}", report::progress_line(result));
            }
        },
    )?;
    finish(&args.run, &report)
}

fn run(args: &RunArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let cases = args.selection.apply(cases);
    let probes = match netns_util::ensure_privileges().and_then(|_| Probes::run()) {
        Ok(probes) => probes,
        Err(e) => {
            let reason = format!("needs root or user namespaces: {e}");
            eprintln!("portrange: skipping every case: {reason}");
            if args.format == Format::Ktap {
                emit(args, &format!("KTAP version 1\n1..0 # SKIP {reason}\n"))?;
            }
            return Ok(Verdict::Skip.process_exit());
        }
    };
    let stream_progress = args.format == Format::Text || args.output.is_some();
    let options = RunOptions {
        threads: args.threads,
        ..RunOptions::default()
    };
    let results = runner::run_all(&cases, &probes, &options, move |result| {
        if stream_progress {
            println!("{}", report::progress_line(result));
        }
    });
    let report = RunReport {
        target: "running kernel".into(),
        probes,
        notes: Vec::new(),
        results,
    };
    finish(args, &report)
}

/// Writes the report in the asked format, the text summary to the terminal
/// when the format went to a file, and gives the verdict's exit code.
fn finish(args: &RunArgs, report: &RunReport) -> anyhow::Result<ExitCode> {
    emit(args, &report::render(args.format, report))?;
    if args.output.is_some() && args.format != Format::Text {
        print!("{}", report::summary(report));
    }
    Ok(report.verdict().process_exit())
}

/// Writes the rendered report to `--output` (whole or not at all) or stdout.
fn emit(args: &RunArgs, rendered: &str) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => write_whole(path, rendered),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(rendered.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it, so
/// a reader never sees half a report.
fn write_whole(path: &Path, contents: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--output {}: not a file name", path.display()))?;
    let temporary = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}
