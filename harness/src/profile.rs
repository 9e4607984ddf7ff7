//! Kernel profiles: named sets of expectations for the properties whose
//! correct behaviour differs between kernel generations (docs/spec.md,
//! "Behaviour that differs between kernels"), and what a kernel is expected to show.
//!
//! Cases and probes record which profile the kernel matched for which
//! [`Property`]. An [`Expectation`] judges that: pinned by the user
//! (`--expect-profile`), every property must match the pinned profile;
//! otherwise a kernel at or past the upstream release in which a
//! property's upstream behaviour landed must show it, and an older kernel
//! may show either (a stable kernel may or may not carry the change).
//! docs/profiles.md cites the commits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

/// What a kernel is expected to show, per property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pinned: Option<Profile>,
    release: String,
    version: Option<(u32, u32)>,
}

impl Expectation {
    /// The expectation for the kernel whose `uname -r` is `release`:
    /// `pinned` when given, else derived from the release's version.
    pub fn new(pinned: Option<Profile>, release: &str) -> Self {
        Expectation {
            pinned,
            release: release.to_owned(),
            version: version(release),
        }
    }

    /// `None` when `observed` is acceptable for `property`, else the
    /// failure message naming the property and both profiles.
    pub fn judge(&self, property: Property, observed: Profile) -> Option<String> {
        if let Some(pinned) = self.pinned {
            return (observed != pinned).then(|| {
                format!(
                    "{property} matched the {observed} profile, but {pinned} was expected (--expect-profile {pinned})"
                )
            });
        }
        let (since, commit) = property.upstream_since();
        let at_or_past = self.version.is_some_and(|v| v >= since);
        (at_or_past && observed != Profile::Upstream).then(|| {
            format!(
                "{property} matched the {observed} profile, but kernel {} is at or past {}.{}, where the {} behaviour landed ({commit}): a broken backport or a regression",
                self.release,
                since.0,
                since.1,
                Profile::Upstream
            )
        })
    }
}

/// `(major, minor)` of a `uname -r` release (`6.12.57+deb13-amd64`).
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_uname_releases() {
        assert_eq!(version("6.12.57+deb13-cloud-amd64"), Some((6, 12)));
        assert_eq!(version("6.1.0-56-cloud-amd64"), Some((6, 1)));
        assert_eq!(version("6.8-rc1"), Some((6, 8)));
        assert_eq!(version("unknown"), None);
    }

    /// Every (kernel version, observed profile) pair, for both properties,
    /// without a pinned profile.
    #[test]
    fn by_version_older_kernels_may_show_either_newer_must_show_upstream() {
        let table = [
            // (release, observed, acceptable)
            ("6.1.0-56-cloud-amd64", Profile::Stable61, true),
            ("6.1.0-56-cloud-amd64", Profile::Upstream, true),
            ("6.7.12", Profile::Stable61, true),
            ("6.7.12", Profile::Upstream, true),
            ("6.8.0", Profile::Stable61, false),
            ("6.8.0", Profile::Upstream, true),
            ("6.12.57+deb13-amd64", Profile::Stable61, false),
            ("6.12.57+deb13-amd64", Profile::Upstream, true),
            ("7.0.1", Profile::Stable61, false),
            ("unknown", Profile::Stable61, true),
        ];
        for property in Property::ALL {
            for (release, observed, acceptable) in table {
                let verdict = Expectation::new(None, release).judge(property, observed);
                assert_eq!(
                    verdict.is_none(),
                    acceptable,
                    "{property} {release} {observed}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn a_newer_kernel_showing_the_old_behaviour_names_the_property_and_commit() {
        let message = Expectation::new(None, "6.12.57")
            .judge(Property::Mptcp, Profile::Stable61)
            .unwrap();
        assert_eq!(
            message,
            "MPTCP matched the stable-6.1 profile, but kernel 6.12.57 is at or past 6.8, where the upstream behaviour landed (c85636a29264 \"mptcp: sockopt: support IP_LOCAL_PORT_RANGE and IP_BIND_ADDRESS_NO_PORT\"): a broken backport or a regression"
        );
    }

    /// A pinned profile wins over the version, both ways.
    #[test]
    fn a_pinned_profile_accepts_only_itself() {
        for release in ["6.1.0-56-cloud-amd64", "6.12.57"] {
            for pinned in Profile::ALL {
                for observed in Profile::ALL {
                    for property in Property::ALL {
                        let verdict =
                            Expectation::new(Some(pinned), release).judge(property, observed);
                        assert_eq!(verdict.is_none(), pinned == observed, "{verdict:?}");
                    }
                }
            }
        }
        assert_eq!(
            Expectation::new(Some(Profile::Upstream), "6.1.0")
                .judge(Property::ConnectParity, Profile::Stable61)
                .unwrap(),
            "connect() parity matched the stable-6.1 profile, but upstream was expected (--expect-profile upstream)"
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
