//! QEMU's argument list, built by small pure functions.

use std::ffi::OsString;
use std::path::Path;

use crate::accel::Accel;
use crate::platform::{Platform, RESULTS_CHARDEV};

/// Kernel command line words that every run gets after `console=`, before
/// the user's.
///
/// `quiet` keeps boot messages off the slow emulated serial console, but it
/// also hides KERN_WARNING and so the `WARNING:` splats that [`crate::fault`]
/// looks for: `loglevel=5` after it shows warnings and worse again, which on
/// Debian's cloud kernels adds two boot lines.
const BASE_CMDLINE: &[&str] = &["panic=-1", "quiet", "loglevel=5"];

/// Everything the argument list depends on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan<'a> {
    /// What the guest's architecture needs.
    pub platform: &'a Platform,
    /// The CPU model under TCG ([`Platform::tcg_cpu_for`] the kernel's
    /// page size); KVM always uses the host's.
    pub tcg_cpu: Option<&'a str>,
    pub kernel_image: &'a Path,
    pub initramfs: &'a Path,
    pub accel: Accel,
    pub memory_mib: u32,
    pub console: &'a Path,
    pub results: &'a Path,
    /// The kernel command line, from [`command_line`].
    pub command_line: &'a str,
    /// Guest CPUs.
    pub cpus: u32,
}

/// The full argument list for `plan`.
pub(super) fn qemu_args(plan: &Plan<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut add = |words: Vec<String>| args.extend(words.into_iter().map(OsString::from));
    add(machine(plan.platform));
    add(accelerator(plan.accel, plan.tcg_cpu));
    add(memory(plan.memory_mib));
    add(cpus(plan.cpus));
    add(serial_ports(plan.platform, plan.console, plan.results));
    add(boot(plan.kernel_image, plan.initramfs, plan.command_line));
    args
}

/// The platform's machine, no default devices, no network card, no
/// display, exit instead of rebooting (a guest's reboot(2), and on arm64
/// its PSCI system reset, ends QEMU).
fn machine(platform: &Platform) -> Vec<String> {
    let mut args = words(platform.machine);
    args.extend(words(&[
        "-nodefaults",
        "-no-user-config",
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
    ]));
    args
}

/// Guest CPUs. Under KVM, and under multi-threaded TCG, each is a host
/// thread; under single-threaded TCG they take turns on one
/// ([`crate::tcg`]), and a second vCPU still pays: the cases' waits overlap
/// (full suite on debian-6.12, medians of four runs: 9.6 s with one vCPU,
/// 8.7 s with two).
fn cpus(count: u32) -> Vec<String> {
    vec!["-smp".to_string(), count.max(1).to_string()]
}

/// As many guest CPUs as the host has cores, at most `limit`.
pub fn cpus_for(host_cores: usize, limit: u32) -> u32 {
    u32::try_from(host_cores).unwrap_or(limit).clamp(1, limit)
}

/// KVM with the host's CPU model, or TCG with its threading
/// ([`crate::tcg::decide`]) and `tcg_cpu` (QEMU's default when `None`).
fn accelerator(accel: Accel, tcg_cpu: Option<&str>) -> Vec<String> {
    match (accel, tcg_cpu) {
        (Accel::Kvm, _) => words(&["-accel", "kvm", "-cpu", "host"]),
        (Accel::Tcg(threading), None) => words(&["-accel", threading.accel_option()]),
        (Accel::Tcg(threading), Some(cpu)) => {
            words(&["-accel", threading.accel_option(), "-cpu", cpu])
        }
    }
}

fn memory(mib: u32) -> Vec<String> {
    vec!["-m".to_string(), format!("{mib}M")]
}

/// The first serial port is the kernel console, the platform's channel
/// device the result channel; both go to files.
fn serial_ports(platform: &Platform, console: &Path, results: &Path) -> Vec<String> {
    let file = |id: &str, path: &Path| {
        vec![
            "-chardev".to_string(),
            format!("file,id={id},path={}", option_value(path)),
        ]
    };
    [
        file("console", console),
        vec!["-serial".to_string(), "chardev:console".to_string()],
        file(RESULTS_CHARDEV, results),
        words(platform.channel),
    ]
    .concat()
}

fn boot(kernel_image: &Path, initramfs: &Path, command_line: &str) -> Vec<String> {
    vec![
        "-kernel".to_string(),
        kernel_image.to_string_lossy().into_owned(),
        "-initrd".to_string(),
        initramfs.to_string_lossy().into_owned(),
        "-append".to_string(),
        command_line.to_string(),
    ]
}

/// The kernel command line: the platform's console, the fixed words, then
/// the user's.
pub(super) fn command_line(platform: &Platform, append: &[String]) -> String {
    std::iter::once(format!("console={}", platform.console))
        .chain(BASE_CMDLINE.iter().map(|word| word.to_string()))
        .chain(platform.cmdline.iter().map(|word| word.to_string()))
        .chain(append.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path as a value inside a QEMU option list, where a comma is doubled.
fn option_value(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|word| word.to_string()).collect()
}

/// Memory headroom beyond the unpacked initramfs: the kernel, page tables
/// and what the guest program allocates.
const HEADROOM_MIB: u64 = 256;

/// Guest memory for an initramfs of `initramfs_bytes`: three times its size
/// plus headroom, or `requested_mib` if that is more. The archive and its
/// unpacked copy are both in RAM until the kernel frees the archive, and
/// twice was measured too little: with a 208 MiB archive (a 104 MiB debug
/// `portrange` packed as /init and again as /payload) debian-6.12 failed
/// with "Initramfs unpacking failed: write error" at 672 MiB (twice plus
/// headroom) and booted at 800 MiB. Too little ends the boot in "No working
/// init found".
pub fn memory_for(requested_mib: u32, initramfs_bytes: u64) -> u32 {
    let needed = (3 * initramfs_bytes).div_ceil(1 << 20) + HEADROOM_MIB;
    u32::try_from(needed).unwrap_or(u32::MAX).max(requested_mib)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::platform;
    use crate::tcg::Threading;
    use arch::Arch;

    fn x86() -> &'static Platform {
        platform(Arch::X86_64)
    }

    fn arm() -> &'static Platform {
        platform(Arch::Arm64)
    }

    #[test]
    fn machine_has_no_network_and_does_not_reboot() {
        let args = machine(x86());
        for wanted in ["-nodefaults", "-no-reboot"] {
            assert!(args.contains(&wanted.to_string()));
        }
        assert!(args.windows(2).any(|pair| pair == ["-nic", "none"]));
        assert!(args.windows(2).any(|pair| pair == ["-display", "none"]));
    }

    #[test]
    fn arm64_machine_is_virt_first() {
        let args = machine(arm());
        assert_eq!(args[..3], ["-machine", "virt", "-nodefaults"]);
        assert!(args.contains(&"-no-reboot".to_string()));
    }

    #[test]
    fn accelerators() {
        for platform in [x86(), arm()] {
            assert_eq!(
                accelerator(Accel::Kvm, platform.tcg_cpu),
                ["-accel", "kvm", "-cpu", "host"]
            );
        }
        assert_eq!(
            accelerator(Accel::Tcg(Threading::Single), x86().tcg_cpu),
            ["-accel", "tcg,thread=single"]
        );
        assert_eq!(
            accelerator(Accel::Tcg(Threading::Multi), x86().tcg_cpu),
            ["-accel", "tcg,thread=multi"]
        );
        assert_eq!(
            accelerator(Accel::Tcg(Threading::Single), arm().tcg_cpu),
            ["-accel", "tcg,thread=single", "-cpu", "cortex-a57"]
        );
        assert_eq!(
            accelerator(Accel::Tcg(Threading::Multi), arm().tcg_cpu),
            ["-accel", "tcg,thread=multi", "-cpu", "cortex-a57"]
        );
    }

    #[test]
    fn memory_in_mebibytes() {
        assert_eq!(memory(512), ["-m", "512M"]);
    }

    #[test]
    fn one_vcpu_per_host_core_up_to_the_limit() {
        assert_eq!(cpus_for(2, 4), 2);
        assert_eq!(cpus_for(64, 4), 4);
        assert_eq!(cpus_for(0, 4), 1);
        assert_eq!(cpus(2), ["-smp", "2"]);
    }

    #[test]
    fn memory_grows_with_the_initramfs() {
        assert_eq!(memory_for(512, 10 << 20), 512);
        assert_eq!(memory_for(512, 200 << 20), 856);
        assert_eq!(memory_for(128, 0), 256);
    }

    #[test]
    fn console_first_then_results() {
        let args = serial_ports(
            x86(),
            Path::new("/tmp/con,sole.log"),
            Path::new("/tmp/results"),
        );
        assert_eq!(
            args,
            [
                "-chardev",
                "file,id=console,path=/tmp/con,,sole.log",
                "-serial",
                "chardev:console",
                "-chardev",
                "file,id=results,path=/tmp/results",
                "-serial",
                "chardev:results",
            ]
        );
    }

    #[test]
    fn arm64_console_is_the_pl011_and_results_a_pci_uart() {
        let args = serial_ports(arm(), Path::new("/c"), Path::new("/r"));
        assert_eq!(
            args,
            [
                "-chardev",
                "file,id=console,path=/c",
                "-serial",
                "chardev:console",
                "-chardev",
                "file,id=results,path=/r",
                "-device",
                "pci-serial,chardev=results",
            ]
        );
        assert_eq!(
            command_line(arm(), &[]),
            "console=ttyAMA0 panic=-1 quiet loglevel=5"
        );
    }

    #[test]
    fn command_line_has_panic_quiet_and_the_users_words() {
        let line = command_line(
            x86(),
            &["rdinit=/nonexistent".to_string(), "loglevel=7".to_string()],
        );
        assert_eq!(
            line,
            "console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check rdinit=/nonexistent loglevel=7"
        );
    }

    #[test]
    fn boot_passes_kernel_initrd_and_command_line() {
        let args = boot(Path::new("/k/bzImage"), Path::new("/w/initramfs"), "quiet");
        assert_eq!(
            args,
            [
                "-kernel",
                "/k/bzImage",
                "-initrd",
                "/w/initramfs",
                "-append",
                "quiet"
            ]
        );
    }

    #[test]
    fn a_16k_page_arm64_kernel_boots_on_the_cpu_chosen_for_it() {
        let plan = Plan {
            platform: arm(),
            tcg_cpu: arm().tcg_cpu_for(Some(crate::kernel::PageSize::K16)),
            kernel_image: Path::new("/k/Image"),
            initramfs: Path::new("/i"),
            accel: Accel::Tcg(Threading::Multi),
            memory_mib: 256,
            console: Path::new("/c"),
            results: Path::new("/r"),
            command_line: &command_line(arm(), &[]),
            cpus: 2,
        };
        let args: Vec<String> = qemu_args(&plan)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(
            args.windows(2).any(|pair| pair == ["-cpu", "cortex-a76"]),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a == "cortex-a57"), "{args:?}");
    }

    #[test]
    fn full_list_is_the_parts_in_order() {
        let plan = Plan {
            platform: x86(),
            tcg_cpu: x86().tcg_cpu,
            kernel_image: Path::new("/k"),
            initramfs: Path::new("/i"),
            accel: Accel::Tcg(Threading::Multi),
            memory_mib: 256,
            console: Path::new("/c"),
            results: Path::new("/r"),
            command_line: &command_line(x86(), &[]),
            cpus: 2,
        };
        let args: Vec<String> = qemu_args(&plan)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(args[0], "-nodefaults");
        assert!(
            args.windows(2)
                .any(|pair| pair == ["-accel", "tcg,thread=multi"]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|pair| pair == ["-smp", "2"]),
            "{args:?}"
        );
        assert_eq!(
            args.last().unwrap(),
            "console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check"
        );
    }
}
