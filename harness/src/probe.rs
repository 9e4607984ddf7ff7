//! What the kernel under test offers, decided once before any case runs.
//!
//! libtest-mimic has no skip decided from inside a running trial that
//! reports can rely on before the run, so skips are decided here, up front,
//! and carried with their reasons into every report.
//!
//! The probes decide presence, nothing more: only ENOPROTOOPT from
//! `setsockopt` says the option is not there, and only EPROTONOSUPPORT,
//! EAFNOSUPPORT or ESOCKTNOSUPPORT from `socket()` say a protocol is not.
//! Any other answer means it is there (the cases then judge it by
//! property) or that the harness failed. Whether an absence is a skip or a
//! failure is the [`Expectation`]'s to say.

use std::collections::BTreeMap;
use std::io;
use std::thread;

use netns_util::Netns;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::describe;
use crate::outcome::Outcome;
use crate::profile::{Expectation, Profile, Property, Tally};
use crate::release::{OptionRule, Release};
use crate::sockopt;
use crate::variant::{Family, Proto, Variant};

/// Whether the kernel offers something the cases need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    /// It is there.
    Available,
    /// It is there (the kernel knows the option), but it refused the
    /// probe's valid setting; the reason names the errno. The cases run
    /// and say by property what is broken.
    Refused(String),
    /// It is not there; the reason names the probe and its errno.
    Missing(String),
    /// The probe failed in a way that says nothing about the kernel's
    /// features; cases depending on it are harness errors, not skips.
    Broken(String),
}

/// What the probes say about running one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Run it.
    Run,
    /// Skip it, for this reason.
    Skip(String),
    /// Fail it without running, for this reason (the kernel lacks what it
    /// must have, or shows a profile it must not).
    Fail(String),
    /// Report a harness error, for this reason.
    Error(String),
}

/// The kernel under test, as the probes saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probes {
    /// `uname -r` of the kernel.
    pub kernel: String,
    /// `uname -v` of the kernel (Debian's names its package version).
    #[serde(default)]
    pub build: String,
    /// Whether `IP_LOCAL_PORT_RANGE` exists at all.
    pub option: Availability,
    /// Whether each variant's sockets can be made and take the option.
    pub variants: BTreeMap<String, Availability>,
    /// Kernel profiles the probes matched, by variant (MPTCP's acceptance
    /// of the option differs between profiles).
    #[serde(default)]
    pub profiles: BTreeMap<String, String>,
}

/// Why no case can run at all, typed where the failure arose: only a lack
/// of privileges may become a skip; anything else is a harness error.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No privilege to make network namespaces (not root and no user
    /// namespace, or EPERM from `unshare`): every case is skipped.
    #[error(transparent)]
    NoPrivileges(Box<netns_util::Error>),
    /// Anything else (a netlink error bringing `lo` up, `unshare` failing
    /// with ENOSPC, the probing thread panicking): every case is a harness
    /// error naming it.
    #[error(transparent)]
    Harness(Box<netns_util::Error>),
}

impl From<netns_util::Error> for SetupError {
    fn from(error: netns_util::Error) -> Self {
        if error.is_no_privileges() {
            SetupError::NoPrivileges(Box::new(error))
        } else {
            SetupError::Harness(Box::new(error))
        }
    }
}

impl SetupError {
    /// The outcome every case gets: a skip with the reason for a lack of
    /// privileges, a harness error naming what failed otherwise.
    pub fn outcome(&self) -> Outcome {
        match self {
            SetupError::NoPrivileges(e) => {
                let cause = netns_util::error_chain(&**e);
                Outcome::Skip(format!("needs root or user namespaces: {cause}"))
            }
            SetupError::Harness(e) => Outcome::Error(format!(
                "probing the kernel failed: {}",
                netns_util::error_chain(&**e)
            )),
        }
    }
}

impl Probes {
    /// Gets the privileges to make namespaces
    /// ([`netns_util::ensure_privileges`]), then [`Probes::run`]s.
    pub fn setup() -> Result<Probes, SetupError> {
        netns_util::ensure_privileges()?;
        Ok(Probes::run()?)
    }

    /// Probes the running kernel from inside a fresh namespace, on a
    /// thread of its own.
    pub fn run() -> Result<Probes, netns_util::Error> {
        let probing = thread::spawn(|| {
            let netns = Netns::unshare_current_thread()?;
            netns.loopback_up()?;
            let option = probe_option();
            let mut variants = BTreeMap::new();
            let mut profiles = BTreeMap::new();
            for variant in Variant::matrix(Proto::ALL, Family::ALL) {
                let (availability, profile) = probe_variant(variant);
                // Without the option, a socket refusing it says only that
                // the socket exists, and MPTCP's refusal is no profile.
                let (availability, profile) = match (availability, profile) {
                    (Availability::Refused(_), _) | (Availability::Missing(_), Some(_))
                        if matches!(option, Availability::Missing(_)) =>
                    {
                        (Availability::Available, None)
                    }
                    probed => probed,
                };
                variants.insert(variant.to_string(), availability);
                if let Some(profile) = profile {
                    profiles.insert(variant.to_string(), profile.name().to_owned());
                }
            }
            let uname = nix::sys::utsname::uname();
            Ok(Probes {
                kernel: uname
                    .as_ref()
                    .map(|u| u.release().to_string_lossy().into_owned())
                    .unwrap_or_else(|e| format!("unknown ({e})")),
                build: uname
                    .map(|u| u.version().to_string_lossy().into_owned())
                    .unwrap_or_default(),
                option,
                variants,
                profiles,
            })
        });
        probing
            .join()
            .unwrap_or_else(|payload| Err(netns_util::Error::panicked(payload)))
    }

    /// The kernel's release line, as the probes saw it.
    pub fn release(&self) -> Release {
        Release::parse(&self.kernel, &self.build)
    }

    /// Whether the cases of `variant` can run, judged against
    /// `expectation`: an absence is a skip only where the kernel may lack
    /// the thing, a failure where it must have it; MPTCP's probed profile
    /// must be the expected one and agree with what the run saw elsewhere
    /// (`tally`).
    pub fn gate(&self, variant: Variant, expectation: &Expectation, tally: &Tally) -> Gate {
        match (&self.option, expectation.option_rule()) {
            (Availability::Broken(reason), _) => return Gate::Error(reason.clone()),
            (Availability::Missing(reason), OptionRule::Required(why)) => {
                return Gate::Fail(format!("{reason}, but this kernel must have it: {why}"));
            }
            (Availability::Missing(reason), OptionRule::Predates(why)) => {
                return Gate::Skip(format!("{reason}; it came in Linux 6.3: {why}"));
            }
            (Availability::Missing(reason), OptionRule::Unplaced(why)) => {
                return Gate::Skip(format!(
                    "{reason}; it came in Linux 6.3, and the release rules cannot place this \
                     kernel ({why}): --expect-option present makes its absence a failure"
                ));
            }
            (Availability::Missing(reason), OptionRule::Forbidden(why)) => {
                return Gate::Skip(format!("{reason}, as expected: {why}"));
            }
            (Availability::Available | Availability::Refused(_), OptionRule::Forbidden(why)) => {
                return Gate::Fail(format!(
                    "IP_LOCAL_PORT_RANGE is present (setsockopt on a TCP socket knows it), but \
                     this kernel must not have it: {why}"
                ));
            }
            (Availability::Available | Availability::Refused(_), _) => {}
        }
        if let Some(failure) = self.profile_failure(variant, expectation, tally) {
            return Gate::Fail(failure);
        }
        let unprobed = Availability::Broken(format!("{variant} was not probed"));
        let availability = self.variants.get(&variant.to_string()).unwrap_or(&unprobed);
        match availability {
            Availability::Available | Availability::Refused(_) => Gate::Run,
            Availability::Missing(reason) => match expectation.requires(variant.proto) {
                Some(because) if !self.profiles.contains_key(&variant.to_string()) => {
                    Gate::Fail(format!("{reason}, but this kernel must have it: {because}"))
                }
                _ => Gate::Skip(reason.clone()),
            },
            Availability::Broken(reason) => Gate::Error(reason.clone()),
        }
    }

    /// A failure message when the profile the probes matched for
    /// `variant` (MPTCP's acceptance of the option) is not what
    /// `expectation` allows or mixes with what the run saw elsewhere.
    fn profile_failure(
        &self,
        variant: Variant,
        expectation: &Expectation,
        tally: &Tally,
    ) -> Option<String> {
        let observed: Profile = self.profiles.get(&variant.to_string())?.parse().ok()?;
        let message = expectation
            .judge(Property::Mptcp, observed)
            .or_else(|| tally.check(Property::Mptcp, observed, &format!("the {variant} probe")))?;
        Some(format!("{variant} sockets, probed: {message}"))
    }

    /// Records the profiles the probes matched in `tally`, in variant
    /// order, before any case runs.
    pub fn seed(&self, tally: &Tally) {
        for (variant, profile) in &self.profiles {
            if let Ok(profile) = profile.parse() {
                tally.check(Property::Mptcp, profile, &format!("the {variant} probe"));
            }
        }
    }

    /// One line per missing feature, for report headers.
    pub fn notes(&self) -> Vec<String> {
        let option = match &self.option {
            Availability::Missing(reason)
            | Availability::Broken(reason)
            | Availability::Refused(reason) => Some(reason.clone()),
            Availability::Available => None,
        };
        option
            .into_iter()
            .chain(self.variants.iter().filter_map(|(name, a)| match a {
                Availability::Missing(reason)
                | Availability::Broken(reason)
                | Availability::Refused(reason) => Some(format!("{name}: {reason}")),
                Availability::Available => None,
            }))
            .collect()
    }
}

/// The range the probes set: valid, with both bounds non-zero, so that
/// whether the option exists never depends on how the kernel treats a zero
/// bound (a property the `sockopt/zero_*` cases judge).
pub const PROBE_RANGE: (u16, u16) = (40000, 40999);

fn probe_option() -> Availability {
    let variant = Variant {
        proto: Proto::Tcp,
        family: Family::V4,
    };
    match variant.socket() {
        Ok(socket) => option_availability(|lo, hi| sockopt::set_port_range(&socket, lo, hi)),
        Err(e) => Availability::Broken(format!(
            "opening a TCP over IPv4 socket to probe IP_LOCAL_PORT_RANGE failed: {} (TCP over \
             IPv4 is never optional)",
            describe(&e)
        )),
    }
}

/// Whether the option exists, given a way to set [`PROBE_RANGE`] on a TCP
/// socket: only ENOPROTOOPT says it does not; any other error says it
/// does, and that it refused a valid setting (the cases judge that).
fn option_availability(set_range: impl FnOnce(u16, u16) -> io::Result<()>) -> Availability {
    let (lo, hi) = PROBE_RANGE;
    match set_range(lo, hi) {
        Ok(()) => Availability::Available,
        Err(e) if e.raw_os_error() == Some(Errno::ENOPROTOOPT as i32) => {
            Availability::Missing(format!(
                "IP_LOCAL_PORT_RANGE is not in this kernel (setsockopt on a TCP socket: {})",
                describe(&e)
            ))
        }
        Err(e) => Availability::Refused(format!(
            "IP_LOCAL_PORT_RANGE is there, but refused the valid range {lo}-{hi} on a TCP socket \
             ({}): the cases run and say which property is broken",
            describe(&e)
        )),
    }
}

/// Whether `variant`'s sockets exist and take the option, and the profile
/// that outcome matched where profiles differ (MPTCP).
fn probe_variant(variant: Variant) -> (Availability, Option<Profile>) {
    let socket = match variant.socket() {
        Ok(socket) => socket,
        Err(e) => return (socket_failure(variant, &e), None),
    };
    if let Err(e) = socket.bind(&variant.loopback(0).into()) {
        let reason = format!(
            "{variant}: binding a socket to loopback port 0 to probe it failed: {} (the socket \
             exists, so the protocol is there: a harness error)",
            describe(&e)
        );
        return (Availability::Broken(reason), None);
    }
    let (lo, hi) = PROBE_RANGE;
    match (variant.proto, sockopt::set_port_range(&socket, lo, hi)) {
        (Proto::Mptcp, Ok(())) => (Availability::Available, Some(Profile::Upstream)),
        (_, Ok(())) => (Availability::Available, None),
        (Proto::Mptcp, Err(e)) if e.raw_os_error() == Some(Errno::ENOPROTOOPT as i32) => {
            let reason = format!(
                "MPTCP sockets do not accept IP_LOCAL_PORT_RANGE here ({}), as in the {} profile",
                describe(&e),
                Profile::Stable61
            );
            (Availability::Missing(reason), Some(Profile::Stable61))
        }
        (_, Err(e)) => {
            let reason = format!(
                "{variant} sockets refused the valid range {lo}-{hi} ({}): the cases run and say \
                 which property is broken",
                describe(&e)
            );
            (Availability::Refused(reason), None)
        }
    }
}

/// What an error from `socket()` says: the protocol or family is not in
/// this kernel (EPROTONOSUPPORT, EAFNOSUPPORT, ESOCKTNOSUPPORT), except for
/// TCP over IPv4, which is never optional; anything else is a harness
/// error.
fn socket_failure(variant: Variant, error: &io::Error) -> Availability {
    let absent = [
        Errno::EPROTONOSUPPORT,
        Errno::EAFNOSUPPORT,
        Errno::ESOCKTNOSUPPORT,
    ]
    .iter()
    .any(|&e| error.raw_os_error() == Some(e as i32));
    let essential = variant.proto == Proto::Tcp && variant.family == Family::V4;
    if absent && !essential {
        Availability::Missing(format!(
            "{} over {} is not available in this kernel (socket: {})",
            variant.proto.name().to_uppercase(),
            variant.family.label(),
            describe(error)
        ))
    } else {
        Availability::Broken(format!(
            "{variant}: socket() failed: {}{}",
            describe(error),
            if essential {
                " (TCP over IPv4 is never optional)"
            } else {
                " (only EPROTONOSUPPORT, EAFNOSUPPORT or ESOCKTNOSUPPORT say a protocol is absent)"
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for a kernel with a backport bug: setting a range with a
    /// zero bound fails with EINVAL, any other range works.
    fn fake_kernel_rejecting_zero_bounds(lo: u16, hi: u16) -> io::Result<()> {
        if lo == 0 || hi == 0 {
            Err(io::Error::from_raw_os_error(Errno::EINVAL as i32))
        } else {
            Ok(())
        }
    }

    #[test]
    fn the_probe_range_is_valid_and_has_no_zero_bound() {
        let (lo, hi) = PROBE_RANGE;
        assert!(lo != 0 && hi != 0 && lo <= hi, "{lo}-{hi}");
        let mut asked = None;
        option_availability(|lo, hi| {
            asked = Some((lo, hi));
            Ok(())
        });
        assert_eq!(asked, Some(PROBE_RANGE));
    }

    #[test]
    fn a_kernel_rejecting_zero_bounds_still_has_the_option() {
        assert_eq!(
            option_availability(fake_kernel_rejecting_zero_bounds),
            Availability::Available
        );
    }

    /// Only ENOPROTOOPT says the option is absent; EINVAL on the valid
    /// probe range (a kernel decoding the halves swapped) says it is there
    /// and broken, which the cases then name by property.
    #[test]
    fn only_enoprotoopt_means_missing_other_errors_mean_there_but_refused() {
        let answer = |errno: Errno| move |_, _| Err(io::Error::from_raw_os_error(errno as i32));
        assert!(matches!(
            option_availability(answer(Errno::ENOPROTOOPT)),
            Availability::Missing(reason) if reason.contains("not in this kernel")
        ));
        for errno in [Errno::EINVAL, Errno::EPERM, Errno::EOPNOTSUPP] {
            assert!(matches!(
                option_availability(answer(errno)),
                Availability::Refused(reason) if reason.contains("refused the valid range 40000-40999")
            ));
        }
    }

    /// Only the socket call's absence errnos make a protocol missing, and
    /// never TCP over IPv4.
    #[test]
    fn only_socket_absence_errnos_make_a_protocol_missing() {
        let sctp6 = Variant {
            proto: Proto::Sctp,
            family: Family::V6,
        };
        let tcp4 = Variant {
            proto: Proto::Tcp,
            family: Family::V4,
        };
        let error = |errno: Errno| io::Error::from_raw_os_error(errno as i32);
        for errno in [
            Errno::EPROTONOSUPPORT,
            Errno::EAFNOSUPPORT,
            Errno::ESOCKTNOSUPPORT,
        ] {
            assert!(matches!(
                socket_failure(sctp6, &error(errno)),
                Availability::Missing(reason) if reason.starts_with("SCTP over IPv6 is not available")
            ));
            assert!(matches!(
                socket_failure(tcp4, &error(errno)),
                Availability::Broken(reason) if reason.contains("TCP over IPv4 is never optional")
            ));
        }
        for errno in [Errno::EADDRNOTAVAIL, Errno::ENOPROTOOPT, Errno::EMFILE] {
            assert!(matches!(
                socket_failure(sctp6, &error(errno)),
                Availability::Broken(_)
            ));
        }
    }

    fn fake_probes(release: &str, option: Availability) -> Probes {
        Probes {
            kernel: release.into(),
            build: String::new(),
            option,
            variants: BTreeMap::from([
                ("tcp4".into(), Availability::Available),
                (
                    "sctp4".into(),
                    Availability::Missing("SCTP over IPv4 is not available".into()),
                ),
                (
                    "mptcp4".into(),
                    Availability::Missing("MPTCP sockets do not accept".into()),
                ),
            ]),
            profiles: BTreeMap::from([("mptcp4".into(), "stable-6.1".into())]),
        }
    }

    fn expectation(
        probes: &Probes,
        pinned: Option<Profile>,
        option: Option<crate::profile::OptionPresence>,
        protos: &[Proto],
    ) -> Expectation {
        let protocols = crate::profile::RequiredProtocols {
            protos: protos.to_vec(),
            because: "the config enables it".into(),
        };
        Expectation::new(pinned, option, protocols, probes.release())
    }

    const TCP4: Variant = Variant {
        proto: Proto::Tcp,
        family: Family::V4,
    };
    const SCTP4: Variant = Variant {
        proto: Proto::Sctp,
        family: Family::V4,
    };
    const MPTCP4: Variant = Variant {
        proto: Proto::Mptcp,
        family: Family::V4,
    };

    /// A missing option fails where the release, a pinned profile or
    /// `--expect-option present` requires it, and skips naming 6.3 where
    /// the kernel predates it or cannot be placed.
    #[test]
    fn a_missing_option_fails_where_required_and_skips_where_it_predates() {
        let missing = || Availability::Missing("IP_LOCAL_PORT_RANGE is not in this kernel".into());
        let gate = |release: &str, pinned, option| {
            let probes = fake_probes(release, missing());
            probes.gate(
                TCP4,
                &expectation(&probes, pinned, option, &[]),
                &Tally::default(),
            )
        };
        let Gate::Fail(message) = gate("6.18.44-fc", None, None) else {
            panic!("a 6.18 kernel without the option must fail");
        };
        assert!(
            message.starts_with(
                "IP_LOCAL_PORT_RANGE is not in this kernel, but this kernel must have it: kernel \
                 6.18.44-fc (6.18) is at or past Linux 6.3"
            ),
            "{message}"
        );
        let Gate::Skip(reason) = gate("5.10.0-35-cloud-amd64", None, None) else {
            panic!("a 5.10 kernel without the option must skip");
        };
        assert!(
            reason.contains("it came in Linux 6.3: kernel 5.10.0-35-cloud-amd64 (5.10) predates"),
            "{reason}"
        );
        assert!(matches!(
            gate("5.10.0-35-cloud-amd64", Some(Profile::Stable61), None),
            Gate::Fail(m) if m.ends_with("--expect-profile stable-6.1 (every profile has the option)")
        ));
        assert!(matches!(
            gate("my-kernel", None, None),
            Gate::Skip(m) if m.contains("--expect-option present makes its absence a failure")
        ));
        assert!(matches!(
            gate("my-kernel", None, Some(crate::profile::OptionPresence::Present)),
            Gate::Fail(m) if m.ends_with("--expect-option present")
        ));
        let probes = fake_probes("6.18.44-fc", Availability::Available);
        let absent = expectation(
            &probes,
            None,
            Some(crate::profile::OptionPresence::Absent),
            &[],
        );
        assert!(matches!(
            probes.gate(TCP4, &absent, &Tally::default()),
            Gate::Fail(m) if m.ends_with("must not have it: --expect-option absent")
        ));
    }

    /// A missing protocol the configuration enables fails its variants;
    /// MPTCP refusing the option is its profile, not a missing protocol.
    #[test]
    fn a_required_protocol_that_is_missing_fails() {
        let probes = fake_probes("6.1.0-56-cloud-amd64", Availability::Available);
        let tally = Tally::default();
        let free = expectation(&probes, None, None, &[]);
        assert!(matches!(probes.gate(SCTP4, &free, &tally), Gate::Skip(_)));
        let required = expectation(&probes, None, None, &[Proto::Sctp, Proto::Mptcp]);
        assert_eq!(
            probes.gate(SCTP4, &required, &tally),
            Gate::Fail(
                "SCTP over IPv4 is not available, but this kernel must have it: the config enables it"
                    .into()
            )
        );
        assert!(matches!(
            probes.gate(MPTCP4, &required, &tally),
            Gate::Skip(_)
        ));
        assert_eq!(probes.gate(TCP4, &required, &tally), Gate::Run);
    }

    /// A run that saw connect() parity as upstream fails the MPTCP probe's
    /// stable-6.1 on a kernel no release rule places.
    #[test]
    fn the_mptcp_probe_must_agree_with_the_run() {
        let probes = fake_probes("my-kernel", Availability::Available);
        let tally = Tally::default();
        tally.check(Property::ConnectParity, Profile::Upstream, "tcp4");
        let Gate::Fail(message) =
            probes.gate(MPTCP4, &expectation(&probes, None, None, &[]), &tally)
        else {
            panic!("a mix must fail");
        };
        assert!(
            message.starts_with(
                "mptcp4 sockets, probed: no release line has this combination: connect() parity \
                 as upstream (tcp4) and MPTCP as stable-6.1 (the mptcp4 probe)"
            ),
            "{message}"
        );
    }
}
