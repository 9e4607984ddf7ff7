//! Choosing the accelerator: KVM when it really works, else TCG.
//!
//! `/dev/kvm` existing proves little: under nested virtualisation `-cpu host`
//! can fail at start ("failed to set MSR 0x10a"), and on some machines QEMU
//! prints "KVM internal error" once the kernel runs and then hangs forever.
//! So the [`probe`] boots the kernel that is about to be used, under KVM,
//! until it prints its banner. Its verdict is [`memo`]rised per boot of the
//! host and QEMU binary, so only the first run on a machine pays for it.
//! A TCG guest's threading comes from [`crate::tcg::decide`].

mod memo;
mod probe;

use std::fmt;
use std::path::Path;

use arch::Arch;

pub use memo::Memo;

use crate::kernel::Kernel;
use crate::tcg::{self, Threading};

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm, with `-cpu host`.
    Kvm,
    /// QEMU's software emulation, its vCPUs on one host thread or on one
    /// each ([`crate::tcg`]).
    Tcg(Threading),
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM, or an error if it does not work.
    Kvm,
    /// TCG without probing.
    Tcg,
    /// KVM if the probe shows it works, else TCG.
    #[default]
    Auto,
}

/// KVM was asked for explicitly and does not work.
#[derive(Debug, thiserror::Error)]
#[error("KVM was asked for but does not work here ({reason}): use --accel tcg or --accel auto")]
pub struct KvmUnusable {
    /// What the probe saw (and whether that was remembered).
    pub reason: String,
}

/// Why no accelerator could be decided.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// KVM was asked for and does not work.
    #[error(transparent)]
    KvmUnusable(#[from] KvmUnusable),
    /// The TCG threading override holds nonsense.
    #[error(transparent)]
    TcgOverride(#[from] tcg::BadOverride),
}

/// What a KVM probe found, and where the finding came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok` if a kernel booted under KVM; `Err` says why not.
    pub kvm: Result<(), String>,
    /// The memo file it was read from, when it was not probed just now.
    pub remembered_from: Option<std::path::PathBuf>,
}

/// The accelerator chosen, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the VM runs with.
    pub accel: Accel,
    /// The probe's verdict; `None` when nothing was probed (TCG asked
    /// for, or a guest of another architecture).
    pub verdict: Option<Verdict>,
    /// The guest's architecture when it is not the host's: KVM cannot run
    /// it, so it is TCG without a probe.
    pub foreign: Option<Arch>,
    /// Why TCG's threading is what [`Decision::accel`] says; `None` under
    /// KVM.
    pub tcg_reason: Option<tcg::Reason>,
}

impl fmt::Display for Decision {
    /// One line for a report, e.g. "TCG (KVM unusable: no kernel banner
    /// within 5s under KVM; remembered from /root/.cache/portrange/kvm-probe/qemu-system-x86_64);
    /// multi-threaded: QEMU 10.0.2, multi-threaded TCG measured clean from
    /// 10.0 on (docs/benchmarks.md)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.accel {
            Accel::Kvm => "KVM",
            Accel::Tcg(_) => "TCG",
        };
        match (self.foreign, &self.verdict) {
            (Some(guest), _) => write!(f, "{name} ({guest} guest on an {} host)", Arch::host())?,
            (None, None) => write!(f, "{name} (asked for, KVM not probed)")?,
            (None, Some(verdict)) => {
                match &verdict.kvm {
                    Ok(()) => write!(f, "{name} (a probe boot under KVM worked")?,
                    Err(reason) => write!(f, "{name} (KVM unusable: {reason}")?,
                }
                match &verdict.remembered_from {
                    Some(path) => write!(f, "; remembered from {})", path.display())?,
                    None => write!(f, "; probed now)")?,
                }
            }
        }
        match (self.accel, &self.tcg_reason) {
            (Accel::Tcg(threading), Some(reason)) => write!(f, "; {threading}: {reason}"),
            _ => Ok(()),
        }
    }
}

/// Decides the accelerator for booting `kernel` with `qemu`. A kernel of
/// another architecture than the host's runs under TCG without a probe
/// (KVM runs guests of the host's architecture only; `Kvm` is then an
/// error). Otherwise `Auto` and `Kvm` probe KVM for real by booting the
/// kernel, unless `memo` holds a verdict from this boot of the host for
/// this QEMU binary. Under TCG the threading is [`tcg::decide`]'s; its
/// override is checked whatever the accelerator, so a wrong one is an
/// error on every host.
pub fn decide(
    choice: AccelChoice,
    qemu: &Path,
    kernel: &Kernel,
    memo: &Memo,
) -> Result<Decision, Error> {
    tcg::check_override()?;
    let tcg_decision = |verdict, foreign| -> Result<Decision, Error> {
        let mode = tcg::decide(qemu, kernel.arch)?;
        Ok(Decision {
            accel: Accel::Tcg(mode.threading),
            verdict,
            foreign,
            tcg_reason: Some(mode.reason),
        })
    };
    let foreign = (kernel.arch != Arch::host()).then_some(kernel.arch);
    match (choice, foreign) {
        (AccelChoice::Kvm, Some(guest)) => {
            return Err(KvmUnusable {
                reason: format!(
                    "KVM runs {} guests only on this {} host, and this kernel is {guest}",
                    Arch::host(),
                    Arch::host()
                ),
            }
            .into());
        }
        (_, Some(_)) | (AccelChoice::Tcg, None) => return tcg_decision(None, foreign),
        _ => {}
    }
    let verdict = memo.recall(qemu).unwrap_or_else(|| {
        let kvm = probe::boot(qemu, &kernel.image);
        memo.store(qemu, &kvm);
        Verdict {
            kvm,
            remembered_from: None,
        }
    });
    match (&verdict.kvm, choice) {
        (Ok(()), _) => Ok(Decision {
            accel: Accel::Kvm,
            verdict: Some(verdict),
            foreign: None,
            tcg_reason: None,
        }),
        (Err(_), AccelChoice::Auto) => tcg_decision(Some(verdict), None),
        (Err(reason), _) => Err(KvmUnusable {
            reason: match &verdict.remembered_from {
                Some(path) => format!(
                    "{reason}; remembered from {}: delete it to probe again",
                    path.display()
                ),
                None => reason.clone(),
            },
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that exists nowhere: any probe of it would fail.
    fn kernel(arch: Arch) -> Kernel {
        Kernel {
            image: "/nonexistent".into(),
            arch,
            modules: None,
            release: None,
            name: "test".into(),
        }
    }

    fn other() -> Arch {
        Arch::ALL
            .into_iter()
            .find(|arch| *arch != Arch::host())
            .unwrap()
    }

    /// The stand-in QEMU's TCG mode for an `arch` guest: its version
    /// cannot be read, unless the override in this test's environment
    /// says otherwise.
    fn nonexistent_qemus_mode(arch: Arch) -> tcg::Mode {
        tcg::decide(Path::new("/nonexistent"), arch).unwrap()
    }

    #[test]
    fn tcg_needs_no_probe_and_says_how_it_threads() {
        let decision = decide(
            AccelChoice::Tcg,
            Path::new("/nonexistent"),
            &kernel(Arch::host()),
            &Memo::disabled(),
        )
        .unwrap();
        let mode = nonexistent_qemus_mode(Arch::host());
        assert_eq!(decision.accel, Accel::Tcg(mode.threading));
        assert_eq!(
            decision.to_string(),
            format!("TCG (asked for, KVM not probed); {mode}")
        );
    }

    #[test]
    fn a_foreign_guest_gets_tcg_without_a_probe_and_says_why() {
        for choice in [AccelChoice::Auto, AccelChoice::Tcg] {
            let decision = decide(
                choice,
                Path::new("/nonexistent"),
                &kernel(other()),
                &Memo::disabled(),
            )
            .unwrap();
            let mode = nonexistent_qemus_mode(other());
            assert_eq!(decision.accel, Accel::Tcg(mode.threading));
            assert_eq!(decision.verdict, None);
            assert_eq!(
                decision.to_string(),
                format!(
                    "TCG ({} guest on an {} host); {mode}",
                    other(),
                    Arch::host()
                )
            );
        }
    }

    #[test]
    fn kvm_for_a_foreign_guest_is_refused_with_the_reason() {
        let err = decide(
            AccelChoice::Kvm,
            Path::new("/nonexistent"),
            &kernel(other()),
            &Memo::disabled(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "KVM was asked for but does not work here (KVM runs {host} guests only on this \
                 {host} host, and this kernel is {}): use --accel tcg or --accel auto",
                other(),
                host = Arch::host()
            )
        );
    }

    #[test]
    fn report_line_says_whether_the_verdict_was_remembered() {
        let remembered = Decision {
            accel: Accel::Tcg(Threading::Multi),
            verdict: Some(Verdict {
                kvm: Err("no kernel banner within 5s under KVM".into()),
                remembered_from: Some("/c/kvm-probe/qemu-system-x86_64".into()),
            }),
            foreign: None,
            tcg_reason: Some(tcg::Reason::Forced),
        };
        assert_eq!(
            remembered.to_string(),
            "TCG (KVM unusable: no kernel banner within 5s under KVM; \
             remembered from /c/kvm-probe/qemu-system-x86_64); \
             multi-threaded: forced by PORTRANGE_TCG_THREAD"
        );
        let probed = Decision {
            accel: Accel::Kvm,
            verdict: Some(Verdict {
                kvm: Ok(()),
                remembered_from: None,
            }),
            foreign: None,
            tcg_reason: None,
        };
        assert_eq!(
            probed.to_string(),
            "KVM (a probe boot under KVM worked; probed now)"
        );
    }
}
