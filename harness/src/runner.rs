//! Running cases: each in a fresh namespace on a thread of its own (or, with
//! [`Isolation::Process`], in a child process of its own), many at once on
//! libtest-mimic's thread pool. With [`Namespaces::Ahead`] each case's
//! fresh namespace is made ahead of time on another thread; with
//! [`Namespaces::Reuse`] a case may get a namespace an earlier case used,
//! once that is proven back to a fresh one's state (module `pool`).

mod pool;
mod process;

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use netns_util::{Netns, panic_text};
use require::{Required, Requirement};

use crate::case::{Case, CaseError, Ctx};
use crate::outcome::{CaseResult, Outcome};
use crate::probe::{Gate, Probes};
use crate::profile::{Expectation, OptionPresence, Profile, Property, RequiredProtocols, Tally};
use crate::randomized::Randomized;
use pool::{Pool, Pooled};

pub use process::serve_isolated_case;

/// How long one case may take before it is reported as a harness error.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// How cases are scheduled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunOptions {
    /// Cases run at once; libtest-mimic's default (one per CPU) when `None`.
    pub threads: Option<usize>,
    /// Per-case timeout.
    pub timeout: Duration,
    /// Seed and configuration count of the randomized cases.
    pub randomized: Randomized,
    /// The kernel profile every property must match (`--expect-profile`);
    /// `None`: expected from the kernel's version ([`Expectation`]).
    #[serde(default)]
    pub expect_profile: Option<Profile>,
    /// Whether the kernel must have the option (`--expect-option`);
    /// `None`: a pinned profile or the release line decides.
    #[serde(default)]
    pub expect_option: Option<OptionPresence>,
    /// Protocols the kernel's configuration enables (a kernel built with
    /// the project's fragment): missing, they fail instead of skipping.
    #[serde(default)]
    pub required_protocols: RequiredProtocols,
    /// When each case's namespace is released; not part of a request to a
    /// guest, whose `/init` chooses for itself.
    #[serde(skip)]
    pub release: Release,
    /// What keeps cases apart; not part of a request to a guest, whose
    /// `/init` is already a process of its own.
    #[serde(skip)]
    pub isolation: Isolation,
    /// Whether a case's namespace is made for it, made ahead for it, or
    /// may be a proven-clean one reused; carried to a guest.
    #[serde(default)]
    pub namespaces: Namespaces,
}

/// Where each case's network namespace comes from (`--isolation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Namespaces {
    /// A namespace made for the case, on the case's own thread, and
    /// released after it.
    #[default]
    Fresh,
    /// A namespace made as `fresh` makes one, but ahead of time on another
    /// thread (a bounded queue of one per worker and one more), so that no
    /// case waits for one while a CPU is free; used by one case only and
    /// released after it; those no case took are released when the run
    /// ends. Only with thread isolation (`--isolate thread`).
    Ahead,
    /// A namespace an earlier case used, kept only when a check proved it
    /// back to a fresh one's state (no socket of any protocol, no
    /// TIME_WAIT, the port sysctls written back and read back, `lo` up, no
    /// extra link, address, route or rule); otherwise a fresh one made
    /// ahead of time. Only with thread isolation (`--isolate thread`).
    Reuse,
}

impl Namespaces {
    /// One line for reports saying where the cases' namespaces came from.
    pub fn note(self) -> &'static str {
        match self {
            Namespaces::Fresh => "namespaces: fresh (each case in a network namespace made for it)",
            Namespaces::Ahead => {
                "namespaces: ahead (each case in a network namespace made for it ahead of time \
                 on another thread, used by no other case and released after it)"
            }
            Namespaces::Reuse => {
                "namespaces: reuse (a case's namespace is used again only when proven back to a \
                 fresh one's state: no socket of any protocol, no TIME_WAIT, port sysctls \
                 written back and read back, lo up, no extra link, address, route or rule; \
                 otherwise a fresh one made ahead of time)"
            }
        }
    }
}

/// What keeps one case from taking others down with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Isolation {
    /// A thread of its own in the runner's process: cheap, and a panic or
    /// a hang stays with its case, but a case that aborts or segfaults
    /// ends the whole run.
    #[default]
    Thread,
    /// A child process of its own (a re-exec of the program) leading its
    /// own process group, killed as a group at the timeout: an abort or a
    /// segfault is a harness error for that case naming the signal. The
    /// program must call `serve_isolated_case` first thing in `main`.
    Process,
}

impl Isolation {
    /// One line for reports saying which isolation a run used.
    pub fn note(self) -> &'static str {
        match self {
            Isolation::Thread => {
                "isolation: thread (each case on a thread of its own in one process; \
                 a case that aborts ends the run)"
            }
            Isolation::Process => {
                "isolation: process (each case in a child process and process group of \
                 its own, the group killed at the timeout)"
            }
        }
    }
}

/// When a case's namespace is released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Release {
    /// As the case ends, so a long run holds one namespace per running case.
    #[default]
    AfterCase,
    /// When the process ends. For a guest's `/init`, which powers the
    /// machine off right after the run, so the kernel never tears them
    /// down: under TCG a namespace made and dropped in a loop took 19 ms,
    /// one made and kept 6 ms (the teardown holds up the next creation),
    /// and their memory (about 0.2 MiB each) is the guest's to spend.
    AtExit,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: None,
            timeout: CASE_TIMEOUT,
            randomized: Randomized::default(),
            expect_profile: None,
            expect_option: None,
            required_protocols: RequiredProtocols::default(),
            release: Release::AfterCase,
            isolation: Isolation::Thread,
            namespaces: Namespaces::default(),
        }
    }
}

/// Runs one case to an outcome; never panics, never hangs past the
/// options' timeout.
///
/// The case's body runs on a new thread that enters a new namespace, brings
/// `lo` up and applies the case's sysctls first. A case still running at
/// the timeout is left behind (its namespace dies with the process) and
/// reported as a harness error. The profiles the run has seen are in
/// `tally` ([`Probes::seed`] first): a case whose profile mixes with them
/// fails.
pub fn run_case(case: &Case, probes: &Probes, options: &RunOptions, tally: &Tally) -> CaseResult {
    run_case_from(case, probes, options, None, tally)
}

/// What `options` and the probed release expect of the kernel.
pub fn expectation(options: &RunOptions, probes: &Probes) -> Expectation {
    Expectation::new(
        options.expect_profile,
        options.expect_option,
        options.required_protocols.clone(),
        probes.release(),
    )
}

/// [`run_case`], the namespace taken from `pool` when there is one.
fn run_case_from(
    case: &Case,
    probes: &Probes,
    options: &RunOptions,
    pool: Option<&Arc<Pool>>,
    tally: &Tally,
) -> CaseResult {
    let start = Instant::now();
    let expectation = expectation(options, probes);
    let mut observed = match probes.gate(case.variant, &expectation, tally) {
        Gate::Fail(failure) => Observed::outcome(Outcome::Fail(failure)),
        Gate::Skip(reason) => Observed::outcome(Outcome::Skip(reason)),
        Gate::Error(reason) => Observed::outcome(Outcome::Error(reason)),
        Gate::Run => match options.isolation {
            Isolation::Thread => run_isolated(case, options, pool),
            Isolation::Process => process::run(case, options),
        },
    };
    if let (Outcome::Pass, Some((property, profile))) = (&observed.outcome, observed.profile) {
        let seen_in = case.variant.to_string();
        if let Some(failure) = expectation
            .judge(property, profile)
            .or_else(|| tally.check(property, profile, &seen_in))
        {
            observed.outcome = Outcome::Fail(failure);
        }
    }
    CaseResult {
        profile: observed
            .profile
            .map(|(_, profile)| profile.name().to_owned()),
        property: observed
            .profile
            .map(|(property, _)| property.name().to_owned()),
        note: observed.note,
        ..CaseResult::new(case.name.clone(), observed.outcome, start.elapsed())
    }
}

/// What a case's thread (or process) reports: its outcome, and the profile
/// and note it recorded.
#[derive(serde::Serialize, serde::Deserialize)]
struct Observed {
    outcome: Outcome,
    profile: Option<(Property, Profile)>,
    note: Option<String>,
}

impl Observed {
    fn outcome(outcome: Outcome) -> Self {
        Observed {
            outcome,
            profile: None,
            note: None,
        }
    }

    fn error(message: String) -> Self {
        Observed::outcome(Outcome::Error(message))
    }
}

/// Runs the case on a thread of its own: in a namespace of its own, or in
/// one leased from `pool`, which the thread enters by its descriptor and
/// which goes back to the pool (to be released, or checked for reuse) only
/// when the case ended without panicking and within the timeout.
fn run_isolated(case: &Case, options: &RunOptions, pool: Option<&Arc<Pool>>) -> Observed {
    let leased = match pool.map(|pool| pool.take()).transpose() {
        Ok(leased) => leased,
        Err(message) => return Observed::error(message),
    };
    let lease = leased.as_ref().map(Pooled::lease);
    let (sender, receiver) = mpsc::channel();
    let owned = case.clone();
    let (settings, release, timeout) =
        (BodySettings::of(options), options.release, options.timeout);
    let thread_pool = pool.cloned();
    let spawned = thread::Builder::new()
        .name(case.name.clone())
        .spawn(move || {
            let run = || match &leased {
                None => run_in_fresh_netns(&owned, settings, release),
                Some(pooled) => run_in_leased_netns(&owned, &pooled.netns, settings),
            };
            let (observed, back) = match panic::catch_unwind(AssertUnwindSafe(run)) {
                Ok(observed) => (observed, leased),
                Err(payload) => {
                    let message = format!("case panicked: {}", panic_text(&*payload));
                    (Observed::outcome(Outcome::Fail(message)), None)
                }
            };
            // The receiver is gone only after a timeout was reported. The
            // outcome goes first: the namespace's check is not the case's
            // time.
            let delivered = sender.send(observed).is_ok();
            if let Some(pool) = thread_pool {
                match back {
                    Some(pooled) if delivered => pool.give_back(pooled),
                    _ => pool.abandon(lease.unwrap_or_default()),
                }
            }
        });
    if let Err(e) = spawned {
        return Observed::error(format!("cannot start the case's thread: {e}"));
    }
    match receiver.recv_timeout(timeout) {
        Ok(observed) => observed,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            if let (Some(pool), Some(lease)) = (pool, lease) {
                pool.abandon(lease);
            }
            Observed::error(format!(
                "timed out after {} s (the case is stuck in the kernel or in a blocking call)",
                timeout.as_secs()
            ))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Observed::error("the case's thread ended without an outcome".into())
        }
    }
}

/// What of the run's options a case body sees through its [`Ctx`].
#[derive(Debug, Clone, Copy)]
struct BodySettings {
    randomized: Randomized,
    pinned: Option<Profile>,
}

impl BodySettings {
    fn of(options: &RunOptions) -> Self {
        BodySettings {
            randomized: options.randomized,
            pinned: options.expect_profile,
        }
    }
}

fn run_in_fresh_netns(case: &Case, settings: BodySettings, release: Release) -> Observed {
    let netns = match prepare(case) {
        Ok(netns) => netns,
        Err(e) => {
            let cause = netns_util::error_chain(&e);
            return Observed::error(format!("setting up the namespace: {cause}"));
        }
    };
    let observed = run_body(case, &netns, settings);
    if release == Release::AtExit {
        // The descriptor stays open, and the namespace alive, until the
        // process exits.
        std::mem::forget(netns);
    }
    observed
}

/// Enters a namespace from the pool (`lo` up, port sysctls a fresh
/// one's) by its descriptor and applies the case's sysctls.
fn run_in_leased_netns(case: &Case, netns: &Netns, settings: BodySettings) -> Observed {
    let entered = netns
        .enter_current_thread()
        .and_then(|()| apply_setup(case, netns));
    if let Err(e) = entered {
        let cause = netns_util::error_chain(&e);
        return Observed::error(format!("setting up the pooled namespace: {cause}"));
    }
    run_body(case, netns, settings)
}

fn run_body(case: &Case, netns: &Netns, settings: BodySettings) -> Observed {
    let ctx = Ctx::new(case.variant, netns, settings.randomized, settings.pinned);
    let outcome = match case.body.run(&ctx) {
        Ok(()) => Outcome::Pass,
        Err(CaseError::Fail(message)) => Outcome::Fail(message),
        Err(CaseError::Skip(reason)) => Outcome::Skip(reason),
        Err(CaseError::Harness(message)) => Outcome::Error(message),
    };
    Observed {
        outcome,
        profile: ctx.profile(),
        note: ctx.take_note(),
    }
}

/// Moves the case's thread into a namespace of its own, so `lo` and the
/// sysctls are set straight from this thread.
fn prepare(case: &Case) -> Result<Netns, netns_util::Error> {
    let netns = fresh_netns_here()?;
    apply_setup(case, &netns)?;
    Ok(netns)
}

/// Moves the calling thread into a new namespace and brings its `lo` up:
/// how every case's namespace is made, on the case's own thread
/// ([`Namespaces::Fresh`]) or on one the pool starts for it.
fn fresh_netns_here() -> Result<Netns, netns_util::Error> {
    let netns = Netns::unshare_current_thread()?;
    netns.loopback_up()?;
    Ok(netns)
}

/// Writes the case's sysctls from the calling thread, which is inside
/// `netns`.
fn apply_setup(case: &Case, netns: &Netns) -> Result<(), netns_util::Error> {
    if let Some((lo, hi)) = case.setup.port_range {
        netns.sysctl_write("net.ipv4.ip_local_port_range", &format!("{lo} {hi}"))?;
    }
    if let Some(ports) = case.setup.reserved_ports {
        netns.sysctl_write("net.ipv4.ip_local_reserved_ports", ports)?;
    }
    Ok(())
}

/// What [`run_all`] gives back.
#[derive(Debug)]
pub struct Ran {
    /// The results, in the order of the cases.
    pub results: Vec<CaseResult>,
    /// Notes for the report about the run itself (with
    /// [`Namespaces::Ahead`]: how many namespaces were made ahead and how
    /// many of them no case used; with [`Namespaces::Reuse`]: how many
    /// cases ran in reused namespaces, and why namespaces were dropped).
    pub notes: Vec<String>,
}

/// Runs `cases` on libtest-mimic's pool, calling `on_result` as each ends,
/// and returns the results in the order of `cases`.
///
/// libtest-mimic's own printing goes to /dev/null: the caller's reporters
/// own the output.
pub fn run_all(
    cases: &[Case],
    probes: &Probes,
    options: &RunOptions,
    on_result: impl Fn(&CaseResult) + Send + Sync + 'static,
) -> Ran {
    let options = &with_shared_budget(options, cases);
    let mut notes = Vec::new();
    let pool = match (options.namespaces, options.isolation) {
        (Namespaces::Ahead | Namespaces::Reuse, Isolation::Thread) => {
            let workers = options
                .threads
                .or_else(|| thread::available_parallelism().ok().map(usize::from))
                .unwrap_or(1);
            let made = match options.namespaces {
                Namespaces::Reuse => Pool::reusing(workers, options.release),
                _ => Pool::ahead(workers, options.release),
            };
            match made {
                Ok(pool) => Some(Arc::new(pool)),
                Err(reason) => {
                    notes.push(format!(
                        "namespaces: no pool ({reason}); every case got a fresh namespace"
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    let tally = Arc::new(Tally::default());
    probes.seed(&tally);
    let probes = Arc::new(probes.clone());
    let on_result = Arc::new(on_result);
    let slots: Arc<Mutex<Vec<Option<CaseResult>>>> = Arc::new(Mutex::new(vec![None; cases.len()]));
    let trials = cases
        .iter()
        .enumerate()
        .map(|(index, case)| {
            let (case, probes, on_result, slots, pool, tally) = (
                case.clone(),
                Arc::clone(&probes),
                Arc::clone(&on_result),
                Arc::clone(&slots),
                pool.clone(),
                Arc::clone(&tally),
            );
            let options = options.clone();
            Trial::test(case.name.clone(), move || {
                let result = run_case_from(&case, &probes, &options, pool.as_ref(), &tally);
                on_result(&result);
                slots.lock().expect("results lock")[index] = Some(result);
                Ok(())
            })
        })
        .collect();
    let arguments = Arguments {
        test_threads: options.threads,
        logfile: Some("/dev/null".into()),
        ..Arguments::default()
    };
    // The outcomes are read from the slots; libtest-mimic's summary is not needed.
    let _ = libtest_mimic::run(&arguments, trials);
    notes.extend(pool.map(|pool| pool.finish()));
    let slots = std::mem::take(&mut *slots.lock().expect("results lock"));
    let results = slots
        .into_iter()
        .zip(cases)
        .map(|(slot, case)| {
            slot.unwrap_or_else(|| {
                let outcome = Outcome::Error("the runner never reported this case".into());
                CaseResult::new(case.name.clone(), outcome, Duration::ZERO)
            })
        })
        .collect();
    Ran { results, notes }
}

/// `options` with the run's budget for randomized cases shared among
/// those of `cases`.
fn with_shared_budget(options: &RunOptions, cases: &[Case]) -> RunOptions {
    let randomized = cases.iter().filter(|case| case.randomized).count();
    RunOptions {
        randomized: options.randomized.shared_among(randomized),
        ..options.clone()
    }
}

/// Entry point of a `harness = false` test target: the libtest command line
/// and output, one trial per case, skips shown as ignored with their reason.
/// The randomized cases' settings come from the environment
/// ([`Randomized::from_env`]); a bad value is exit status 2. Without the
/// privileges to make namespaces every trial is ignored with the reason,
/// or fails when `PORTRANGE_REQUIRE` includes `root`.
pub fn libtest_main(cases: Vec<Case>) -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    if let Some(refusal) = refused_thread_count(&arguments) {
        eprintln!("error: {refusal}");
        return std::process::ExitCode::from(2);
    }
    let randomized = match Randomized::from_env() {
        Ok(randomized) => randomized,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let required = match Required::from_env() {
        Ok(required) => required,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let options = with_shared_budget(
        &RunOptions {
            randomized,
            ..RunOptions::default()
        },
        &cases,
    );
    // A lack of privileges skips every trial (fails it under
    // PORTRANGE_REQUIRE=root); any other setup failure fails every trial,
    // naming it.
    let setup = Probes::setup().map_err(|e| match e.outcome() {
        Outcome::Skip(reason) => match required.missing(Requirement::Root, &reason) {
            Ok(()) => Outcome::Skip(reason),
            Err(message) => Outcome::Fail(message),
        },
        other => other,
    });
    let tally = Arc::new(Tally::default());
    if let Ok(probes) = &setup {
        probes.seed(&tally);
    }
    let trials = cases
        .into_iter()
        .map(|case| {
            let (setup, options, tally) = (setup.clone(), options.clone(), Arc::clone(&tally));
            Trial::ignorable_test(case.name.clone(), move || {
                let outcome = match setup {
                    Err(outcome) => outcome,
                    Ok(probes) => run_case(&case, &probes, &options, &tally).outcome,
                };
                match outcome {
                    Outcome::Pass => Ok(Completion::Completed),
                    Outcome::Skip(reason) => Ok(Completion::ignored_with(reason)),
                    Outcome::Fail(message) => Err(Failed::from(message)),
                    Outcome::Error(message) => {
                        Err(Failed::from(format!("harness error: {message}")))
                    }
                }
            })
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// Why `arguments` cannot run: `--test-threads 0`, with which libtest-mimic
/// starts no worker and waits forever (libtest itself refuses it).
fn refused_thread_count(arguments: &Arguments) -> Option<String> {
    (arguments.test_threads == Some(0)).then(|| {
        "--test-threads 0 would run no test and wait forever: give 1 or more, or leave it out \
         for one per CPU"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_test_threads_are_refused() {
        let zero = Arguments::from_iter(["conformance", "--test-threads", "0"]);
        let refusal = refused_thread_count(&zero).unwrap();
        assert!(
            refusal.starts_with("--test-threads 0 would run no test"),
            "{refusal}"
        );
        for fine in [
            &["conformance", "--test-threads", "1"][..],
            &["conformance"],
        ] {
            assert_eq!(refused_thread_count(&Arguments::from_iter(fine)), None);
        }
    }
}
