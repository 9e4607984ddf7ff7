//! Loading the packed kernel modules in order.

use std::ffi::CStr;
use std::fs::File;

use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};

use super::Error;
use crate::layout::{MODULES_DIR, MODULES_MANIFEST, ModuleManifest, Unavailable};

/// What became of the modules the host was asked to pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleReport {
    /// Modules loaded (dependencies included), in load order.
    pub loaded: Vec<String>,
    /// Modules built into the kernel: nothing to load, but present.
    pub builtin: Vec<String>,
    /// Modules missing from the kernel or that failed to load, with the reason.
    pub unavailable: Vec<Unavailable>,
}

impl ModuleReport {
    /// Whether module `name` is usable (loaded or built in); `-` and `_` are
    /// the same in module names.
    pub fn available(&self, name: &str) -> bool {
        let name = name.replace('-', "_");
        self.loaded.contains(&name) || self.builtin.contains(&name)
    }
}

/// Loads every module of the manifest; failures are recorded, not fatal.
pub(super) fn load_all() -> Result<ModuleReport, Error> {
    let text = std::fs::read_to_string(MODULES_MANIFEST).map_err(|source| Error::Io {
        what: "reading",
        path: MODULES_MANIFEST,
        source,
    })?;
    let manifest: ModuleManifest = serde_json::from_str(&text).map_err(|source| Error::Layout {
        path: MODULES_MANIFEST,
        source,
    })?;
    let mut report = ModuleReport {
        builtin: manifest.builtin,
        unavailable: manifest.unavailable,
        ..ModuleReport::default()
    };
    for file_name in manifest.load_order {
        let name = file_name.trim_end_matches(".ko").to_string();
        match load(&format!("{MODULES_DIR}/{file_name}")) {
            Ok(()) => report.loaded.push(name),
            Err(reason) => report.unavailable.push(Unavailable { name, reason }),
        }
    }
    Ok(report)
}

fn load(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("opening {path} failed: {e}"))?;
    let no_parameters: &CStr = c"";
    match finit_module(&file, no_parameters, ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(refusal(path, errno)),
    }
}

/// Why the kernel refused the module at `path`, from finit_module's errno.
fn refusal(path: &str, errno: Errno) -> String {
    let meaning = match errno {
        Errno::EKEYREJECTED | Errno::ENOKEY | Errno::EBADMSG | Errno::ENOPKG => {
            "its signature is missing, does not verify, or is made with a key or algorithm \
             the kernel does not trust, and the kernel requires valid ones \
             (CONFIG_MODULE_SIG_FORCE, or module.sig_enforce=1 on its command line)"
        }
        Errno::EPERM => {
            "the kernel does not allow loading modules (kernel.modules_disabled, lockdown, \
             or a security module)"
        }
        Errno::ENOEXEC => {
            "it is not a module for this kernel (another version, architecture or format)"
        }
        _ => "see the console for the kernel's reason",
    };
    format!("the kernel refused {path} (finit_module: {errno}): {meaning}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_refusal_says_so() {
        let text = refusal("/modules/sctp.ko", Errno::EKEYREJECTED);
        assert!(
            text.starts_with(
                "the kernel refused /modules/sctp.ko (finit_module: EKEYREJECTED: Key was rejected by service)"
            ),
            "{text}"
        );
        assert!(text.contains("module.sig_enforce=1"), "{text}");
        assert!(refusal("/m", Errno::EIO).ends_with("see the console for the kernel's reason"));
    }

    #[test]
    fn availability_ignores_dash_and_underscore() {
        let report = ModuleReport {
            loaded: vec!["mptcp_diag".into()],
            builtin: vec!["mptcp".into()],
            unavailable: vec![],
        };
        assert!(report.available("mptcp-diag"));
        assert!(report.available("mptcp"));
        assert!(!report.available("sctp"));
    }
}
