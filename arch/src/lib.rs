//! The CPU architectures portrange builds kernels for and boots them on.
//!
//! [`Arch`] is the one value that says which; each crate keeps its own
//! choices for it in one place (QEMU's machine in `qemu::platform`, the
//! kernel build in `kbuild::per_arch`, package names where packages are
//! fetched). This crate only holds the names an architecture goes by in
//! the tools around it, which are facts, not choices.

use std::fmt;
use std::str::FromStr;

/// A CPU architecture of a kernel under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// 64-bit x86 (`x86_64`, Debian's `amd64`).
    X86_64,
    /// 64-bit Arm (`arm64` in the kernel and Debian, `aarch64` in GNU and Rust).
    Arm64,
}

/// The architecture this program was built for.
#[cfg(target_arch = "x86_64")]
const HOST: Arch = Arch::X86_64;
/// The architecture this program was built for.
#[cfg(target_arch = "aarch64")]
const HOST: Arch = Arch::Arm64;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("portrange runs on x86_64 and aarch64 hosts only");

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// The architecture of the machine this runs on.
    pub const fn host() -> Arch {
        HOST
    }

    /// The kernel's name, as in `make ARCH=` and `build.config` files:
    /// `x86_64`, `arm64`. Also how portrange spells it on its command line.
    pub const fn kernel_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The kernel source directory under `arch/`: `x86`, `arm64`.
    pub const fn source_dir(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// Debian's name, as in package file names and `apt-get download
    /// PACKAGE:ARCH`: `amd64`, `arm64`.
    pub const fn debian_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The GNU name, as in `uname -m`, target triples and cross tool
    /// prefixes: `x86_64`, `aarch64`.
    pub const fn gnu_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The ELF `e_machine` of its programs and kernel modules.
    pub const fn elf_machine(self) -> u16 {
        match self {
            // EM_X86_64
            Arch::X86_64 => 62,
            // EM_AARCH64
            Arch::Arm64 => 183,
        }
    }
}

impl Default for Arch {
    /// The host's architecture.
    fn default() -> Self {
        Arch::host()
    }
}

impl fmt::Display for Arch {
    /// The kernel's name ([`Arch::kernel_name`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kernel_name())
    }
}

/// A name that is not a supported architecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {given:?}: use x86_64 or arm64 (also spelled aarch64)")]
pub struct UnknownArch {
    /// The name as given.
    pub given: String,
}

impl FromStr for Arch {
    type Err = UnknownArch;

    /// Accepts the kernel's and the GNU names: `x86_64`, `arm64`, `aarch64`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "x86_64" => Ok(Arch::X86_64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            _ => Err(UnknownArch {
                given: name.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_arm64_parse() {
        assert_eq!("arm64".parse(), Ok(Arch::Arm64));
        assert_eq!("aarch64".parse(), Ok(Arch::Arm64));
        assert_eq!("x86_64".parse(), Ok(Arch::X86_64));
    }

    #[test]
    fn unknown_names_say_what_is_accepted() {
        let err = "riscv64".parse::<Arch>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown architecture \"riscv64\": use x86_64 or arm64 (also spelled aarch64)"
        );
        assert!("amd64".parse::<Arch>().is_err());
        assert!("ARM64".parse::<Arch>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for arch in Arch::ALL {
            assert_eq!(arch.to_string().parse(), Ok(arch));
        }
    }

    #[test]
    fn names_per_tool() {
        let names = |arch: Arch| {
            (
                arch.kernel_name(),
                arch.source_dir(),
                arch.debian_name(),
                arch.gnu_name(),
                arch.elf_machine(),
            )
        };
        assert_eq!(
            names(Arch::X86_64),
            ("x86_64", "x86", "amd64", "x86_64", 62)
        );
        assert_eq!(
            names(Arch::Arm64),
            ("arm64", "arm64", "arm64", "aarch64", 183)
        );
    }

    #[test]
    fn host_is_the_default_and_matches_the_build() {
        assert_eq!(Arch::default(), Arch::host());
        assert_eq!(Arch::host().gnu_name(), std::env::consts::ARCH);
    }
}
