//! The QEMU platform for each architecture: everything about a VM that
//! depends on the guest's architecture, chosen in one place.
//!
//! - x86_64: `qemu-system-x86_64`'s default `pc` machine; the kernel
//!   console on the first 16550 UART (ttyS0), the result channel on the
//!   second (ttyS1).
//! - arm64: `qemu-system-aarch64 -machine virt`. Its only UART is a PL011
//!   (ttyAMA0), the kernel console. The result channel is a 16550 UART on
//!   PCI (`-device pci-serial`, the guest's ttyS0): the same 8250 driver and
//!   tty as on x86_64, built into Debian's arm64 cloud kernels (8250_pci),
//!   where virtio-console is a module (virtio, virtio_ring, virtio_mmio,
//!   virtio_console) that would have to be loaded before the channel could
//!   open, and whose ports appear asynchronously.
//!   Under TCG the CPU is a Cortex-A57: measured here with Debian's 6.1
//!   arm64 cloud kernel, QEMU 7.2, from QEMU start to the exit of a static
//!   /init: 4.6 s, against 6.3 s with `-cpu max,pauth-impdef=on` and 20 s
//!   with `-cpu max` (emulating the architected pointer-authentication
//!   algorithm is slow). Nothing the suite checks depends on CPU features
//!   newer than ARMv8.0. A kernel built with 16K pages (Debian's
//!   `arm64-16k` flavour, Android's 16K GKI) needs the 16K translation
//!   granule, which the Cortex-A57 (and QEMU's model of it) lacks: such a
//!   kernel stops in its first instructions and the VM sits silent until
//!   the timeout (measured: Debian's 6.12.111 arm64-16k printed nothing in
//!   40 s). Those kernels get a Cortex-A76 (ARMv8.2, 16K granule, no
//!   pointer authentication to emulate), which boots that kernel to its
//!   console at once. Pointer authentication and BTI, which GKI kernels
//!   are built to use, are detected at boot: on a CPU without them the
//!   kernel runs without those protections, it does not stop. Under KVM
//!   the CPU is the host's.

use arch::Arch;

use crate::kernel::PageSize;

/// The id of the chardev (a file) the result channel's device writes to.
pub const RESULTS_CHARDEV: &str = "results";

/// What QEMU and the guest need to know about one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The QEMU program.
    pub qemu: &'static str,
    /// The Debian package that installs [`Platform::qemu`].
    pub qemu_package: &'static str,
    /// Arguments choosing the machine, if not QEMU's default.
    pub machine: &'static [&'static str],
    /// The CPU model under TCG, if not QEMU's default; KVM always uses the host's.
    pub tcg_cpu: Option<&'static str>,
    /// The CPU model under TCG for a kernel built with 16K pages, when
    /// [`Platform::tcg_cpu`] lacks the 16K translation granule.
    pub tcg_cpu_16k: Option<&'static str>,
    /// The kernel console device (`console=` on the command line); QEMU's
    /// first `-serial` port is this device.
    pub console: &'static str,
    /// QEMU's device for the result channel, writing to [`RESULTS_CHARDEV`].
    pub channel: &'static [&'static str],
    /// The result channel's device in the guest.
    pub channel_device: &'static str,
    /// Kernel command line words the architecture needs, after the
    /// common ones.
    pub cmdline: &'static [&'static str],
}

/// The x86_64 platform (see the module documentation).
const X86_64: Platform = Platform {
    qemu: "qemu-system-x86_64",
    qemu_package: "qemu-system-x86",
    machine: &[],
    tcg_cpu: None,
    tcg_cpu_16k: None,
    console: "ttyS0",
    // Another -serial port after the console's.
    channel: &["-serial", "chardev:results"],
    channel_device: "/dev/ttyS1",
    // Skips the early check that the timer interrupt reaches the IO-APIC
    // (`timer_irq_works`: jiffies must advance within a TSC-timed wait).
    // Under TCG on a loaded host the vCPU thread can miss that wait and
    // the kernel panics ("IO-APIC + timer doesn't work!") before /init:
    // measured here with a kernel build running alongside (load average
    // 11), 3 of about 20 boots of debian-6.12 and the minimal kernel.
    cmdline: &["no_timer_check"],
};

/// The arm64 platform (see the module documentation).
const ARM64: Platform = Platform {
    qemu: "qemu-system-aarch64",
    qemu_package: "qemu-system-arm",
    machine: &["-machine", "virt"],
    tcg_cpu: Some("cortex-a57"),
    tcg_cpu_16k: Some("cortex-a76"),
    console: "ttyAMA0",
    // A 16550 UART on PCI.
    channel: &["-device", "pci-serial,chardev=results"],
    channel_device: "/dev/ttyS0",
    cmdline: &[],
};

impl Platform {
    /// The CPU model under TCG for a kernel built for `page_size` (from
    /// its image, [`crate::kernel::page_size`]): one that implements the
    /// kernel's translation granule.
    pub fn tcg_cpu_for(&self, page_size: Option<PageSize>) -> Option<&'static str> {
        match page_size {
            Some(PageSize::K16) => self.tcg_cpu_16k.or(self.tcg_cpu),
            _ => self.tcg_cpu,
        }
    }
}

/// The platform for `arch`.
pub fn platform(arch: Arch) -> &'static Platform {
    match arch {
        Arch::X86_64 => &X86_64,
        Arch::Arm64 => &ARM64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_devices_write_to_the_results_chardev() {
        for arch in Arch::ALL {
            let device = platform(arch).channel.join(" ");
            assert!(
                device.ends_with(&format!(":{RESULTS_CHARDEV}"))
                    || device.ends_with(&format!("={RESULTS_CHARDEV}")),
                "{device}"
            );
        }
    }

    #[test]
    fn x86_64_is_the_pc_machine_with_two_uarts() {
        let x86 = platform(Arch::X86_64);
        assert_eq!(
            (x86.qemu, x86.qemu_package),
            ("qemu-system-x86_64", "qemu-system-x86")
        );
        assert!(x86.machine.is_empty());
        assert_eq!(x86.tcg_cpu, None);
        assert_eq!(x86.console, "ttyS0");
        assert_eq!(x86.channel, ["-serial", "chardev:results"]);
        assert_eq!(x86.channel_device, "/dev/ttyS1");
    }

    #[test]
    fn arm64_is_virt_with_a_cortex_a57_and_a_pci_uart() {
        let arm = platform(Arch::Arm64);
        assert_eq!(
            (arm.qemu, arm.qemu_package),
            ("qemu-system-aarch64", "qemu-system-arm")
        );
        assert_eq!(arm.machine, ["-machine", "virt"]);
        assert_eq!(arm.tcg_cpu, Some("cortex-a57"));
        assert_eq!(arm.console, "ttyAMA0");
        assert_eq!(arm.channel, ["-device", "pci-serial,chardev=results"]);
        assert_eq!(arm.channel_device, "/dev/ttyS0");
    }

    #[test]
    fn a_16k_page_kernel_gets_a_cpu_with_the_16k_granule() {
        let arm = platform(Arch::Arm64);
        // QEMU's Cortex-A57 has no 16K granule (ID_AA64MMFR0_EL1.TGran16 = 0).
        assert_eq!(arm.tcg_cpu_for(Some(PageSize::K16)), Some("cortex-a76"));
        for kept in [None, Some(PageSize::K4), Some(PageSize::K64)] {
            assert_eq!(arm.tcg_cpu_for(kept), Some("cortex-a57"), "{kept:?}");
        }
        assert_eq!(
            platform(Arch::X86_64).tcg_cpu_for(Some(PageSize::K16)),
            None
        );
    }
}
