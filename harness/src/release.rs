//! Release lines: what a kernel's `uname -r` (and, for Debian's kernels,
//! `uname -v`) says about whether it must have `IP_LOCAL_PORT_RANGE` and
//! which kernel profile it must show. The one home of these rules;
//! docs/profiles.md says where each comes from.

use std::fmt;

use crate::profile::Profile;

/// The upstream release that introduced the option (91d0b78c5177).
pub const OPTION_SINCE: (u32, u32) = (6, 3);

/// The first 6.1 stable release with the option's backport (6728486447ee,
/// queued for 6.1.32 right after the v6.1.31 tag).
pub const STABLE_61_SINCE: u32 = 32;

/// The upstream release in which both profile-dependent behaviours changed
/// to `upstream` (one pull request, net-next for 6.8).
pub const UPSTREAM_PROFILE_SINCE: (u32, u32) = (6, 8);

/// The release line a kernel belongs to, parsed from `uname -r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `major.minor[.sublevel]` with any local suffix (`6.12.57+deb13-amd64`,
    /// `6.18.44-fc`, `6.8-rc1`).
    Kernel {
        /// `(major, minor)`.
        version: (u32, u32),
        /// The stable sublevel, when the release names one.
        sublevel: Option<u32>,
    },
    /// A Debian ABI string (`6.1.0-56-cloud-amd64`): the ABI number is not
    /// the stable sublevel, which comes from `uname -v`
    /// (`... Debian 6.1.158-1 (2025-11-09)`) when it says.
    Debian {
        /// `(major, minor)`.
        version: (u32, u32),
        /// The ABI number (`56`).
        abi: u32,
        /// The stable sublevel `uname -v` names, if it does.
        sublevel: Option<u32>,
    },
    /// An Android common kernel (`6.1.75-android14-11-g0123abcd`).
    Android {
        /// `(major, minor)`.
        version: (u32, u32),
        /// The LTS sublevel merged into it.
        sublevel: u32,
        /// The ACK branch (`android14-6.1`).
        branch: String,
    },
    /// Nothing the rules can read.
    Unknown,
}

/// What a release line says about the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionRule {
    /// The kernel must have it; the text says why.
    Required(String),
    /// The kernel predates it; the text says why.
    Predates(String),
    /// The rules cannot place the kernel; the text says why.
    Unplaced(String),
    /// The kernel must not have it (`--expect-option absent`, never a
    /// release rule); the text says why.
    Forbidden(String),
}

/// A kernel's release, as `uname` gives it, and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `uname -r`.
    pub release: String,
    /// The parsed line.
    pub line: Line,
}

impl Release {
    /// Parses `release` (`uname -r`); `build` (`uname -v`) places Debian's
    /// ABI strings on their stable sublevel.
    pub fn parse(release: &str, build: &str) -> Release {
        Release {
            release: release.to_owned(),
            line: Line::parse(release, build),
        }
    }

    /// Whether the kernel must have the option, and why.
    pub fn option_rule(&self) -> OptionRule {
        let release = &self.release;
        let predates = |version: (u32, u32)| {
            OptionRule::Predates(format!(
                "kernel {release} ({}.{}) predates Linux 6.3, which introduced IP_LOCAL_PORT_RANGE \
                 (91d0b78c5177)",
                version.0, version.1
            ))
        };
        let at_or_past = |version: (u32, u32)| {
            OptionRule::Required(format!(
                "kernel {release} ({}.{}) is at or past Linux 6.3, which introduced \
                 IP_LOCAL_PORT_RANGE (91d0b78c5177)",
                version.0, version.1
            ))
        };
        let stable_61 = |sublevel: u32, what: &str| {
            if sublevel >= STABLE_61_SINCE {
                OptionRule::Required(format!(
                    "kernel {release} is {what} 6.1.{sublevel}, at or past 6.1.{STABLE_61_SINCE}, \
                     the first 6.1 stable release with the backport (6728486447ee)"
                ))
            } else {
                OptionRule::Predates(format!(
                    "kernel {release} is {what} 6.1.{sublevel}, before 6.1.{STABLE_61_SINCE}, the \
                     first 6.1 stable release with the backport (6728486447ee)"
                ))
            }
        };
        match &self.line {
            Line::Kernel { version, .. }
            | Line::Debian { version, .. }
            | Line::Android { version, .. }
                if *version >= OPTION_SINCE =>
            {
                at_or_past(*version)
            }
            Line::Kernel {
                version: (6, 1),
                sublevel: Some(sublevel),
            } => stable_61(*sublevel, "Linux"),
            Line::Kernel {
                version: (6, 1),
                sublevel: None,
            } => OptionRule::Unplaced(format!(
                "kernel {release} is a 6.1 that names no stable release, and the backport came \
                 in 6.1.{STABLE_61_SINCE}"
            )),
            Line::Debian {
                version: (6, 1),
                sublevel: Some(sublevel),
                ..
            } => stable_61(*sublevel, "Debian's build of"),
            Line::Debian {
                version: (6, 1),
                abi,
                sublevel: None,
            } => OptionRule::Unplaced(format!(
                "kernel {release} is Debian's 6.1 ABI {abi}, and uname -v names no Debian \
                 package version: an ABI number is not a stable release"
            )),
            Line::Android {
                version: (6, 1),
                sublevel,
                branch,
            } if *sublevel >= STABLE_61_SINCE => OptionRule::Required(format!(
                "kernel {release} is ACK {branch} with 6.1.{sublevel} merged, at or past \
                 6.1.{STABLE_61_SINCE}, the first 6.1 stable release with the backport (6728486447ee)"
            )),
            Line::Android {
                version, branch, ..
            } => OptionRule::Unplaced(format!(
                "kernel {release} is ACK {branch} ({}.{}), older than 6.3 and not a 6.1 at or past \
                 6.1.{STABLE_61_SINCE}: whether ACK carries the option there is not known to these rules",
                version.0, version.1
            )),
            Line::Kernel { version, .. } | Line::Debian { version, .. } => predates(*version),
            Line::Unknown => OptionRule::Unplaced(format!(
                "kernel release {release:?} is not major.minor[.sublevel]"
            )),
        }
    }

    /// The profile every property must show, and why; `None` when the
    /// release line does not say (then only combinations that some line
    /// has are accepted, [`crate::profile::Tally`]).
    pub fn profile(&self) -> Option<(Profile, String)> {
        let version = match &self.line {
            Line::Kernel { version, .. }
            | Line::Debian { version, .. }
            | Line::Android { version, .. } => *version,
            Line::Unknown => return None,
        };
        let (major, minor) = UPSTREAM_PROFILE_SINCE;
        if version >= UPSTREAM_PROFILE_SINCE {
            return Some((
                Profile::Upstream,
                format!(
                    "kernel {} is at or past {major}.{minor}, where the upstream behaviour of both \
                     properties landed",
                    self.release
                ),
            ));
        }
        if version >= (6, 1) {
            return Some((
                Profile::Stable61,
                format!(
                    "kernel {} is on a line before {major}.{minor} (6.1 stable, 6.3 to 6.7), which \
                     took neither change of {major}.{minor}",
                    self.release
                ),
            ));
        }
        None
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Kernel {
                version: (major, minor),
                sublevel: Some(sublevel),
            } => write!(f, "Linux {major}.{minor}.{sublevel}"),
            Line::Kernel {
                version: (major, minor),
                sublevel: None,
            } => write!(f, "Linux {major}.{minor}"),
            Line::Debian {
                version: (major, minor),
                abi,
                sublevel,
            } => {
                write!(f, "Debian {major}.{minor} ABI {abi}")?;
                match sublevel {
                    Some(sublevel) => write!(f, " ({major}.{minor}.{sublevel})"),
                    None => Ok(()),
                }
            }
            Line::Android {
                sublevel,
                branch,
                version: (major, minor),
            } => write!(f, "ACK {branch} ({major}.{minor}.{sublevel})"),
            Line::Unknown => f.write_str("unknown"),
        }
    }
}

impl Line {
    /// The line of `release` (`uname -r`), `build` (`uname -v`) placing a
    /// Debian ABI string.
    pub fn parse(release: &str, build: &str) -> Line {
        let (numbers, suffix) = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or((release, ""), |at| release.split_at(at));
        let mut parts = numbers.split('.').filter(|p| !p.is_empty());
        let (Some(Ok(major)), Some(Ok(minor))) = (
            parts.next().map(str::parse::<u32>),
            parts.next().map(str::parse::<u32>),
        ) else {
            return Line::Unknown;
        };
        let version = (major, minor);
        let sublevel = parts.next().and_then(|p| p.parse().ok());
        if let Some(branch) = android_branch(suffix, version) {
            return Line::Android {
                version,
                sublevel: sublevel.unwrap_or(0),
                branch,
            };
        }
        if sublevel == Some(0) {
            if let Some(abi) = debian_abi(suffix) {
                return Line::Debian {
                    version,
                    abi,
                    sublevel: debian_sublevel(build, version),
                };
            }
        }
        Line::Kernel { version, sublevel }
    }
}

/// `android14` of `-android14-11-g0123abcd`, as the ACK branch
/// `android14-6.1`.
fn android_branch(suffix: &str, (major, minor): (u32, u32)) -> Option<String> {
    let rest = suffix.strip_prefix("-android")?;
    let release: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!release.is_empty()).then(|| format!("android{release}-{major}.{minor}"))
}

/// The ABI number of Debian's `-56-cloud-amd64` suffix (after `X.Y.0`).
fn debian_abi(suffix: &str) -> Option<u32> {
    let rest = suffix.strip_prefix('-')?;
    let (abi, flavour) = rest.split_once('-')?;
    (!flavour.is_empty()).then_some(())?;
    abi.parse().ok()
}

/// The sublevel of `Debian X.Y.Z-N` in `uname -v`, when it is of `version`.
fn debian_sublevel(build: &str, (major, minor): (u32, u32)) -> Option<u32> {
    let prefix = format!("Debian {major}.{minor}.");
    let at = build.find(&prefix)? + prefix.len();
    let digits: String = build[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(release: &str) -> Line {
        Line::parse(release, "#1 SMP PREEMPT_DYNAMIC")
    }

    #[test]
    fn releases_parse_into_lines() {
        assert_eq!(
            line("6.12.57+deb13-cloud-amd64"),
            Line::Kernel {
                version: (6, 12),
                sublevel: Some(57)
            }
        );
        assert_eq!(
            line("6.8-rc1"),
            Line::Kernel {
                version: (6, 8),
                sublevel: None
            }
        );
        assert_eq!(
            line("6.1.0-56-cloud-amd64"),
            Line::Debian {
                version: (6, 1),
                abi: 56,
                sublevel: None
            }
        );
        assert_eq!(
            Line::parse(
                "6.1.0-56-cloud-amd64",
                "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)"
            ),
            Line::Debian {
                version: (6, 1),
                abi: 56,
                sublevel: Some(158)
            }
        );
        assert_eq!(
            line("6.1.75-android14-11-g0123abcd"),
            Line::Android {
                version: (6, 1),
                sublevel: 75,
                branch: "android14-6.1".into()
            }
        );
        assert_eq!(
            line("5.15.148-android13-8-00001-gabc"),
            Line::Android {
                version: (5, 15),
                sublevel: 148,
                branch: "android13-5.15".into()
            }
        );
        assert_eq!(
            line("6.1.25"),
            Line::Kernel {
                version: (6, 1),
                sublevel: Some(25)
            }
        );
        assert_eq!(line("unknown"), Line::Unknown);
        assert_eq!(line(""), Line::Unknown);
    }

    /// The option rule for every kind of line, on both sides of each
    /// boundary (6.3 upstream, 6.1.32 stable).
    #[test]
    fn the_option_is_required_from_6_3_and_6_1_32() {
        let debian_158 = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1 (2025-11-09)";
        let debian_27 = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.27-1 (2023-05-08)";
        let table = [
            ("6.18.44-fc-v1252", "", "required"),
            ("6.3.0", "", "required"),
            ("6.2.16", "", "predates"),
            ("6.1.32", "", "required"),
            ("6.1.31", "", "predates"),
            ("6.1-custom", "", "unplaced"),
            ("5.10.0-35-cloud-amd64", "", "predates"),
            ("6.1.0-56-cloud-amd64", debian_158, "required"),
            ("6.1.0-9-cloud-amd64", debian_27, "predates"),
            ("6.1.0-56-cloud-amd64", "#1 SMP", "unplaced"),
            ("6.1.75-android14-11-g0123abcd", "", "required"),
            ("6.1.25-android14-4-gabc", "", "unplaced"),
            ("6.6.30-android15-8-gabc", "", "required"),
            ("5.15.148-android13-8-gabc", "", "unplaced"),
            ("my-kernel", "", "unplaced"),
        ];
        for (release, build, expected) in table {
            let rule = Release::parse(release, build).option_rule();
            let kind = match rule {
                OptionRule::Required(_) => "required",
                OptionRule::Predates(_) => "predates",
                OptionRule::Unplaced(_) => "unplaced",
                OptionRule::Forbidden(_) => "forbidden",
            };
            assert_eq!(kind, expected, "{release} {build:?}: {rule:?}");
        }
    }

    #[test]
    fn rules_name_the_release_and_the_boundary() {
        let rule = Release::parse("6.1.0-56-cloud-amd64", "Debian 6.1.158-1").option_rule();
        assert_eq!(
            rule,
            OptionRule::Required(
                "kernel 6.1.0-56-cloud-amd64 is Debian's build of 6.1.158, at or past 6.1.32, the \
                 first 6.1 stable release with the backport (6728486447ee)"
                    .into()
            )
        );
        let rule = Release::parse("5.10.0-35-cloud-amd64", "").option_rule();
        assert_eq!(
            rule,
            OptionRule::Predates(
                "kernel 5.10.0-35-cloud-amd64 (5.10) predates Linux 6.3, which introduced \
                 IP_LOCAL_PORT_RANGE (91d0b78c5177)"
                    .into()
            )
        );
    }

    #[test]
    fn each_line_answers_one_profile() {
        let profile = |release| Release::parse(release, "").profile().map(|(p, _)| p);
        assert_eq!(profile("6.1.0-56-cloud-amd64"), Some(Profile::Stable61));
        assert_eq!(profile("6.1.75-android14-11-g0"), Some(Profile::Stable61));
        assert_eq!(profile("6.6.30-android15-8-g0"), Some(Profile::Stable61));
        assert_eq!(profile("6.7.12"), Some(Profile::Stable61));
        assert_eq!(profile("6.8.0"), Some(Profile::Upstream));
        assert_eq!(profile("6.12.57+deb13-amd64"), Some(Profile::Upstream));
        assert_eq!(profile("5.15.148-android13-8-g0"), None);
        assert_eq!(profile("unknown"), None);
    }
}
