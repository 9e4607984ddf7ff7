//! What building a kernel takes on each architecture, chosen in one place:
//! where make leaves the image, what it is called as a make goal, where
//! the architecture's Kconfig is, which cross compiler builds it from
//! another host with gcc (with LLVM=1, clang targets ARCH by itself), the
//! architecture's layer of the portrange fragment and the shipped minimal
//! build.config.

use arch::Arch;

/// One architecture's kernel build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelArch {
    /// The architecture.
    pub arch: Arch,
    /// The bootable image, relative to the output directory.
    pub image: &'static str,
    /// The make goal that builds [`KernelArch::image`], when MAKE_GOALS is unset.
    pub make_goal: &'static str,
    /// The architecture's Kconfig, relative to the source tree: a tree
    /// without it cannot build for the architecture.
    pub kconfig: &'static str,
    /// CROSS_COMPILE for gcc when the host is another architecture
    /// (Debian's cross compiler's prefix).
    pub cross_compile: &'static str,
    /// The Debian package with that cross compiler.
    pub cross_package: &'static str,
    /// The architecture's layer of the portrange fragment.
    pub fragment: &'static str,
    /// The shipped minimal build.config for the architecture.
    pub minimal: &'static str,
    /// The shipped build.config of the minimal kernel with GKI's run-time
    /// traits for the architecture.
    pub gki_traits: &'static str,
}

/// x86_64: QEMU's pc machine boots bzImage.
const X86_64: KernelArch = KernelArch {
    arch: Arch::X86_64,
    image: "arch/x86/boot/bzImage",
    make_goal: "bzImage",
    kconfig: "arch/x86/Kconfig",
    cross_compile: "x86_64-linux-gnu-",
    cross_package: "gcc-x86-64-linux-gnu",
    fragment: include_str!("../fragments/portrange.x86_64.config"),
    minimal: "build.config.portrange.minimal.x86_64",
    gki_traits: "build.config.portrange.gki-traits.x86_64",
};

/// arm64: QEMU's virt machine boots the uncompressed Image.
const ARM64: KernelArch = KernelArch {
    arch: Arch::Arm64,
    image: "arch/arm64/boot/Image",
    make_goal: "Image",
    kconfig: "arch/arm64/Kconfig",
    cross_compile: "aarch64-linux-gnu-",
    cross_package: "gcc-aarch64-linux-gnu",
    fragment: include_str!("../fragments/portrange.arm64.config"),
    minimal: "build.config.portrange.minimal.aarch64",
    gki_traits: "build.config.portrange.gki-traits.aarch64",
};

/// The kernel build for `arch`.
pub fn kernel_arch(arch: Arch) -> &'static KernelArch {
    match arch {
        Arch::X86_64 => &X86_64,
        Arch::Arm64 => &ARM64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_builds_a_bzimage() {
        let x86 = kernel_arch(Arch::X86_64);
        assert_eq!(
            (x86.image, x86.make_goal, x86.kconfig),
            ("arch/x86/boot/bzImage", "bzImage", "arch/x86/Kconfig")
        );
        assert_eq!(x86.minimal, "build.config.portrange.minimal.x86_64");
        assert!(x86.fragment.contains("CONFIG_ACPI=y"));
    }

    #[test]
    fn arm64_builds_an_image_with_the_debian_cross_compiler() {
        let arm = kernel_arch(Arch::Arm64);
        assert_eq!(
            (arm.image, arm.make_goal, arm.kconfig),
            ("arch/arm64/boot/Image", "Image", "arch/arm64/Kconfig")
        );
        assert_eq!(
            (arm.cross_compile, arm.cross_package),
            ("aarch64-linux-gnu-", "gcc-aarch64-linux-gnu")
        );
        assert_eq!(arm.minimal, "build.config.portrange.minimal.aarch64");
        for option in [
            "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y",
            "CONFIG_SERIAL_8250_PCI=y",
            "CONFIG_PCI_HOST_GENERIC=y",
        ] {
            assert!(arm.fragment.contains(option), "{option}");
        }
    }

    #[test]
    fn every_arch_has_its_own_table_and_files() {
        for arch in Arch::ALL {
            let build = kernel_arch(arch);
            assert_eq!(build.arch, arch);
            assert!(
                build
                    .image
                    .starts_with(&format!("arch/{}/", arch.source_dir()))
            );
            assert!(build.cross_compile.starts_with(arch.gnu_name()));
            for shipped in [build.minimal, build.gki_traits] {
                assert!(crate::shipped::config(shipped).is_file(), "{shipped}");
                assert!(shipped.ends_with(arch.gnu_name()), "{shipped}");
            }
        }
    }
}
