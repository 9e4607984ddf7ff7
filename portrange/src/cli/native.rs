//! `portrange run`: the suite against the running kernel.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::output::{Live, OutputArgs};
use super::selection::Selection;
use harness::Case;
use harness::outcome::{CaseResult, Verdict};
use harness::probe::Probes;
use harness::randomized::{self, Randomized};
use harness::report::{Format, Phases, RunReport};
use harness::runner::{self, RunOptions};

/// How cases are scheduled, shared by `run`, `vm` and `matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// Cases run at once (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds a case may take before it is a harness error.
    #[arg(long, value_name = "SECS", default_value_t = runner::CASE_TIMEOUT.as_secs())]
    pub case_timeout: u64,
    /// Seed of the randomized cases, decimal or 0x-hex (default: each draws
    /// its own and names it in its note); also PORTRANGE_SEED.
    #[arg(long, value_name = "SEED", value_parser = randomized::parse_seed)]
    pub seed: Option<u64>,
    /// Configurations each randomized case tries per variant, all of them
    /// however long they take (default: up to 100, cut short after 1 s);
    /// also PORTRANGE_RANDOM_CONFIGS.
    #[arg(long, value_name = "N", value_parser = randomized::parse_configurations)]
    pub random_configs: Option<usize>,
}

impl RunnerArgs {
    /// Defaults: what a bare `portrange` (the kselftest runner) gets.
    pub fn defaults() -> RunnerArgs {
        RunnerArgs {
            threads: None,
            case_timeout: runner::CASE_TIMEOUT.as_secs(),
            seed: None,
            random_configs: None,
        }
    }

    /// The runner's options; what the command line leaves unset of the
    /// randomized cases' settings comes from the environment.
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let given = Randomized {
            seed: self.seed,
            configurations: self.random_configs,
        };
        let from_env = Randomized::from_env().map_err(anyhow::Error::msg)?;
        Ok(RunOptions {
            threads: self.threads,
            timeout: Duration::from_secs(self.case_timeout),
            randomized: given.or(from_env),
            ..RunOptions::default()
        })
    }
}

/// Arguments of `portrange run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

impl RunArgs {
    /// What kselftest's runner gets when it runs the binary bare: every
    /// case, KTAP on stdout.
    pub fn kselftest() -> RunArgs {
        RunArgs {
            selection: Selection::default(),
            output: OutputArgs {
                format: Format::Ktap,
                output: None,
            },
            runner: RunnerArgs::defaults(),
        }
    }
}

/// Runs `cases` natively and reports as `args` asks.
pub fn run(args: &RunArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let cases = args.selection.apply(cases);
    let live = Live::new(&args.output, &cases);
    let (starting, progress) = (live.clone(), live.clone());
    match run_report(
        &cases,
        &args.runner.options()?,
        move |started| starting.start(started),
        move |result| progress.result(result),
    ) {
        Ok(report) => live.finish(&report),
        Err(reason) => {
            eprintln!("portrange: skipping every case: {reason}");
            if args.output.format == Format::Ktap {
                args.output
                    .emit(&format!("KTAP version 1\n1..0 # SKIP {reason}\n"))?;
            }
            Ok(Verdict::Skip.process_exit())
        }
    }
}

/// The report of a native run, or why no case can run here at all (no
/// privileges to make namespaces). `on_start` hears the report before any
/// case runs (target, probes, no results yet), `on_result` each result as
/// its case ends.
pub fn run_report(
    cases: &[Case],
    options: &RunOptions,
    on_start: impl FnOnce(&RunReport),
    on_result: impl Fn(&CaseResult) + Send + Sync + 'static,
) -> Result<RunReport, String> {
    let started = Instant::now();
    let probes = netns_util::ensure_privileges()
        .and_then(|_| Probes::run())
        .map_err(|e| format!("needs root or user namespaces: {:#}", anyhow::Error::new(e)))?;
    let probed = Instant::now();
    let mut report = RunReport {
        target: "running kernel".into(),
        probes,
        notes: Vec::new(),
        results: Vec::new(),
        phases: Phases::default(),
    };
    on_start(&report);
    report.results = runner::run_all(cases, &report.probes, options, on_result);
    report.phases = Phases {
        probes_micros: Phases::micros(probed - started),
        cases_micros: Phases::micros(probed.elapsed()),
        ..Phases::default()
    };
    Ok(report)
}
