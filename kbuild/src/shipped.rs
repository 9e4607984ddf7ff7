//! What kbuild ships: ACK-format build.config files for trees that have none
//! (Debian's linux-source) and the project's own config fragment.

use std::path::PathBuf;

use arch::Arch;

use crate::per_arch::kernel_arch;

/// The minimal x86_64 configuration: tinyconfig plus the portrange
/// fragment ([`minimal`] for any architecture).
pub const MINIMAL: &str = "build.config.portrange.minimal.x86_64";

/// The minimal configuration plus what vmtest and virtme-ng need to boot it
/// (virtio PCI and serial, 9p, virtiofs, overlayfs, block layer, cgroups):
/// for comparing VM runners on one kernel.
pub const MINIMAL_PEERS: &str = "build.config.portrange.minimal-peers.x86_64";

/// The minimal x86_64 configuration with the run-time traits of Android's
/// GKI configuration (built-in command line, panic on oops with an
/// immediate reboot, lockdep, UBSAN in trap mode, modules) and LKDTM, built
/// with clang: for checking that the tool judges such a kernel right
/// ([`gki_traits`] for any architecture).
pub const GKI_TRAITS: &str = "build.config.portrange.gki-traits.x86_64";

/// The fuller configuration: x86_64_defconfig plus the portrange fragment.
pub const DEFCONFIG: &str = "build.config.portrange.x86_64";

/// File name the project fragment gets in the output directory.
pub const FRAGMENT_NAME: &str = "portrange.config";

/// The common part of the project fragment: what the cases and the VM
/// need on every architecture ([`fragment`] adds the architecture's layer).
pub const FRAGMENT: &str = include_str!("../fragments/portrange.config");

/// The project fragment for `arch`: [`FRAGMENT`], then the architecture's
/// layer. Merged into every build and checked option by option after
/// olddefconfig.
pub fn fragment(arch: Arch) -> String {
    format!("{FRAGMENT}\n{}", kernel_arch(arch).fragment)
}

/// The minimal configuration for `arch`: tinyconfig plus the project fragment.
pub fn minimal(arch: Arch) -> &'static str {
    kernel_arch(arch).minimal
}

/// The minimal configuration with GKI's run-time traits for `arch`
/// ([`GKI_TRAITS`] on x86_64).
pub fn gki_traits(arch: Arch) -> &'static str {
    kernel_arch(arch).gki_traits
}

/// The directory of the shipped build.config files (`kbuild/configs`).
pub fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// A shipped build.config by file name, e.g. [`MINIMAL`].
pub fn config(name: &str) -> PathBuf {
    configs_dir().join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_is_the_common_part_then_the_arch_layer() {
        let arm = fragment(Arch::Arm64);
        assert!(arm.starts_with(FRAGMENT));
        assert!(arm.contains("CONFIG_SERIAL_AMBA_PL011=y"));
        assert!(!arm.contains("CONFIG_ACPI=y"));
        let x86 = fragment(Arch::X86_64);
        assert!(x86.contains("CONFIG_ACPI=y"));
        assert!(x86.contains("CONFIG_SERIAL_8250_CONSOLE=y"));
        assert!(!x86.contains("PL011"));
    }

    #[test]
    fn minimal_configs_are_shipped_for_every_arch() {
        assert_eq!(minimal(Arch::X86_64), MINIMAL);
        assert_eq!(
            minimal(Arch::Arm64),
            "build.config.portrange.minimal.aarch64"
        );
    }

    #[test]
    fn gki_traits_configs_are_shipped_for_every_arch() {
        assert_eq!(gki_traits(Arch::X86_64), GKI_TRAITS);
        assert_eq!(
            gki_traits(Arch::Arm64),
            "build.config.portrange.gki-traits.aarch64"
        );
    }
}
