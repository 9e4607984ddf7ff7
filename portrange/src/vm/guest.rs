//! The guest side: `portrange` running as `/init` inside the VM.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qemu::guest::Guest;

use crate::vm::{GuestMessage, SuiteRequest};
use harness::Case;
use harness::outcome::{CaseResult, Totals};
use harness::probe::{Probes, SetupError};
use harness::report::Phases;
use harness::runner::{Release, RunOptions, run_all};

/// Exit code sent when the guest was asked for something it does not know
/// or could not do it.
const BAD_REQUEST: i32 = 2;

/// Runs what the host asked for (the suite, or a payload binary), sends the
/// results, and powers the VM off. Never returns.
pub fn main(cases: Vec<Case>) -> ! {
    let mut guest = match qemu::guest::init() {
        Ok(guest) => guest,
        Err(e) => {
            eprintln!("portrange: {:#}", anyhow::Error::new(e));
            std::process::exit(BAD_REQUEST)
        }
    };
    let args = guest.args().to_vec();
    match args.split_first() {
        Some((mode, rest)) if mode == "exec" => {
            let code = guest.run_payload(rest).unwrap_or_else(|e| {
                let _ = guest.send_stderr(&format!(
                    "portrange guest: running the payload: {:#}",
                    anyhow::Error::new(e)
                ));
                BAD_REQUEST
            });
            guest.finish(code)
        }
        Some((mode, [request])) if mode == "suite" => {
            let request: SuiteRequest = match serde_json::from_str(request) {
                Ok(request) => request,
                Err(e) => {
                    let _ = guest.send_stderr(&format!("portrange guest: bad suite request: {e}"));
                    guest.finish(BAD_REQUEST)
                }
            };
            let outbox = Outbox(Arc::new(Mutex::new(Some(guest))));
            let selected = cases
                .into_iter()
                .filter(|c| request.cases.contains(&c.name))
                .collect();
            let code = run_suite(&outbox, selected, &request.options);
            outbox.finish(code)
        }
        _ => {
            let _ = guest.send_stderr(&format!("portrange guest: unknown request {args:?}"));
            guest.finish(BAD_REQUEST)
        }
    }
}

/// The guest shared by the runner's threads, sending one message at a
/// time; `None` only once [`Outbox::finish`] took it.
#[derive(Clone)]
struct Outbox(Arc<Mutex<Option<Guest>>>);

impl Outbox {
    fn with_guest<T>(&self, f: impl FnOnce(&mut Guest) -> T) -> Option<T> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_mut().map(f)
    }

    /// Sends a message; a failure is printed on the console, where the
    /// host's missing-results check will find the consequence.
    fn send(&self, message: &GuestMessage) {
        let text = serde_json::to_string(message).expect("guest messages serialize");
        if let Some(Err(e)) = self.with_guest(|guest| guest.send(&text)) {
            eprintln!(
                "portrange guest: sending a message: {:#}",
                anyhow::Error::new(e)
            );
        }
    }

    fn finish(self, code: i32) -> ! {
        let taken = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match taken {
            Some(guest) => guest.finish(code),
            None => std::process::exit(code),
        }
    }
}

fn run_suite(outbox: &Outbox, cases: Vec<Case>, options: &RunOptions) -> i32 {
    let started = uptime();
    let unavailable = outbox
        .with_guest(|guest| guest.module_report().unavailable.clone())
        .unwrap_or_default();
    for module in unavailable {
        outbox.send(&GuestMessage::Note {
            text: format!("module {}: {}", module.name, module.reason),
        });
    }
    let probes = match Probes::run().map_err(SetupError::from) {
        Ok(probes) => probes,
        Err(e) => {
            // Every case gets the reason: a skip only for a lack of
            // privileges, a harness error naming the failure otherwise.
            let outcome = e.outcome();
            outbox.send(&GuestMessage::Note {
                text: format!(
                    "no case can run in the guest: {}",
                    netns_util::error_chain(&e)
                ),
            });
            let results: Vec<CaseResult> = cases
                .iter()
                .map(|case| CaseResult::new(case.name.clone(), outcome.clone(), Duration::ZERO))
                .collect();
            for result in &results {
                outbox.send(&GuestMessage::Result {
                    result: result.clone(),
                });
            }
            return i32::from(Totals::of(&results).verdict().exit_code());
        }
    };
    outbox.send(&GuestMessage::Probes {
        probes: probes.clone(),
    });
    let probed = uptime();
    let sender = outbox.clone();
    let options = RunOptions {
        release: Release::AtExit,
        ..options.clone()
    };
    let results = run_all(&cases, &probes, &options, move |result| {
        sender.send(&GuestMessage::Result {
            result: result.clone(),
        });
    });
    outbox.send(&GuestMessage::Phases {
        phases: Phases {
            boot_micros: micros(started),
            probes_micros: micros(probed - started),
            cases_micros: micros(uptime() - probed),
            vm_micros: None,
        },
    });
    i32::from(Totals::of(&results).verdict().exit_code())
}

/// Seconds as microseconds, the unit of [`Phases`].
fn micros(seconds: f64) -> Option<u64> {
    Some((seconds * 1e6).round() as u64)
}

/// Seconds since the guest kernel started (`/proc/uptime`), 0 if unreadable.
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
