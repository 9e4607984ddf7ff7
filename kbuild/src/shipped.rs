//! What kbuild ships: ACK-format build.config files for trees that have none
//! (Debian's linux-source) and the project's own config fragment.

use std::path::PathBuf;

/// The minimal configuration: tinyconfig plus the portrange fragment.
pub const MINIMAL: &str = "build.config.portrange.minimal.x86_64";

/// The minimal configuration plus what vmtest and virtme-ng need to boot it
/// (virtio PCI and serial, 9p, virtiofs, overlayfs, block layer, cgroups):
/// for comparing VM runners on one kernel.
pub const MINIMAL_PEERS: &str = "build.config.portrange.minimal-peers.x86_64";

/// The fuller configuration: x86_64_defconfig plus the portrange fragment.
pub const DEFCONFIG: &str = "build.config.portrange.x86_64";

/// File name the project fragment gets in the output directory.
pub const FRAGMENT_NAME: &str = "portrange.config";

/// The project fragment: what the cases and the VM need. Merged into every
/// build and checked option by option after olddefconfig.
pub const FRAGMENT: &str = include_str!("../fragments/portrange.config");

/// The directory of the shipped build.config files (`kbuild/configs`).
pub fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// A shipped build.config by file name, e.g. [`MINIMAL`].
pub fn config(name: &str) -> PathBuf {
    configs_dir().join(name)
}
