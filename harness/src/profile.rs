//! Kernel profiles: named sets of expectations for the properties whose
//! correct behaviour differs between kernel generations (docs/spec.md,
//! "Behaviour that differs between kernels"), and what a kernel is expected to show.
//!
//! Cases and probes record which profile the kernel matched for which
//! [`Property`]. An [`Expectation`] judges that: pinned by the user
//! (`--expect-profile`), every property must match the pinned profile;
//! otherwise the kernel's release line decides ([`crate::release`]), and a
//! run's [`Tally`] fails any mix of profiles within one kernel.
//! docs/profiles.md cites the commits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::release::{OptionRule, Release};
use crate::variant::Proto;

/// A named set of expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// 6.1 stable with the backport (and Android kernels built on it), and
    /// upstream 6.3 to 6.7: connect() scans the socket range in steps of 2,
    /// `lo`'s parity first; MPTCP sockets refuse the option (ENOPROTOOPT).
    #[serde(rename = "stable-6.1")]
    Stable61,
    /// Upstream since 6.8: with a socket range set, connect() scans port
    /// by port with no parity preference; MPTCP sockets accept the option.
    #[serde(rename = "upstream")]
    Upstream,
}

impl Profile {
    /// Both profiles.
    pub const ALL: [Profile; 2] = [Profile::Stable61, Profile::Upstream];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Stable61 => "stable-6.1",
            Profile::Upstream => "upstream",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| format!("unknown kernel profile {text:?}: use upstream or stable-6.1"))
    }
}

/// A property whose correct behaviour differs between the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Property {
    /// MPTCP sockets accepting the option (probed per MPTCP variant).
    #[serde(rename = "MPTCP")]
    Mptcp,
    /// connect()'s scan of a socket range: parity first, or every port
    /// (`connect/port_parity_matches_a_known_profile`).
    #[serde(rename = "connect() parity")]
    ConnectParity,
}

impl Property {
    /// Every property, in the order reports list them.
    pub const ALL: [Property; 2] = [Property::Mptcp, Property::ConnectParity];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Property::Mptcp => "MPTCP",
            Property::ConnectParity => "connect() parity",
        }
    }

    /// The upstream release (major, minor) in which the upstream behaviour
    /// landed, and the commits that brought it (docs/profiles.md).
    pub fn upstream_since(self) -> ((u32, u32), &'static str) {
        match self {
            Property::Mptcp => (
                (6, 8),
                "c85636a29264 \"mptcp: sockopt: support IP_LOCAL_PORT_RANGE and IP_BIND_ADDRESS_NO_PORT\"",
            ),
            Property::ConnectParity => (
                (6, 8),
                "207184853dbd \"tcp/dccp: change source port selection at connect() time\"",
            ),
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--expect-option`: whether the kernel must have the option, for a
/// kernel the release rules cannot place (or to overrule them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OptionPresence {
    /// It must be there: its absence fails every case.
    Present,
    /// It must not be there: its presence fails every case.
    Absent,
}

/// Protocols the kernel must have (its configuration enables them), with
/// the reason: a missing one fails its variants instead of skipping them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredProtocols {
    /// The protocols.
    pub protos: Vec<Proto>,
    /// Why (`built from the project's fragment, CONFIG_IP_SCTP=y ...`).
    pub because: String,
}

/// What a kernel is expected to show: whether it has the option, which
/// protocols, and which profile per property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pinned: Option<Profile>,
    option: Option<OptionPresence>,
    protocols: RequiredProtocols,
    release: Release,
}

impl Expectation {
    /// The expectation for `release`: the switches (`--expect-profile`,
    /// `--expect-option`, the protocols a built configuration enables)
    /// where given, else the release line's rules.
    pub fn new(
        pinned: Option<Profile>,
        option: Option<OptionPresence>,
        protocols: RequiredProtocols,
        release: Release,
    ) -> Self {
        Expectation {
            pinned,
            option,
            protocols,
            release,
        }
    }

    /// Whether the kernel must have the option, and why: `--expect-option`,
    /// else a pinned profile (every profile has it), else the release line.
    pub fn option_rule(&self) -> OptionRule {
        match (self.option, self.pinned) {
            (Some(OptionPresence::Present), _) => {
                OptionRule::Required("--expect-option present".into())
            }
            (Some(OptionPresence::Absent), _) => {
                OptionRule::Forbidden("--expect-option absent".into())
            }
            (None, Some(pinned)) => OptionRule::Required(format!(
                "--expect-profile {pinned} (every profile has the option)"
            )),
            (None, None) => self.release.option_rule(),
        }
    }

    /// Why `proto` must be there, if it must.
    pub fn requires(&self, proto: Proto) -> Option<&str> {
        self.protocols
            .protos
            .contains(&proto)
            .then_some(self.protocols.because.as_str())
    }

    /// `None` when `observed` is acceptable for `property`, else the
    /// failure message naming the property, both profiles and the rule.
    pub fn judge(&self, property: Property, observed: Profile) -> Option<String> {
        if let Some(pinned) = self.pinned {
            return (observed != pinned).then(|| {
                format!(
                    "{property} matched the {observed} profile, but {pinned} was expected (--expect-profile {pinned})"
                )
            });
        }
        let (expected, why) = self.release.profile()?;
        (observed != expected).then(|| {
            let (_, commit) = property.upstream_since();
            format!(
                "{property} matched the {observed} profile, but {expected} was expected: {why} \
                 ({property}'s upstream behaviour came with {commit}); a broken backport or a regression"
            )
        })
    }

    /// One line for report headers saying which rules applied.
    pub fn note(&self) -> String {
        let option = match self.option_rule() {
            OptionRule::Required(why) => format!("IP_LOCAL_PORT_RANGE required ({why})"),
            OptionRule::Predates(why) => format!("IP_LOCAL_PORT_RANGE not expected ({why})"),
            OptionRule::Unplaced(why) => format!(
                "IP_LOCAL_PORT_RANGE not judged ({why}; --expect-option present|absent decides)"
            ),
            OptionRule::Forbidden(why) => format!("IP_LOCAL_PORT_RANGE must be absent ({why})"),
        };
        let profile = match (self.pinned, self.release.profile()) {
            (Some(pinned), _) => format!("profile {pinned} (--expect-profile {pinned})"),
            (None, Some((profile, why))) => format!("profile {profile} ({why})"),
            (None, None) => {
                "profile not placed (any one profile, the same for every property)".to_owned()
            }
        };
        let mut note = format!(
            "expectation for {} ({}): {option}; {profile}",
            self.release.release, self.release.line
        );
        if !self.protocols.protos.is_empty() {
            let names: Vec<String> = self
                .protocols
                .protos
                .iter()
                .map(|p| p.name().to_uppercase())
                .collect();
            note.push_str(&format!(
                "; protocols required: {} ({})",
                names.join(", "),
                self.protocols.because
            ));
        }
        note
    }
}

/// The profiles a run has seen so far, per property, with where each was
/// seen: within one kernel a property answers one profile, and every
/// release line shows one profile for all properties (6.1 stable and 6.3
/// to 6.7: `stable-6.1`; 6.8 and later: `upstream`), so any mix is a
/// failure. Shared by a run's cases, which check as they end.
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<Property, (Profile, String)>>);

impl Tally {
    /// Records that `seen_in` (`tcp6`, `the mptcp4 probe`) matched
    /// `profile` for `property`; a failure message naming both sides when
    /// that mixes with what the run saw before (which stays recorded).
    pub fn check(&self, property: Property, profile: Profile, seen_in: &str) -> Option<String> {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((earlier, where_)) = seen.get(&property) {
            return (*earlier != profile).then(|| {
                format!(
                    "{property} answers one profile per kernel, but {seen_in} matched {profile} \
                     and {where_} matched {earlier}"
                )
            });
        }
        if let Some((other, (earlier, where_))) = seen.iter().find(|(_, (p, _))| *p != profile) {
            return Some(format!(
                "no release line has this combination: {other} as {earlier} ({where_}) and \
                 {property} as {profile} ({seen_in}); every line shows one profile for both \
                 (6.1 stable and 6.3 to 6.7: {}, 6.8 and later: {})",
                Profile::Stable61,
                Profile::Upstream
            ));
        }
        seen.insert(property, (profile, seen_in.to_owned()));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(pinned: Option<Profile>, release: &str) -> Expectation {
        Expectation::new(
            pinned,
            None,
            RequiredProtocols::default(),
            Release::parse(release, ""),
        )
    }

    /// Every (release line, observed profile) pair, for both properties,
    /// without a pinned profile: each line accepts exactly one profile.
    #[test]
    fn each_release_line_accepts_one_profile() {
        let table = [
            // (release, observed, acceptable)
            ("6.1.0-56-cloud-amd64", Profile::Stable61, true),
            ("6.1.0-56-cloud-amd64", Profile::Upstream, false),
            ("6.1.75-android14-11-g0123abcd", Profile::Upstream, false),
            ("6.7.12", Profile::Stable61, true),
            ("6.7.12", Profile::Upstream, false),
            ("6.8.0", Profile::Stable61, false),
            ("6.8.0", Profile::Upstream, true),
            ("6.12.57+deb13-amd64", Profile::Stable61, false),
            ("6.12.57+deb13-amd64", Profile::Upstream, true),
            ("7.0.1", Profile::Stable61, false),
            ("unknown", Profile::Stable61, true),
            ("unknown", Profile::Upstream, true),
        ];
        for property in Property::ALL {
            for (release, observed, acceptable) in table {
                let verdict = expect(None, release).judge(property, observed);
                assert_eq!(
                    verdict.is_none(),
                    acceptable,
                    "{property} {release} {observed}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn a_newer_kernel_showing_the_old_behaviour_names_the_property_rule_and_commit() {
        let message = expect(None, "6.12.57")
            .judge(Property::Mptcp, Profile::Stable61)
            .unwrap();
        assert_eq!(
            message,
            "MPTCP matched the stable-6.1 profile, but upstream was expected: kernel 6.12.57 is at \
             or past 6.8, where the upstream behaviour of both properties landed (MPTCP's upstream \
             behaviour came with c85636a29264 \"mptcp: sockopt: support IP_LOCAL_PORT_RANGE and \
             IP_BIND_ADDRESS_NO_PORT\"); a broken backport or a regression"
        );
    }

    /// A pinned profile wins over the release, both ways.
    #[test]
    fn a_pinned_profile_accepts_only_itself() {
        for release in ["6.1.0-56-cloud-amd64", "6.12.57"] {
            for pinned in Profile::ALL {
                for observed in Profile::ALL {
                    for property in Property::ALL {
                        let verdict = expect(Some(pinned), release).judge(property, observed);
                        assert_eq!(verdict.is_none(), pinned == observed, "{verdict:?}");
                    }
                }
            }
        }
        assert_eq!(
            expect(Some(Profile::Upstream), "6.1.0")
                .judge(Property::ConnectParity, Profile::Stable61)
                .unwrap(),
            "connect() parity matched the stable-6.1 profile, but upstream was expected (--expect-profile upstream)"
        );
    }

    /// The switches overrule the release line: `--expect-option` first,
    /// then a pinned profile (which implies the option).
    #[test]
    fn switches_decide_the_option_before_the_release() {
        let old = Release::parse("5.10.0-35-cloud-amd64", "");
        let rule = |pinned, option| {
            Expectation::new(pinned, option, RequiredProtocols::default(), old.clone())
                .option_rule()
        };
        assert!(matches!(rule(None, None), OptionRule::Predates(_)));
        assert_eq!(
            rule(Some(Profile::Stable61), None),
            OptionRule::Required(
                "--expect-profile stable-6.1 (every profile has the option)".into()
            )
        );
        assert_eq!(
            rule(Some(Profile::Stable61), Some(OptionPresence::Absent)),
            OptionRule::Forbidden("--expect-option absent".into())
        );
        assert_eq!(
            rule(None, Some(OptionPresence::Present)),
            OptionRule::Required("--expect-option present".into())
        );
    }

    #[test]
    fn the_note_names_the_line_and_each_rule() {
        let expectation = Expectation::new(
            None,
            None,
            RequiredProtocols {
                protos: vec![Proto::Sctp, Proto::Mptcp],
                because: "built with the portrange fragment".into(),
            },
            Release::parse("6.1.0-56-cloud-amd64", "Debian 6.1.158-1"),
        );
        let note = expectation.note();
        for part in [
            "expectation for 6.1.0-56-cloud-amd64 (Debian 6.1 ABI 56 (6.1.158)): IP_LOCAL_PORT_RANGE required (kernel",
            "; profile stable-6.1 (kernel 6.1.0-56-cloud-amd64 is on a line before 6.8",
            "; protocols required: SCTP, MPTCP (built with the portrange fragment)",
        ] {
            assert!(note.contains(part), "no {part:?} in {note}");
        }
        assert_eq!(
            expectation.requires(Proto::Sctp),
            Some("built with the portrange fragment")
        );
        assert_eq!(expectation.requires(Proto::Udp), None);
    }

    /// A property answers one profile across variants, and properties
    /// answer the same profile: the first seen stays, later mixes fail
    /// naming both sides.
    #[test]
    fn the_tally_fails_a_mix_within_a_property_and_across_properties() {
        let tally = Tally::default();
        assert_eq!(
            tally.check(Property::ConnectParity, Profile::Stable61, "tcp4"),
            None
        );
        assert_eq!(
            tally.check(Property::ConnectParity, Profile::Stable61, "tcp4in6"),
            None
        );
        assert_eq!(
            tally
                .check(Property::ConnectParity, Profile::Upstream, "tcp6")
                .unwrap(),
            "connect() parity answers one profile per kernel, but tcp6 matched upstream and tcp4 matched stable-6.1"
        );
        assert_eq!(
            tally
                .check(Property::Mptcp, Profile::Upstream, "the mptcp4 probe")
                .unwrap(),
            "no release line has this combination: connect() parity as stable-6.1 (tcp4) and MPTCP \
             as upstream (the mptcp4 probe); every line shows one profile for both (6.1 stable and \
             6.3 to 6.7: stable-6.1, 6.8 and later: upstream)"
        );
        assert_eq!(
            tally.check(Property::Mptcp, Profile::Stable61, "the mptcp6 probe"),
            None
        );
    }

    #[test]
    fn profiles_parse_by_name() {
        assert_eq!("stable-6.1".parse(), Ok(Profile::Stable61));
        assert_eq!("upstream".parse(), Ok(Profile::Upstream));
        assert!(
            "6.1"
                .parse::<Profile>()
                .unwrap_err()
                .contains("use upstream or stable-6.1")
        );
    }
}
