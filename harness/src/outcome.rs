//! What a case came to, and what a whole run came to.

use std::fmt;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// The outcome of one case.
///
/// `Error` is "the harness could not run this" (no namespace, a timeout,
/// a panic in the harness): never a conformance verdict on the kernel,
/// never a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "lowercase")]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// A check did not hold; the message says which and what was seen.
    Fail(String),
    /// The case cannot run on this kernel; the message says why.
    Skip(String),
    /// The harness could not run the case; the message says why.
    Error(String),
}

/// One case's name, outcome and duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's full name (`tcp4/bind_zero/exhausts_with_eaddrinuse`).
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time of the case in microseconds.
    pub micros: u64,
    /// The kernel profile the case's behaviour matched, for properties
    /// that differ between kernel generations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The property whose profile that is (`connect() parity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// A line the case recorded about what it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseResult {
    /// A result with no profile and no note.
    pub fn new(name: impl Into<String>, outcome: Outcome, elapsed: std::time::Duration) -> Self {
        CaseResult {
            name: name.into(),
            outcome,
            micros: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            profile: None,
            property: None,
            note: None,
        }
    }
}

/// Counts of outcomes over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Passed cases.
    pub pass: usize,
    /// Failed cases.
    pub fail: usize,
    /// Skipped cases.
    pub skip: usize,
    /// Cases the harness could not run.
    pub error: usize,
}

/// The verdict of a run, in kselftest's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every case ran and passed (skips allowed, at least one pass).
    Pass,
    /// At least one case failed or could not be run.
    Fail,
    /// Nothing ran: every case was skipped (or there were none).
    Skip,
}

impl Totals {
    /// Counts the outcomes of `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Totals {
        let mut totals = Totals::default();
        for result in results {
            match result.outcome {
                Outcome::Pass => totals.pass += 1,
                Outcome::Fail(_) => totals.fail += 1,
                Outcome::Skip(_) => totals.skip += 1,
                Outcome::Error(_) => totals.error += 1,
            }
        }
        totals
    }

    /// The verdict these counts give.
    pub fn verdict(&self) -> Verdict {
        if self.fail + self.error > 0 {
            Verdict::Fail
        } else if self.pass == 0 {
            Verdict::Skip
        } else {
            Verdict::Pass
        }
    }
}

impl Verdict {
    /// kselftest's exit code: 0 pass, 1 fail, 4 skip.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Skip => 4,
        }
    }

    /// The exit code as a process exit code.
    pub fn process_exit(self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        })
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped, {} errors",
            self.pass, self.fail, self.skip, self.error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome) -> CaseResult {
        CaseResult::new("x", outcome, std::time::Duration::from_micros(1))
    }

    #[test]
    fn exit_codes_follow_kselftest() {
        let pass = result(Outcome::Pass);
        let skip = result(Outcome::Skip("no sctp".into()));
        let fail = result(Outcome::Fail("bad".into()));
        let error = result(Outcome::Error("no netns".into()));
        assert_eq!(Totals::of([&pass, &skip]).verdict().exit_code(), 0);
        assert_eq!(Totals::of([&skip, &skip]).verdict().exit_code(), 4);
        assert_eq!(Totals::of([]).verdict().exit_code(), 4);
        assert_eq!(Totals::of([&pass, &fail]).verdict().exit_code(), 1);
        assert_eq!(Totals::of([&pass, &error]).verdict().exit_code(), 1);
    }

    #[test]
    fn results_round_trip_through_json() {
        let original = result(Outcome::Skip("SCTP: EPROTONOSUPPORT".into()));
        let json = serde_json::to_string(&original).unwrap();
        assert_eq!(
            json,
            r#"{"name":"x","outcome":"skip","message":"SCTP: EPROTONOSUPPORT","micros":1}"#
        );
        assert_eq!(serde_json::from_str::<CaseResult>(&json).unwrap(), original);
    }
}
