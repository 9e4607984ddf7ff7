//! TCG's threading: all vCPUs on one host thread, or one host thread each,
//! decided from the guest's architecture and the QEMU binary's version.
//!
//! Multi-threaded TCG is faster (bench/run of 2026-12-06: the full suite
//! on the minimal x86_64 kernel in 4.90 s against 7.57 s), but it can keep
//! running a stale translation of code another vCPU just rewrote. An
//! x86_64 kernel rewrites its own code whenever a static key flips (an
//! int3 first, then the new bytes, with IPIs between), and a vCPU that
//! still runs the int3 afterwards dies of "Oops: int3": QEMU 7.2 (Debian
//! 12's) lost 3 of 150 debian-6.12 boots that way, and QEMU 10.0.2, which
//! boots cleanly, still lost 2 of 40 runs of the code-patching stress
//! (`qemu/tests/vm.rs`; docs/vm.md), and one in a CI run. So x86_64
//! guests get one thread on every version. An arm64 kernel patches its
//! code with every CPU stopped; the same stress on an arm64 guest under
//! QEMU 10.0.2 lost none of 40 runs, nor did 150 boots: arm64 guests get
//! multi-threaded TCG from [`MEASURED_CLEAN`] on; older versions, and a
//! binary whose version cannot be read, keep one thread. [`OVERRIDE`]
//! forces either mode.

use arch::Arch;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The environment variable that forces the threading: `single` or `multi`.
pub const OVERRIDE: &str = "PORTRANGE_TCG_THREAD";

/// The oldest QEMU whose multi-threaded TCG was measured clean for arm64
/// guests (the stress ran on 10.0.2).
pub const MEASURED_CLEAN: Version = Version {
    major: 10,
    minor: 0,
    patch: 0,
};

/// How TCG runs the guest's vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threading {
    /// All vCPUs take turns on one host thread.
    Single,
    /// One host thread per vCPU.
    Multi,
}

impl Threading {
    /// The value of QEMU's `-accel` option for this threading.
    pub fn accel_option(self) -> &'static str {
        match self {
            Threading::Single => "tcg,thread=single",
            Threading::Multi => "tcg,thread=multi",
        }
    }
}

impl fmt::Display for Threading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Threading::Single => "single-threaded",
            Threading::Multi => "multi-threaded",
        })
    }
}

/// A QEMU release, from `qemu-system-* --version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// e.g. 10 in 10.0.2.
    pub major: u32,
    /// e.g. 0 in 10.0.2.
    pub minor: u32,
    /// e.g. 2 in 10.0.2; 0 when the version has two parts.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why the threading is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// [`OVERRIDE`] said so.
    Forced,
    /// The guest is x86_64, whose code patching through int3 multi-threaded
    /// TCG breaks on every version measured.
    X86CodePatching,
    /// The version is [`MEASURED_CLEAN`] or newer.
    MeasuredClean(Version),
    /// The version is older than [`MEASURED_CLEAN`].
    OlderThanMeasuredClean(Version),
    /// The version could not be read; what was tried and what came back.
    VersionUnknown(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => write!(f, "forced by {OVERRIDE}"),
            Reason::X86CodePatching => write!(
                f,
                "an x86_64 guest: multi-threaded TCG can run a stale int3 while the kernel \
                 patches its code, and QEMU 10.0.2 lost 2 of 40 code-patching runs to \
                 \"Oops: int3\" (docs/vm.md)"
            ),
            Reason::MeasuredClean(version) => write!(
                f,
                "QEMU {version}, multi-threaded TCG measured clean from {}.{} on \
                 (docs/benchmarks.md)",
                MEASURED_CLEAN.major, MEASURED_CLEAN.minor
            ),
            Reason::OlderThanMeasuredClean(version) => write!(
                f,
                "QEMU {version} is older than {}.{}: in multi-threaded mode QEMU 7.2 lost 3 of \
                 150 boots to \"Oops: int3\" (docs/vm.md)",
                MEASURED_CLEAN.major, MEASURED_CLEAN.minor
            ),
            Reason::VersionUnknown(why) => write!(
                f,
                "QEMU's version unknown ({why}); multi-threaded TCG is measured clean only from \
                 {}.{} on",
                MEASURED_CLEAN.major, MEASURED_CLEAN.minor
            ),
        }
    }
}

/// The threading chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    /// How the vCPUs run.
    pub threading: Threading,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for Mode {
    /// e.g. "multi-threaded: QEMU 10.0.2, multi-threaded TCG measured clean
    /// from 10.0 on (docs/benchmarks.md)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.threading, self.reason)
    }
}

/// [`OVERRIDE`] holds something other than `single` or `multi`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{OVERRIDE}={value:?} is not a TCG threading: set it to single or multi, or unset it")]
pub struct BadOverride {
    /// What the variable held.
    pub value: String,
}

/// The threading for a `guest` kernel under `qemu`: [`OVERRIDE`] if set,
/// else one thread for x86_64 guests, and for arm64 guests from the
/// binary's version, which is read once per binary in this process.
pub fn decide(qemu: &Path, guest: Arch) -> Result<Mode, BadOverride> {
    Ok(match (forced()?, guest) {
        (Some(mode), _) => mode,
        (None, Arch::X86_64) => Mode {
            threading: Threading::Single,
            reason: Reason::X86CodePatching,
        },
        (None, Arch::Arm64) => mode_for(version_of(qemu)),
    })
}

/// Whether [`OVERRIDE`] is unset or holds a threading.
pub fn check_override() -> Result<(), BadOverride> {
    forced().map(drop)
}

/// The mode [`OVERRIDE`] forces, if it is set.
fn forced() -> Result<Option<Mode>, BadOverride> {
    std::env::var_os(OVERRIDE)
        .map(|value| forced_mode(&value.to_string_lossy()))
        .transpose()
}

/// The mode [`OVERRIDE`]`=value` forces.
fn forced_mode(value: &str) -> Result<Mode, BadOverride> {
    let threading = match value {
        "single" => Threading::Single,
        "multi" => Threading::Multi,
        _ => {
            return Err(BadOverride {
                value: value.to_string(),
            });
        }
    };
    Ok(Mode {
        threading,
        reason: Reason::Forced,
    })
}

/// The mode the measurements give an arm64 guest under `version` (or the
/// reason it is unknown).
fn mode_for(version: Result<Version, String>) -> Mode {
    match version {
        Ok(version) if version >= MEASURED_CLEAN => Mode {
            threading: Threading::Multi,
            reason: Reason::MeasuredClean(version),
        },
        Ok(version) => Mode {
            threading: Threading::Single,
            reason: Reason::OlderThanMeasuredClean(version),
        },
        Err(why) => Mode {
            threading: Threading::Single,
            reason: Reason::VersionUnknown(why),
        },
    }
}

/// `qemu --version`, parsed; run once per binary in this process.
fn version_of(qemu: &Path) -> Result<Version, String> {
    static READ: Mutex<BTreeMap<PathBuf, Result<Version, String>>> = Mutex::new(BTreeMap::new());
    let mut read = READ.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    read.entry(qemu.to_path_buf())
        .or_insert_with(|| run_version(qemu))
        .clone()
}

fn run_version(qemu: &Path) -> Result<Version, String> {
    let output = Command::new(qemu)
        .arg("--version")
        .output()
        .map_err(|e| format!("running {} --version failed: {e}", qemu.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{} --version exited with {}",
            qemu.display(),
            output.status
        ));
    }
    parse_version(&text).ok_or_else(|| {
        format!(
            "{} --version printed no version: {:?}",
            qemu.display(),
            text.lines().next().unwrap_or_default()
        )
    })
}

/// The version in `qemu-system-* --version`'s first line, "QEMU emulator
/// version 10.0.2 (Debian ...)".
fn parse_version(text: &str) -> Option<Version> {
    let rest = text
        .lines()
        .next()?
        .strip_prefix("QEMU emulator version ")?;
    let number = rest.split_whitespace().next()?;
    let mut parts = number.split('.').map(|part| part.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = match parts.next() {
        Some(patch) => patch?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn versions_are_read_from_debian_builds() {
        let backports = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                         Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_version(backports), Some(version(10, 0, 2)));
        let bookworm = "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)\n";
        assert_eq!(parse_version(bookworm), Some(version(7, 2, 19)));
        assert_eq!(
            parse_version("QEMU emulator version 9.1"),
            Some(version(9, 1, 0))
        );
    }

    #[test]
    fn garbage_is_no_version() {
        for text in [
            "",
            "qemu-system-x86_64: command not found",
            "QEMU emulator version ",
            "QEMU emulator version ten (Debian)",
            "QEMU emulator version 10",
            "QEMU emulator version 10.x.2",
            "QEMU emulator version 10.0.2.1",
            "Copyright (c) 2003-2025\nQEMU emulator version 10.0.2",
        ] {
            assert_eq!(parse_version(text), None, "{text:?}");
        }
    }

    #[test]
    fn measured_clean_versions_get_one_thread_per_vcpu() {
        for clean in [version(10, 0, 0), version(10, 0, 2), version(11, 2, 0)] {
            let mode = mode_for(Ok(clean));
            assert_eq!(mode.threading, Threading::Multi, "{clean}");
            assert_eq!(mode.reason, Reason::MeasuredClean(clean));
        }
        assert_eq!(
            mode_for(Ok(version(10, 0, 2))).to_string(),
            "multi-threaded: QEMU 10.0.2, multi-threaded TCG measured clean from 10.0 on \
             (docs/benchmarks.md)"
        );
    }

    #[test]
    fn older_versions_keep_one_thread_with_the_measured_reason() {
        for older in [version(7, 2, 19), version(9, 2, 3)] {
            let mode = mode_for(Ok(older));
            assert_eq!(mode.threading, Threading::Single, "{older}");
            assert_eq!(mode.reason, Reason::OlderThanMeasuredClean(older));
        }
        assert_eq!(
            mode_for(Ok(version(7, 2, 19))).to_string(),
            "single-threaded: QEMU 7.2.19 is older than 10.0: in multi-threaded mode QEMU 7.2 \
             lost 3 of 150 boots to \"Oops: int3\" (docs/vm.md)"
        );
    }

    #[test]
    fn an_unknown_version_keeps_one_thread_and_says_why() {
        let mode = mode_for(Err("running /x --version failed: gone".into()));
        assert_eq!(mode.threading, Threading::Single);
        assert_eq!(
            mode.to_string(),
            "single-threaded: QEMU's version unknown (running /x --version failed: gone); \
             multi-threaded TCG is measured clean only from 10.0 on"
        );
    }

    #[test]
    fn an_x86_64_guest_keeps_one_thread_on_any_qemu() {
        let dir = tempfile::tempdir().unwrap();
        let mode = decide(&dir.path().join("qemu-system-x86_64"), Arch::X86_64).unwrap();
        assert_eq!(mode.threading, Threading::Single);
        assert_eq!(
            mode.to_string(),
            "single-threaded: an x86_64 guest: multi-threaded TCG can run a stale int3 while \
             the kernel patches its code, and QEMU 10.0.2 lost 2 of 40 code-patching runs to \
             \"Oops: int3\" (docs/vm.md)"
        );
    }

    #[test]
    fn a_binary_that_cannot_run_has_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("qemu-system-x86_64");
        let why = version_of(&missing).unwrap_err();
        assert!(
            why.starts_with(&format!("running {} --version failed: ", missing.display())),
            "{why}"
        );
    }

    #[test]
    fn the_override_forces_either_mode_and_refuses_anything_else() {
        assert_eq!(
            forced_mode("single"),
            Ok(Mode {
                threading: Threading::Single,
                reason: Reason::Forced,
            })
        );
        assert_eq!(
            forced_mode("multi").unwrap().to_string(),
            "multi-threaded: forced by PORTRANGE_TCG_THREAD"
        );
        for bad in ["", "Multi", "2", "multi "] {
            let error = forced_mode(bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "PORTRANGE_TCG_THREAD={bad:?} is not a TCG threading: set it to single or \
                     multi, or unset it"
                )
            );
        }
    }

    #[test]
    fn accel_options() {
        assert_eq!(Threading::Single.accel_option(), "tcg,thread=single");
        assert_eq!(Threading::Multi.accel_option(), "tcg,thread=multi");
    }
}
