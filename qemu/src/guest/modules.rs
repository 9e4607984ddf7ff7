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
        Err(errno) => Err(format!(
            "finit_module({path}) failed: {errno}: see the console for the kernel's reason"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
