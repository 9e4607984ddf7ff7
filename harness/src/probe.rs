//! What the kernel under test offers, decided once before any case runs.
//!
//! libtest-mimic has no skip decided from inside a running trial that
//! reports can rely on before the run, so skips are decided here, up front,
//! and carried with their reasons into every report.

use std::collections::BTreeMap;
use std::io;
use std::thread;

use netns_util::Netns;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::describe;
use crate::outcome::Outcome;
use crate::profile::{Expectation, Profile, Property};
use crate::sockopt;
use crate::variant::{Family, Proto, Variant};

/// Whether the kernel offers something the cases need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    /// It is there.
    Available,
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
    /// Report a harness error, for this reason.
    Error(String),
}

/// The kernel under test, as the probes saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probes {
    /// `uname -r` of the kernel.
    pub kernel: String,
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
                variants.insert(variant.to_string(), availability);
                if let Some(profile) = profile {
                    profiles.insert(variant.to_string(), profile.name().to_owned());
                }
            }
            Ok(Probes {
                kernel: nix::sys::utsname::uname()
                    .map(|u| u.release().to_string_lossy().into_owned())
                    .unwrap_or_else(|e| format!("unknown ({e})")),
                option,
                variants,
                profiles,
            })
        });
        probing
            .join()
            .unwrap_or_else(|payload| Err(netns_util::Error::panicked(payload)))
    }

    /// Whether the cases of `variant` can run.
    pub fn gate(&self, variant: Variant) -> Gate {
        let unprobed = Availability::Broken(format!("{variant} was not probed"));
        let availability = match &self.option {
            Availability::Available => self.variants.get(&variant.to_string()).unwrap_or(&unprobed),
            unavailable => unavailable,
        };
        match availability {
            Availability::Available => Gate::Run,
            Availability::Missing(reason) => Gate::Skip(reason.clone()),
            Availability::Broken(reason) => Gate::Error(reason.clone()),
        }
    }

    /// A failure message when the profile the probes matched for
    /// `variant` (MPTCP's acceptance of the option) is not what
    /// `expectation` allows; every case of the variant then fails with it.
    pub fn profile_failure(&self, variant: Variant, expectation: &Expectation) -> Option<String> {
        let observed: Profile = self.profiles.get(&variant.to_string())?.parse().ok()?;
        let message = expectation.judge(Property::Mptcp, observed)?;
        Some(format!("{variant} sockets, probed: {message}"))
    }

    /// One line per missing feature, for report headers.
    pub fn notes(&self) -> Vec<String> {
        let option = match &self.option {
            Availability::Missing(reason) | Availability::Broken(reason) => Some(reason.clone()),
            Availability::Available => None,
        };
        option
            .into_iter()
            .chain(self.variants.iter().filter_map(|(name, a)| match a {
                Availability::Missing(reason) | Availability::Broken(reason) => {
                    Some(format!("{name}: {reason}"))
                }
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
    option_availability(|lo, hi| {
        variant
            .socket()
            .and_then(|socket| sockopt::set_port_range(&socket, lo, hi))
    })
}

/// Whether the option exists, given a way to set [`PROBE_RANGE`] on a TCP
/// socket.
fn option_availability(set_range: impl FnOnce(u16, u16) -> io::Result<()>) -> Availability {
    let (lo, hi) = PROBE_RANGE;
    match set_range(lo, hi) {
        Ok(()) => Availability::Available,
        Err(e) if e.raw_os_error() != Some(Errno::ENOPROTOOPT as i32) => {
            Availability::Broken(format!(
                "probing IP_LOCAL_PORT_RANGE on a TCP socket (setting {lo}-{hi}) failed: {}",
                describe(&e)
            ))
        }
        Err(e) => Availability::Missing(format!(
            "IP_LOCAL_PORT_RANGE is not supported by this kernel (setsockopt on a TCP socket: {})",
            describe(&e)
        )),
    }
}

/// Whether `variant`'s sockets exist and take the option, and the profile
/// that outcome matched where profiles differ (MPTCP).
fn probe_variant(variant: Variant) -> (Availability, Option<Profile>) {
    let socket = variant
        .socket()
        .and_then(|socket| socket.bind(&variant.loopback(0).into()).map(|()| socket));
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) if is_unsupported(&e) => {
            let reason = format!(
                "{} over {} is not available in this kernel (socket/bind: {})",
                variant.proto.name().to_uppercase(),
                variant.family.label(),
                describe(&e)
            );
            return (Availability::Missing(reason), None);
        }
        Err(e) => {
            let reason = format!(
                "{variant}: probing socket+bind on loopback failed unexpectedly: {}",
                describe(&e)
            );
            return (Availability::Broken(reason), None);
        }
    };
    let mptcp = variant.proto == Proto::Mptcp;
    let (lo, hi) = PROBE_RANGE;
    match sockopt::set_port_range(&socket, lo, hi) {
        Ok(()) => (Availability::Available, mptcp.then_some(Profile::Upstream)),
        Err(e) if mptcp && e.raw_os_error() == Some(Errno::ENOPROTOOPT as i32) => {
            let reason = format!(
                "MPTCP sockets do not accept IP_LOCAL_PORT_RANGE here ({}), as in the {} profile",
                describe(&e),
                Profile::Stable61
            );
            (Availability::Missing(reason), Some(Profile::Stable61))
        }
        Err(e) => {
            let reason = format!(
                "{variant} sockets reject IP_LOCAL_PORT_RANGE ({}) although TCP accepts it",
                describe(&e)
            );
            (Availability::Broken(reason), None)
        }
    }
}

fn is_unsupported(error: &io::Error) -> bool {
    [
        Errno::EPROTONOSUPPORT,
        Errno::EAFNOSUPPORT,
        Errno::ESOCKTNOSUPPORT,
        Errno::ENOPROTOOPT,
        Errno::EADDRNOTAVAIL,
    ]
    .iter()
    .any(|&e| error.raw_os_error() == Some(e as i32))
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

    #[test]
    fn enoprotoopt_means_missing_and_other_errors_broken() {
        let answer = |errno: Errno| move |_, _| Err(io::Error::from_raw_os_error(errno as i32));
        assert!(matches!(
            option_availability(answer(Errno::ENOPROTOOPT)),
            Availability::Missing(reason) if reason.contains("not supported by this kernel")
        ));
        assert!(matches!(
            option_availability(answer(Errno::EINVAL)),
            Availability::Broken(reason) if reason.contains("setting 40000-40999")
        ));
    }
}
