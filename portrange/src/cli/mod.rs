//! The `portrange` command line: a thin layer over the runner, the VM host
//! and the reporters, with the catalogue and scenarios of the `cases` crate.

mod build;
mod compare;
mod matrix;
mod native;
mod output;
mod selection;
mod vm;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use harness::Case;
use selection::Selection;

/// IP_LOCAL_PORT_RANGE conformance suite.
///
/// With no command it runs the suite against the running kernel with KTAP
/// on stdout, as kselftest's runner expects of a test program.
#[derive(Debug, Parser)]
#[command(name = "portrange", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the cases, one name per line.
    List {
        #[command(flatten)]
        selection: Selection,
        /// Only the cases that answer the kernel's own selftest
        /// (ip_local_port_range.c) on its variants (IPv4, IPv6).
        #[arg(long)]
        selftest_equivalent: bool,
    },
    /// Run the cases against the running kernel, each in a fresh network
    /// namespace (needs root or unprivileged user namespaces).
    ///
    /// Exit status follows kselftest: 0 all passed, 1 something failed or
    /// could not run, 4 everything was skipped.
    Run(RunCommand),
    /// Boot a kernel in QEMU and run the cases inside it, reporting as
    /// `run` does; or, with `-- PROGRAM ARGS...`, run a program there (the
    /// cargo runner mode) and exit with its status.
    Vm(vm::VmArgs),
    /// Run the suite on several kernels; print a properties x kernels table
    /// and write per-kernel KTAP, a merged JUnit file and summary.json.
    Matrix(matrix::MatrixArgs),
    /// Build a kernel from a build.config (Android's format: ACK trees'
    /// own files work unchanged; Debian trees use the shipped ones) and
    /// print the kernel image's path.
    Build(build::BuildArgs),
    /// Build, boot and run the suite in one command: one verdict.
    Check(build::CheckArgs),
    /// Join the summary.json files of sharded matrix runs into one table
    /// and one set of files.
    Merge(matrix::MergeArgs),
    /// Compare two runs (JSON reports or summary.json columns): per case,
    /// regressions, fixes, newly skipped, newly run, added, removed; per
    /// property, profile changes; exit 1 on any regression.
    Compare(compare::CompareArgs),
    /// Run a named end-to-end scenario (`portrange scenario egress --help`).
    Scenario {
        /// The scenario's name.
        name: String,
        /// The scenario's own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `portrange run`'s arguments, and `--list` to print the run's plan.
#[derive(Debug, clap::Args)]
struct RunCommand {
    #[command(flatten)]
    args: native::RunArgs,
    /// Print the names of the cases this run would run, one per line, and
    /// run nothing: the plan, for a script that passes `run`'s arguments
    /// through and must tell which planned cases never reported
    /// (ci/lava/run-portrange.sh).
    #[arg(long)]
    list: bool,
}

/// An end-to-end scenario the command line can run by name: a use case
/// shown working across namespaces, with its own arguments.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// The name after `portrange scenario`.
    pub name: &'static str,
    /// One line for listings and errors.
    pub about: &'static str,
    /// Parses its own arguments (the first is the scenario's name, for
    /// usage messages), runs, prints what happened, and returns the exit
    /// code (kselftest's: 0 pass, 1 fail, 4 skip).
    pub run: fn(&[String]) -> anyhow::Result<ExitCode>,
}

/// Every scenario `portrange scenario` can run.
const SCENARIOS: &[Scenario] = &[Scenario {
    name: cases::egress::NAME,
    about: cases::egress::ABOUT,
    run: cases::egress::run,
}];

/// Runs the command line over the catalogue (every case, the harness fault
/// cases included) and returns the exit code.
///
/// Booted as `/init` of a VM that `portrange vm` started, the same binary
/// runs the guest side instead and powers the VM off when done; re-run by
/// `run --isolate process` for one case, it runs that case and exits.
pub fn main() -> ExitCode {
    let cases = cases::catalogue_with_harness_faults();
    harness::runner::serve_isolated_case(&cases);
    if qemu::guest::is_guest() {
        crate::vm::guest::main(cases);
    }
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
        None => native::run(&native::RunArgs::kselftest(), cases),
        Some(Command::List {
            selection,
            selftest_equivalent,
        }) => {
            let listed: Vec<Case> = selection
                .apply(cases)?
                .into_iter()
                .filter(|case| !selftest_equivalent || cases::selftest::is_equivalent(case))
                .collect();
            if listed.is_empty() {
                anyhow::bail!(
                    "none of the selected cases answers the kernel's selftest (its properties \
                     on IPv4 and IPv6 sockets, no IPv4-mapped IPv6): drop \
                     --selftest-equivalent or select other cases"
                );
            }
            print_names(listed)
        }
        Some(Command::Run(run)) if run.list => print_names(run.args.selection.apply(cases)?),
        Some(Command::Run(run)) => native::run(&run.args, cases),
        Some(Command::Vm(args)) => vm::run(&args, cases),
        Some(Command::Matrix(args)) => matrix::run(&args, cases),
        Some(Command::Merge(args)) => matrix::merge(&args, &cases),
        Some(Command::Compare(args)) => compare::run(&args),
        Some(Command::Build(args)) => build::build(&args),
        Some(Command::Check(args)) => build::check(&args, cases),
        Some(Command::Scenario { name, args }) => {
            let Some(scenario) = SCENARIOS.iter().find(|s| s.name == name) else {
                let known: Vec<String> = SCENARIOS
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.about))
                    .collect();
                anyhow::bail!(
                    "no scenario {name:?}: known scenarios are {}",
                    known.join(", ")
                );
            };
            let argv: Vec<String> = std::iter::once(format!("portrange scenario {name}"))
                .chain(args)
                .collect();
            (scenario.run)(&argv)
        }
    }
}

/// Prints each case's name on a line of its own.
fn print_names(cases: impl IntoIterator<Item = Case>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let written = cases
        .into_iter()
        .try_for_each(|case| writeln!(out, "{}", case.name))
        .and_then(|()| out.flush());
    match written {
        // A reader that stopped early (`| head`) read correct names: the
        // listing ends there, as it would for any filter of its output.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => Ok(other.map(|()| ExitCode::SUCCESS)?),
    }
}
