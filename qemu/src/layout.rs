//! Where things live inside the initramfs: the contract between the host
//! side that packs it and the guest side that reads it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The guest argument vector, a JSON array of strings.
pub(crate) const ARGS_PATH: &str = "/portrange/args";
/// How to run the payload (JSON of [`PayloadSpec`]), if there is one.
pub(crate) const PAYLOAD_SPEC: &str = "/portrange/payload.json";
/// Where the payload's host files are packed, each under its host path;
/// the guest binds each of [`PayloadSpec::roots`] from here onto its
/// host path, read-only.
pub(crate) const HOST_DIR: &str = "/portrange/host";
/// Directory holding the packed kernel modules.
pub(crate) const MODULES_DIR: &str = "/modules";
/// The module manifest (JSON of [`ModuleManifest`]).
pub(crate) const MODULES_MANIFEST: &str = "/modules/manifest.json";
/// The kernel command line the host passed, which the guest checks
/// `/proc/cmdline` against.
pub(crate) const CMDLINE_PATH: &str = "/portrange/cmdline";
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

/// How the guest runs the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PayloadSpec {
    /// The program, by its host path.
    pub program: PathBuf,
    /// Its whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Host paths packed under [`HOST_DIR`], none inside another.
    pub roots: Vec<PathBuf>,
}

/// Where host path `path` (absolute) is packed under [`HOST_DIR`].
pub(crate) fn staged(path: &Path) -> PathBuf {
    Path::new(HOST_DIR).join(path.strip_prefix("/").unwrap_or(path))
}
