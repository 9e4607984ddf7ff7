//! `Isolation::Process`: each case in a child process of its own.
//!
//! The child is a re-exec of the running program (`/proc/self/exe
//! __portrange_isolated_case NAME`), not a bare fork: the runner is
//! multi-threaded (libtest-mimic's pool, other cases' threads), and after
//! fork() only async-signal-safe calls are sound until exec, while a case
//! allocates, spawns threads and builds namespaces. The new image starts
//! single-threaded, finds the case by name in its own catalogue
//! ([`serve_isolated_case`]), runs it on its main thread and writes the
//! outcome as one JSON document to its stdout, a pipe only the parent
//! reads; whatever the case itself prints to stdout goes to stderr, so the
//! result and a report on the parent's stdout stay clean. As in
//! kselftest_harness.h the child leads a process group of its own, and at
//! the timeout the whole group is killed; it also dies with the thread
//! that started it (`PR_SET_PDEATHSIG`). A child killed by a signal (an
//! abort, a segfault) is a harness error naming the signal, and the run
//! goes on.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;

use netns_util::panic_text;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{BodySettings, Observed, Release, RunOptions, run_in_fresh_netns};
use crate::case::Case;
use crate::outcome::Outcome;

/// The first argument that makes the program a case's child.
const CHILD_ARG: &str = "__portrange_isolated_case";

/// The environment variable carrying the run's options to the child, as JSON.
const OPTIONS_ENV: &str = "PORTRANGE_ISOLATED_OPTIONS";

/// Runs `case` in a re-executed child of this program and returns what it
/// observed, or an error naming the signal that killed it, the status it
/// exited with, or the timeout at which its process group was killed.
pub(super) fn run(case: &Case, options: &RunOptions) -> Observed {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return Observed::error(format!("cannot find this program to re-run it: {e}")),
    };
    let encoded = match serde_json::to_string(options) {
        Ok(encoded) => encoded,
        Err(e) => return Observed::error(format!("cannot encode the run's options: {e}")),
    };
    let mut command = Command::new(&program);
    command
        .arg(CHILD_ARG)
        .arg(&case.name)
        .env(OPTIONS_ENV, encoded)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    child_lifetime::bind_to_this_thread(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Observed::error(format!(
                "cannot start the case's process ({}): {e}",
                program.display()
            ));
        }
    };
    let Some(mut stdout) = child.stdout.take() else {
        return kill_group(child, "the case's process has no result pipe".into());
    };
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut result = Vec::new();
        let read = stdout.read_to_end(&mut result).map(|_| result);
        // The receiver is gone only after a timeout was reported.
        let _ = sender.send(read);
    });
    match receiver.recv_timeout(options.timeout) {
        Ok(Ok(result)) => match child.wait() {
            Ok(status) => judge(status, &result),
            Err(e) => Observed::error(format!("waiting for the case's process: {e}")),
        },
        Ok(Err(e)) => kill_group(child, format!("reading the case's result pipe: {e}")),
        Err(_) => kill_group(
            child,
            format!(
                "timed out after {} s (the case is stuck in the kernel or in a blocking call); \
                 its process group was killed",
                options.timeout.as_secs()
            ),
        ),
    }
}

/// Kills the child's process group, reaps the child and reports `message`.
fn kill_group(mut child: Child, message: String) -> Observed {
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // ESRCH only: the group is already gone.
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
    Observed::error(message)
}

/// The outcome a finished child reported, or why there is none.
fn judge(status: ExitStatus, result: &[u8]) -> Observed {
    if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal)
            .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned());
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        return Observed::error(format!("the case's process was killed by {name}{core}"));
    }
    match serde_json::from_slice::<Observed>(result) {
        Ok(observed) if status.success() => observed,
        _ => Observed::error(format!(
            "the case's process exited with status {} without a result",
            status.code().unwrap_or(-1)
        )),
    }
}

/// The child's side: when this process was started by the runner for one
/// case (`Isolation::Process`), runs that case, writes its outcome to
/// stdout and exits; otherwise returns at once. A program that offers
/// process isolation calls this first thing in `main`, with the same
/// cases it runs.
pub fn serve_isolated_case(cases: &[Case]) {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(CHILD_ARG) {
        return;
    }
    let code = match serve(cases, args.next()) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("portrange: isolated case: {message}");
            2
        }
    };
    std::process::exit(code)
}

fn serve(cases: &[Case], name: Option<String>) -> Result<(), String> {
    let name = name.ok_or("no case name after the isolated-case argument")?;
    let case = cases
        .iter()
        .find(|case| case.name == name)
        .ok_or_else(|| format!("no case named {name}"))?;
    let options: RunOptions = std::env::var(OPTIONS_ENV)
        .map_err(|e| format!("{OPTIONS_ENV}: {e}"))
        .and_then(|json| serde_json::from_str(&json).map_err(|e| format!("{OPTIONS_ENV}: {e}")))?;
    // The result keeps the pipe to itself: the case's own prints to
    // stdout go to stderr.
    let mut result = std::fs::File::from(
        nix::unistd::dup(std::io::stdout()).map_err(|e| format!("dup(stdout): {e}"))?,
    );
    nix::unistd::dup2_stdout(std::io::stderr())
        .map_err(|e| format!("dup2(stderr, stdout): {e}"))?;
    let observed = panic::catch_unwind(AssertUnwindSafe(|| {
        run_in_fresh_netns(case, BodySettings::of(&options), Release::AfterCase)
    }))
    .unwrap_or_else(|payload| {
        let message = format!("case panicked: {}", panic_text(&*payload));
        Observed::outcome(Outcome::Fail(message))
    });
    let encoded = serde_json::to_vec(&observed).map_err(|e| format!("encoding the result: {e}"))?;
    result
        .write_all(&encoded)
        .map_err(|e| format!("writing the result: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Profile, Property};

    #[test]
    fn a_child_killed_by_a_signal_is_an_error_naming_it() {
        // wait(2) status words: the signal in the low 7 bits, 0x80 for a core.
        assert_eq!(
            judge(ExitStatus::from_raw(libc::SIGABRT | 0x80), b"").outcome,
            Outcome::Error("the case's process was killed by SIGABRT, core dumped".into())
        );
        assert_eq!(
            judge(ExitStatus::from_raw(libc::SIGSEGV), b"{}").outcome,
            Outcome::Error("the case's process was killed by SIGSEGV".into())
        );
    }

    #[test]
    fn a_child_without_a_result_is_an_error_and_its_result_is_taken_as_sent() {
        assert_eq!(
            judge(ExitStatus::from_raw(2 << 8), b"").outcome,
            Outcome::Error("the case's process exited with status 2 without a result".into())
        );
        assert_eq!(
            judge(
                ExitStatus::from_raw(0),
                b"{\"outcome\": {\"outcome\": \"pass\""
            )
            .outcome,
            Outcome::Error("the case's process exited with status 0 without a result".into())
        );
        let sent = Observed {
            outcome: Outcome::Fail("expected 41000".into()),
            profile: Some((Property::ConnectParity, Profile::Upstream)),
            note: None,
        };
        let observed = judge(ExitStatus::from_raw(0), &serde_json::to_vec(&sent).unwrap());
        assert_eq!(observed.outcome, sent.outcome);
        assert_eq!(observed.profile, sent.profile);
    }
}
