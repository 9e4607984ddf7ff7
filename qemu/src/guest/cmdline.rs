//! Whether the kernel got the command line the host passed.
//!
//! A kernel with a built-in command line (`CONFIG_CMDLINE`, as Android's GKI
//! configuration has) puts it before the boot loader's on x86 and after it
//! with arm64's `CONFIG_CMDLINE_EXTEND`: the host's words are all there and
//! the last `console=` (the host's, on x86) wins. With x86's
//! `CONFIG_CMDLINE_OVERRIDE` or arm64's `CONFIG_CMDLINE_FORCE` the built-in
//! line replaces the host's: no `console=` for the fault classifier to read,
//! no `panic=-1`. The guest checks `/proc/cmdline` first and fails its setup
//! with this reason rather than run blind.

use super::Error;
use crate::layout::CMDLINE_PATH;

/// The kernel's command line as it booted with.
const PROC_CMDLINE: &str = "/proc/cmdline";

/// The kernel's command line, after checking that it holds the one the host
/// passed.
pub(super) fn check() -> Result<String, Error> {
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: "reading",
            path,
            source,
        })
    };
    let passed = read(CMDLINE_PATH)?;
    let booted = read(PROC_CMDLINE)?;
    let booted = booted.trim_end().to_string();
    judge(&passed, &booted)?;
    Ok(booted)
}

/// An error unless `booted` holds `passed` whole, in order.
fn judge(passed: &str, booted: &str) -> Result<(), Error> {
    if booted.contains(passed) {
        return Ok(());
    }
    Err(Error::CommandLineIgnored {
        passed: passed.to_string(),
        booted: booted.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSED: &str = "console=ttyS0 panic=-1 quiet loglevel=5";
    /// The command line of ACK's x86_64 gki_defconfig.
    const GKI: &str = "console=ttynull stack_depot_disable=on cgroup_disable=pressure bootconfig";

    #[test]
    fn the_passed_line_alone_is_accepted() {
        assert!(judge(PASSED, PASSED).is_ok());
    }

    #[test]
    fn a_built_in_line_before_or_after_it_is_accepted() {
        assert!(judge(PASSED, &format!("{GKI} {PASSED}")).is_ok());
        assert!(judge(PASSED, &format!("{PASSED} {GKI}")).is_ok());
    }

    #[test]
    fn a_built_in_line_in_its_place_is_refused_naming_the_options() {
        let error = judge(PASSED, GKI).unwrap_err();
        let text = error.to_string();
        for wanted in [
            "CONFIG_CMDLINE_OVERRIDE",
            "CONFIG_CMDLINE_FORCE",
            PASSED,
            GKI,
        ] {
            assert!(text.contains(wanted), "{wanted} in {text}");
        }
    }

    #[test]
    fn a_line_cut_short_is_refused() {
        assert!(judge(PASSED, "console=ttyS0 panic=-1 quiet").is_err());
    }
}
