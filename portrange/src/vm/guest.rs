//! The guest side: `portrange` running as `/init` inside the VM.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qemu::guest::Guest;

use crate::vm::{GuestMessage, SuiteRequest};
use harness::outcome::{CaseResult, Totals};
use harness::probe::{Availability, Probes, SetupError};
use harness::report::Phases;
use harness::runner::{Release, RunOptions, run_all};
use harness::{Case, Family, Proto, Variant};
use qemu::Unavailable;

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
    if let Some(command_line) = outbox.with_guest(|guest| guest.command_line().to_owned()) {
        outbox.send(&GuestMessage::Note {
            text: format!("kernel command line: {command_line}"),
        });
    }
    let unavailable = outbox
        .with_guest(|guest| guest.module_report().unavailable.clone())
        .unwrap_or_default();
    for module in &unavailable {
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
    let probes = blame_modules(probes, &unavailable);
    outbox.send(&GuestMessage::Probes {
        probes: probes.clone(),
    });
    let probed = uptime();
    let sender = outbox.clone();
    let options = RunOptions {
        release: Release::AtExit,
        ..options.clone()
    };
    outbox.send(&GuestMessage::Note {
        text: harness::runner::expectation(&options, &probes).note(),
    });
    outbox.send(&GuestMessage::Note {
        text: options.namespaces.note().to_owned(),
    });
    let ran = run_all(&cases, &probes, &options, move |result| {
        sender.send(&GuestMessage::Result {
            result: result.clone(),
        });
    });
    for text in ran.notes {
        outbox.send(&GuestMessage::Note { text });
    }
    let results = ran.results;
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

/// Puts the reason a protocol's module is unavailable (not in the kernel,
/// or refused by it: an unsigned module where signatures are enforced)
/// into the skip reason of that protocol's variants, which the probes found
/// missing: SCTP's cases then say why `socket()` answered
/// EPROTONOSUPPORT. A module serves the protocol of its name (`sctp`).
fn blame_modules(mut probes: Probes, unavailable: &[Unavailable]) -> Probes {
    for &proto in Proto::ALL {
        let Some(module) = unavailable
            .iter()
            .find(|module| module.name.replace('-', "_") == proto.name())
        else {
            continue;
        };
        for variant in Variant::matrix(&[proto], Family::ALL) {
            if let Some(Availability::Missing(reason)) =
                probes.variants.get_mut(&variant.to_string())
            {
                *reason = format!(
                    "module {} is unavailable: {}; so {reason}",
                    module.name, module.reason
                );
            }
        }
    }
    probes
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_refused_module_is_the_skip_reason_of_its_protocol_only() {
        let missing = |reason: &str| Availability::Missing(reason.to_owned());
        let probes = Probes {
            kernel: "6.12.117".into(),
            build: String::new(),
            option: Availability::Available,
            variants: BTreeMap::from([
                ("sctp4".into(), missing("SCTP over IPv4 is not available")),
                ("sctp6".into(), missing("SCTP over IPv6 is not available")),
                ("tcp4".into(), Availability::Available),
                ("mptcp4".into(), missing("MPTCP over IPv4 is not available")),
            ]),
            profiles: BTreeMap::new(),
        };
        let refused = Unavailable {
            name: "sctp".into(),
            reason: "the kernel refused /modules/sctp.ko (finit_module: EKEYREJECTED)".into(),
        };
        let blamed = blame_modules(probes, &[refused]);
        let expectation = harness::runner::expectation(&RunOptions::default(), &blamed);
        assert_eq!(
            blamed.gate(
                Variant {
                    proto: Proto::Sctp,
                    family: Family::V6,
                },
                &expectation,
                &harness::profile::Tally::default(),
            ),
            harness::probe::Gate::Skip(
                "module sctp is unavailable: the kernel refused /modules/sctp.ko \
                 (finit_module: EKEYREJECTED); so SCTP over IPv6 is not available"
                    .into()
            )
        );
        assert_eq!(
            blamed.variants["mptcp4"],
            missing("MPTCP over IPv4 is not available")
        );
        assert_eq!(blamed.variants["tcp4"], Availability::Available);
    }
}
