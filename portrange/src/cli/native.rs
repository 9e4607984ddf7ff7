//! `portrange run`: the suite against the running kernel.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::output::{Live, OutputArgs};
use super::selection::Selection;
use clap::ValueEnum;
use harness::Case;
use harness::outcome::{CaseResult, Outcome};
use harness::probe::Availability;
use harness::probe::{Probes, SetupError};
use harness::profile::{OptionPresence, Profile};
use harness::randomized::{self, Randomized};
use harness::report::{Format, Phases, RunReport};
use harness::runner::{self, Isolation, Namespaces, RunOptions};

/// How cases are scheduled, shared by `run`, `vm` and `matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// Cases run at once, at least 1 (default: one per CPU).
    #[arg(long, value_parser = parse_threads)]
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
    /// The kernel profile every property must match (upstream or
    /// stable-6.1); a case or probe matching the other fails, naming both.
    /// Default: expected from the kernel's version (docs/profiles.md).
    #[arg(long, value_name = "PROFILE")]
    pub expect_profile: Option<Profile>,
    /// Whether the kernel must have IP_LOCAL_PORT_RANGE: `present` (its
    /// absence fails every case) or `absent` (its presence does). Default:
    /// a pinned profile requires it, else the release line decides
    /// (docs/profiles.md); a kernel the rules cannot place skips without it.
    #[arg(long, value_enum, value_name = "PRESENCE")]
    pub expect_option: Option<OptionPresence>,
    /// Where each case's network namespace comes from: `fresh` (made for
    /// the case, on its path), `ahead` (made for the case ahead of time on
    /// another thread, used by it alone and released after it) or `reuse`
    /// (one an earlier case used, kept only when a check proved it back to
    /// a fresh one's state: no socket of any protocol, no TIME_WAIT, port
    /// sysctls written back and read back, lo up, no extra link, address,
    /// route or rule; else a fresh one made ahead). About namespaces only;
    /// `--isolate` chooses thread or process. Default: fresh (always fresh
    /// with `--isolate process`, whose child makes its own).
    #[arg(long, value_enum, value_name = "NAMESPACES")]
    pub isolation: Option<Namespaces>,
}

impl RunnerArgs {
    /// Defaults: what a bare `portrange` (the kselftest runner) gets.
    pub fn defaults() -> RunnerArgs {
        RunnerArgs {
            threads: None,
            case_timeout: runner::CASE_TIMEOUT.as_secs(),
            seed: None,
            random_configs: None,
            expect_profile: None,
            expect_option: None,
            isolation: None,
        }
    }

    /// The runner's options for cases on threads (natively or in a guest);
    /// what the command line leaves unset of the randomized cases' settings
    /// comes from the environment.
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let given = Randomized {
            seed: self.seed,
            configurations: self.random_configs,
            share: None,
        };
        let from_env = Randomized::from_env().map_err(anyhow::Error::msg)?;
        Ok(RunOptions {
            threads: self.threads,
            timeout: Duration::from_secs(self.case_timeout),
            randomized: given.or(from_env),
            expect_profile: self.expect_profile,
            expect_option: self.expect_option,
            namespaces: self.isolation.unwrap_or_default(),
            ..RunOptions::default()
        })
    }
}

/// `--threads`: a count of at least one (with none, no case would ever
/// start and the run would wait forever).
fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(
            "0 threads would run no case: give 1 or more, or leave --threads out for \
             one per CPU"
                .to_owned(),
        ),
        Ok(threads) => Ok(threads),
        Err(e) => Err(format!("{text:?} is not a count of threads: {e}")),
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
    /// What keeps cases' code apart: `thread` (one process, a case that
    /// aborts ends the run) or `process` (each case in a re-executed child
    /// with its own process group, killed at the timeout; an abort or
    /// segfault is that case's harness error and the run goes on). About
    /// threads and processes only; `--isolation` chooses the namespaces.
    #[arg(long, value_enum, default_value_t = Isolation::Thread)]
    pub isolate: Isolation,
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
                kcidb_origin: harness::report::kcidb::DEFAULT_ORIGIN.into(),
            },
            runner: RunnerArgs::defaults(),
            isolate: Isolation::Thread,
        }
    }
}

/// Where the cases' namespaces come from with `isolate`, as `--isolation`
/// asked (`None`: the default): a case's child process
/// ([`Isolation::Process`]) makes its own, so only `fresh` goes with it.
fn namespaces_for(isolate: Isolation, asked: Option<Namespaces>) -> anyhow::Result<Namespaces> {
    match (isolate, asked) {
        (Isolation::Thread, asked) => Ok(asked.unwrap_or_default()),
        (Isolation::Process, None | Some(Namespaces::Fresh)) => Ok(Namespaces::Fresh),
        (Isolation::Process, Some(mode @ (Namespaces::Ahead | Namespaces::Reuse))) => {
            let name = mode
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_owned());
            anyhow::bail!(
                "--isolation {name} needs --isolate thread: a case's child process makes its \
                 own namespace, so none can be made ahead for it or reused (use --isolation \
                 fresh with --isolate process)"
            )
        }
    }
}

/// Runs `cases` natively and reports as `args` asks.
pub fn run(args: &RunArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let cases = args.selection.apply(cases)?;
    args.output.check_writable()?;
    let live = Live::new(&args.output, &cases);
    let (starting, progress) = (live.clone(), live.clone());
    let options = RunOptions {
        isolation: args.isolate,
        namespaces: namespaces_for(args.isolate, args.runner.isolation)?,
        ..args.runner.options()?
    };
    match run_report(
        &cases,
        &options,
        move |started| starting.start(started),
        move |result| progress.result(result),
    ) {
        Ok(report) => live.finish(&report),
        Err(e) => {
            let outcome = e.outcome();
            match &outcome {
                Outcome::Skip(reason) => eprintln!("portrange: skipping every case: {reason}"),
                _ => eprintln!(
                    "portrange: harness error, no case can run: {}",
                    netns_util::error_chain(&e)
                ),
            }
            live.finish(&unrunnable_report("running kernel", &cases, &outcome))
        }
    }
}

/// The report of a run in which no case could run: every case gets
/// `outcome` (a skip or a harness error with its reason), and so do the
/// probes.
pub fn unrunnable_report(target: &str, cases: &[Case], outcome: &Outcome) -> RunReport {
    let reason = match outcome {
        Outcome::Skip(m) | Outcome::Error(m) | Outcome::Fail(m) => m.clone(),
        Outcome::Pass => String::new(),
    };
    RunReport {
        target: target.to_owned(),
        probes: Probes {
            kernel: "unknown".into(),
            build: String::new(),
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

/// The report of a native run, or why no case can run here at all: a lack
/// of privileges (skip) or a harness failure, told apart by type.
/// `on_start` hears the report before any case runs (target, probes, no
/// results yet), `on_result` each result as its case ends.
pub fn run_report(
    cases: &[Case],
    options: &RunOptions,
    on_start: impl FnOnce(&RunReport),
    on_result: impl Fn(&CaseResult) + Send + Sync + 'static,
) -> Result<RunReport, SetupError> {
    let started = Instant::now();
    let probes = Probes::setup()?;
    let probed = Instant::now();
    let expectation = runner::expectation(options, &probes).note();
    let mut report = RunReport {
        target: "running kernel".into(),
        probes,
        notes: vec![
            expectation,
            options.isolation.note().to_owned(),
            options.namespaces.note().to_owned(),
        ],
        results: Vec::new(),
        phases: Phases::default(),
    };
    on_start(&report);
    let ran = runner::run_all(cases, &report.probes, options, on_result);
    report.results = ran.results;
    report.notes.extend(ran.notes);
    report.phases = Phases {
        probes_micros: Phases::micros(probed - started),
        cases_micros: Phases::micros(probed.elapsed()),
        ..Phases::default()
    };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_threads_are_refused_and_a_count_is_taken() {
        let error = parse_threads("0").unwrap_err();
        assert!(error.starts_with("0 threads would run no case"), "{error}");
        assert_eq!(parse_threads("3"), Ok(3));
        assert!(parse_threads("-1").is_err());
    }
}
