//! Where things live inside the initramfs: the contract between the host
//! side that packs it and the guest side that reads it.

use serde::{Deserialize, Serialize};

/// The guest argument vector, a JSON array of strings.
pub(crate) const ARGS_PATH: &str = "/portrange/args";
/// The optional payload executable.
pub(crate) const PAYLOAD_PATH: &str = "/payload";
/// Directory holding the packed kernel modules.
pub(crate) const MODULES_DIR: &str = "/modules";
/// The module manifest (JSON of [`ModuleManifest`]).
pub(crate) const MODULES_MANIFEST: &str = "/modules/manifest.json";
/// A file naming the result channel's device inside the guest, which
/// depends on the architecture ([`crate::platform::Platform::channel_device`]).
pub(crate) const CHANNEL_PATH: &str = "/portrange/channel";

/// Which modules were packed, in load order, and which could not be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleManifest {
    /// File names under `/modules`, dependencies first.
    pub load_order: Vec<String>,
    /// Requested modules (or dependencies) built into the kernel: nothing to load.
    pub builtin: Vec<String>,
    /// Requested modules that are not packed, with the reason.
    pub unavailable: Vec<Unavailable>,
}

/// A requested module that is not in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// Module name as requested.
    pub name: String,
    /// Why it is not there (not built, built in, unreadable, ...).
    pub reason: String,
}
