//! The `portrange` command line: a thin layer over the runner and the
//! reporters.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::case::Case;
use crate::outcome::Verdict;
use crate::probe::Probes;
use crate::report::{self, Format, RunReport};
use crate::runner::{self, RunOptions};

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
}

#[derive(Debug, clap::Args)]
struct Selection {
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
    fn apply(&self, cases: Vec<Case>) -> Vec<Case> {
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
pub fn main(cases: Vec<Case>) -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli, cases) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portrange: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::List(selection) => {
            let mut out = std::io::stdout().lock();
            for case in selection.apply(cases) {
                writeln!(out, "{}", case.name)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(&args, cases),
    }
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
        results,
    };
    emit(args, &report::render(args.format, &report))?;
    if args.output.is_some() && args.format != Format::Text {
        print!("{}", report::summary(&report));
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
