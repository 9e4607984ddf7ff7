//! `PORTRANGE_REQUIRE`: which prerequisites a test run must have.
//!
//! Tests that need root, QEMU or a kernel build skip with a printed reason
//! where those are missing, so that `cargo test` works on any machine. In
//! CI a skip nobody reads is as bad as a false pass: with
//! `PORTRANGE_REQUIRE=root,vm,kbuild,ci-engines` (a comma list; `all` for every one)
//! a missing prerequisite named there fails the test instead, saying what
//! was missing.
//!
//! One leaf crate, because every layer's tests need it: `netns-util`'s
//! (below the harness), `qemu`'s and `kbuild`'s (which stand apart from the
//! harness), the harness's `cargo test` trials and the application's
//! end-to-end tests. A module of the harness could not be used by the
//! first three without turning the crate graph around.

use std::fmt;

/// The environment variable holding the list.
pub const ENV: &str = "PORTRANGE_REQUIRE";

/// Something a test may need from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Root, or unprivileged user namespaces: anything that makes a
    /// network namespace.
    Root,
    /// QEMU, and the prebuilt kernels it boots (fetched with apt-get on
    /// first use).
    Vm,
    /// What building a kernel needs: the build tools and Debian's kernel
    /// source package.
    Kbuild,
    /// The CI tools `.ci/install-deps` installs: the engines the templates
    /// are run under for real (gitlab-ci-local, and LAVA's `lava-run` from
    /// Debian's lava-dispatcher) and the dashboards (KernelCI's kcidb-io
    /// validator and LKFT's SQUAD server from PyPI, each in a virtual
    /// environment under the cache; curl and jq for the SQUAD script).
    CiEngines,
}

impl Requirement {
    /// Every requirement, in the order `all` lists them.
    pub const ALL: [Requirement; 4] = [
        Requirement::Root,
        Requirement::Vm,
        Requirement::Kbuild,
        Requirement::CiEngines,
    ];

    /// The word naming it in [`ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Root => "root",
            Requirement::Vm => "vm",
            Requirement::Kbuild => "kbuild",
            Requirement::CiEngines => "ci-engines",
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value of [`ENV`] that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ENV}={value:?}: unknown requirement {word:?}: give a comma list of root, vm, kbuild, ci-engines, or all"
)]
pub struct ParseError {
    /// The whole value.
    pub value: String,
    /// The word that is not a requirement.
    pub word: String,
}

/// The requirements a run insists on; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Required(Vec<Requirement>);

impl Required {
    /// Parses a comma list (`root,vm`, `all`); blanks around words and
    /// empty words are ignored, so an empty value requires nothing.
    pub fn parse(value: &str) -> Result<Required, ParseError> {
        let mut required = Vec::new();
        for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let found: &[Requirement] = match word {
                "all" => &Requirement::ALL,
                "root" => &[Requirement::Root],
                "vm" => &[Requirement::Vm],
                "kbuild" => &[Requirement::Kbuild],
                "ci-engines" => &[Requirement::CiEngines],
                _ => {
                    return Err(ParseError {
                        value: value.to_owned(),
                        word: word.to_owned(),
                    });
                }
            };
            for requirement in found {
                if !required.contains(requirement) {
                    required.push(*requirement);
                }
            }
        }
        Ok(Required(required))
    }

    /// The requirements [`ENV`] names; none when it is unset.
    pub fn from_env() -> Result<Required, ParseError> {
        match std::env::var(ENV) {
            Ok(value) => Required::parse(&value),
            Err(_) => Ok(Required::default()),
        }
    }

    /// Whether `requirement` is insisted on.
    pub fn contains(&self, requirement: Requirement) -> bool {
        self.0.contains(&requirement)
    }

    /// What a test does when `requirement` is missing for `reason`: `Ok`
    /// to skip, or the failure message when the requirement is insisted on.
    pub fn missing(&self, requirement: Requirement, reason: &str) -> Result<(), String> {
        if self.contains(requirement) {
            Err(format!(
                "{ENV} includes {requirement}, but it is missing here: {reason}"
            ))
        } else {
            Ok(())
        }
    }
}

/// For a test whose `requirement` is missing for `reason`: prints
/// `skipped: <reason>` (the test then returns early), or panics naming
/// what is missing when [`ENV`] insists on it (or does not parse).
pub fn skip_or_fail(requirement: Requirement, reason: &str) {
    let required = Required::from_env().unwrap_or_else(|e| panic!("{e}"));
    if let Err(message) = required.missing(requirement, reason) {
        panic!("{message}");
    }
    eprintln!("skipped: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_all_means_every_one() {
        assert_eq!(Required::parse("").unwrap(), Required::default());
        assert_eq!(
            Required::parse(" vm , root,vm").unwrap(),
            Required(vec![Requirement::Vm, Requirement::Root])
        );
        assert_eq!(
            Required::parse("all").unwrap(),
            Required(Requirement::ALL.to_vec())
        );
    }

    #[test]
    fn an_unknown_word_is_named() {
        let error = Required::parse("root,qemu").unwrap_err();
        assert_eq!(
            error.to_string(),
            "PORTRANGE_REQUIRE=\"root,qemu\": unknown requirement \"qemu\": give a comma list of root, vm, kbuild, ci-engines, or all"
        );
    }

    #[test]
    fn a_missing_requirement_fails_only_when_insisted_on() {
        let required = Required::parse("vm").unwrap();
        assert_eq!(required.missing(Requirement::Root, "not root"), Ok(()));
        assert_eq!(
            required.missing(Requirement::Vm, "qemu-system-x86_64 not found"),
            Err("PORTRANGE_REQUIRE includes vm, but it is missing here: qemu-system-x86_64 not found".into())
        );
    }
}
