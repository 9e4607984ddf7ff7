//! Reporters: sinks that turn a run's results into text for people and
//! files for CI. Running never prints; reporters never run anything.

mod junit;
pub mod kcidb;
mod ktap;
mod text;

pub use junit::{document as junit_document, junit, suites as junit_suites};
pub use ktap::{KtapStream, ktap};
pub use text::{progress_line, summary};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::outcome::{CaseResult, Totals, Verdict};
use crate::probe::Probes;
use crate::profile::Property;

/// Everything a reporter needs about one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Where the cases ran (`running kernel`, `vm debian-6.12`, ...).
    pub target: String,
    /// What the probes found on that kernel.
    pub probes: Probes,
    /// Extra lines for the report header (modules missing, VM timing).
    pub notes: Vec<String>,
    /// One result per case, in catalogue order.
    pub results: Vec<CaseResult>,
    /// How long the run's phases took, where known.
    #[serde(default)]
    pub phases: Phases,
}

/// How long the phases of a run took, in microseconds; `None` for a phase
/// that did not happen or was not measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// Guest kernel start to `/init` ready (booted, set up, modules
    /// loaded): VM runs.
    pub boot_micros: Option<u64>,
    /// Probing what the kernel offers.
    pub probes_micros: Option<u64>,
    /// Running the cases.
    pub cases_micros: Option<u64>,
    /// QEMU start to exit: VM runs.
    pub vm_micros: Option<u64>,
}

impl Phases {
    /// A duration as this struct keeps it.
    pub fn micros(duration: std::time::Duration) -> Option<u64> {
        Some(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
    }
}

impl RunReport {
    /// Outcome counts.
    pub fn totals(&self) -> Totals {
        Totals::of(&self.results)
    }

    /// The run's verdict.
    pub fn verdict(&self) -> Verdict {
        self.totals().verdict()
    }

    /// Each kernel profile matched, with the number of cases and probes
    /// that matched it.
    pub fn profiles(&self) -> BTreeMap<&str, usize> {
        let mut profiles = BTreeMap::new();
        let from_cases = self.results.iter().filter_map(|r| r.profile.as_deref());
        let from_probes = self.probes.profiles.values().map(String::as_str);
        for profile in from_cases.chain(from_probes) {
            *profiles.entry(profile).or_insert(0) += 1;
        }
        profiles
    }

    /// The profiles each property matched (over its cases and, for MPTCP,
    /// the probes), properties in [`Property::ALL`]'s order and any other
    /// after them.
    pub fn profiles_by_property(&self) -> Vec<(&str, BTreeSet<&str>)> {
        let mut by_property: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let from_cases = self
            .results
            .iter()
            .filter_map(|r| Some((r.property.as_deref()?, r.profile.as_deref()?)));
        let from_probes = self
            .probes
            .profiles
            .values()
            .map(|p| (Property::Mptcp.name(), p.as_str()));
        for (property, profile) in from_cases.chain(from_probes) {
            by_property.entry(property).or_default().insert(profile);
        }
        let order = |name: &str| Property::ALL.iter().position(|p| p.name() == name);
        let mut properties: Vec<_> = by_property.into_iter().collect();
        properties.sort_by_key(|(name, _)| (order(name).is_none(), order(name)));
        properties
    }

    /// When the run's properties matched different profiles, which
    /// property matched which (`mixed: MPTCP as stable-6.1, connect()
    /// parity as upstream`); `None` when they agree.
    pub fn mixed(&self) -> Option<String> {
        let properties = self.profiles_by_property();
        let distinct: BTreeSet<&str> = properties.iter().flat_map(|(_, p)| p).copied().collect();
        if distinct.len() < 2 {
            return None;
        }
        let parts: Vec<String> = properties
            .into_iter()
            .map(|(property, profiles)| {
                let profiles: Vec<&str> = profiles.into_iter().collect();
                format!("{property} as {}", profiles.join(" and "))
            })
            .collect();
        Some(format!("mixed: {}", parts.join(", ")))
    }

    /// The profiles line of a summary (`none` when no case recorded one;
    /// [`RunReport::mixed`] when properties matched different profiles).
    pub fn profiles_line(&self) -> String {
        if let Some(mixed) = self.mixed() {
            return mixed;
        }
        let profiles = self.profiles();
        if profiles.is_empty() {
            return "none recorded".into();
        }
        profiles
            .iter()
            .map(|(name, count)| format!("{name} (matched {count} times)"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Output formats of `portrange run` and `portrange vm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// libtest-style lines as cases end, then a table and a verdict.
    Text,
    /// KTAP version 1, as kernel CI parses it.
    Ktap,
    /// JUnit XML.
    Junit,
    /// JSON: the whole report, with each case's and each phase's duration.
    Json,
    /// KCIDB (KernelCI's common database), schema v5.3: a checkout, a
    /// build and a test per case.
    Kcidb,
}

/// What a run knows about itself that its report's results do not say:
/// what formats that describe the kernel and its build (KCIDB) write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The CI system reporting (KCIDB's `origin`: lowercase letters,
    /// digits, `_`).
    pub origin: String,
    /// What names this run among the origin's runs (the rest of each
    /// KCIDB id after `origin:`).
    pub run_id: String,
    /// The kernel's architecture (`x86_64`, `arm64`); `None` when the run
    /// never learned it (its kernel could not be run at all).
    pub arch: Option<String>,
    /// The build.config or defconfig the kernel was built from, when this
    /// run built it.
    pub build_config: Option<PathBuf>,
    /// The kernel console's log, when the kernel faulted and it was kept.
    pub console_log: Option<PathBuf>,
}

/// Renders the whole report in a file format (`Text` gives the summary).
pub fn render(format: Format, report: &RunReport, provenance: &Provenance) -> String {
    match format {
        Format::Text => summary(report),
        Format::Ktap => ktap(report),
        Format::Junit => junit(report),
        Format::Json => json(report),
        Format::Kcidb => kcidb::kcidb(report, provenance),
    }
}

/// The report as pretty-printed JSON (the shape of [`RunReport`]'s serde
/// form), ending in a newline.
pub fn json(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
    text.push('\n');
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(any(test, feature = "fixture"))]
pub mod fixture {
    //! A report made by hand, for pinning what reporters print.

    use std::collections::BTreeMap;

    use super::RunReport;
    use crate::outcome::{CaseResult, Outcome};
    use crate::probe::{Availability, Probes};

    /// A small hand-made report (no kernel involved) for pinning reporter output.
    pub fn fake_report() -> RunReport {
        let result = |name: &str, outcome| {
            CaseResult::new(name, outcome, std::time::Duration::from_micros(1500))
        };
        let missing = "SCTP over IPv4 is not available in this kernel (socket: EPROTONOSUPPORT (Protocol not supported))";
        RunReport {
            target: "running kernel".into(),
            probes: Probes {
                kernel: "6.18.0-test".into(),
                build: String::new(),
                option: Availability::Available,
                variants: BTreeMap::from([
                    ("tcp4".into(), Availability::Available),
                    ("sctp4".into(), Availability::Missing(missing.into())),
                ]),
                profiles: BTreeMap::new(),
            },
            notes: vec!["vm: 3.2 s from QEMU start to exit".into()],
            phases: super::Phases {
                vm_micros: Some(3_200_000),
                ..super::Phases::default()
            },
            results: vec![
                CaseResult {
                    profile: Some("upstream".into()),
                    note: Some("500 configurations".into()),
                    ..result("tcp4/sockopt/round_trip", Outcome::Pass)
                },
                result(
                    "tcp4/bind_zero/exhausts_with_eaddrinuse",
                    Outcome::Fail("9th bind(): expected EADDRINUSE,\nbut it succeeded".into()),
                ),
                result("sctp4/sockopt/round_trip", Outcome::Skip(missing.into())),
                result(
                    "tcp4/connect/autobind_in_range",
                    Outcome::Error("timed out after 20 s".into()),
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::fake_report;
    use super::*;

    #[test]
    fn json_carries_the_whole_report_with_durations() {
        let report = fake_report();
        let text = json(&report);
        assert_eq!(serde_json::from_str::<RunReport>(&text).unwrap(), report);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["results"][0]["micros"], 1500);
        assert_eq!(value["phases"]["vm_micros"], 3_200_000);
        assert!(text.ends_with("}\n"));
    }
}
