//! QEMU's argument list, built by small pure functions.

use std::ffi::OsString;
use std::path::Path;

use crate::accel::Accel;

/// Kernel command line words that every run gets, before the user's.
///
/// `quiet` keeps boot messages off the slow emulated serial console, but it
/// also hides KERN_WARNING and so the `WARNING:` splats that [`crate::fault`]
/// looks for: `loglevel=5` after it shows warnings and worse again, which on
/// Debian's cloud kernels adds two boot lines.
const BASE_CMDLINE: &[&str] = &["console=ttyS0", "panic=-1", "quiet", "loglevel=5"];

/// Everything the argument list depends on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan<'a> {
    pub kernel_image: &'a Path,
    pub initramfs: &'a Path,
    pub accel: Accel,
    pub memory_mib: u32,
    pub console: &'a Path,
    pub results: &'a Path,
    pub append: &'a [String],
    /// Guest CPUs.
    pub cpus: u32,
}

/// The full argument list for `plan`.
pub(super) fn qemu_args(plan: &Plan<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut add = |words: Vec<String>| args.extend(words.into_iter().map(OsString::from));
    add(machine());
    add(accelerator(plan.accel));
    add(memory(plan.memory_mib));
    add(cpus(plan.cpus));
    add(serial_ports(plan.console, plan.results));
    add(boot(
        plan.kernel_image,
        plan.initramfs,
        &command_line(plan.append),
    ));
    args
}

/// No default devices, no network card, no display, exit instead of rebooting.
fn machine() -> Vec<String> {
    words(&[
        "-nodefaults",
        "-no-user-config",
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
    ])
}

/// Guest CPUs. Under KVM each is a host thread; under TCG they take turns
/// on one (see [`accelerator`]), and a second vCPU still pays: the cases'
/// waits overlap (full suite on debian-6.12, medians of four runs: 9.6 s
/// with one vCPU, 8.7 s with two).
fn cpus(count: u32) -> Vec<String> {
    vec!["-smp".to_string(), count.max(1).to_string()]
}

/// As many guest CPUs as the host has cores, at most `limit`.
pub fn cpus_for(host_cores: usize, limit: u32) -> u32 {
    u32::try_from(host_cores).unwrap_or(limit).clamp(1, limit)
}

/// KVM with the host's CPU model, or TCG with all vCPUs on one host thread.
///
/// Multi-threaded TCG (QEMU's default with `-smp` above 1) is faster, but in
/// QEMU 7.2 (Debian 12's) it can keep running a stale translation of code
/// another vCPU just rewrote. The kernel rewrites its own code whenever a
/// static key flips (an int3 first, then the new bytes, with IPIs between),
/// and a vCPU that still runs the int3 afterwards dies of "Oops: int3".
/// Measured here on debian-6.12, three VMs at once on two cores: 3 of 150
/// boots died at "sched_clock: Marking stable", against none of 150 with
/// `thread=single`. The single thread costs the full suite 1.3-2 s (8.3 s
/// against 6.3 s on debian-6.12); the boot is as fast.
fn accelerator(accel: Accel) -> Vec<String> {
    match accel {
        Accel::Kvm => words(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => words(&["-accel", "tcg,thread=single"]),
    }
}

fn memory(mib: u32) -> Vec<String> {
    vec!["-m".to_string(), format!("{mib}M")]
}

/// ttyS0 is the kernel console, ttyS1 the result channel; both go to files.
fn serial_ports(console: &Path, results: &Path) -> Vec<String> {
    let port = |id: &str, path: &Path| {
        vec![
            "-chardev".to_string(),
            format!("file,id={id},path={}", option_value(path)),
            "-serial".to_string(),
            format!("chardev:{id}"),
        ]
    };
    [port("console", console), port("results", results)].concat()
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

/// The kernel command line: the fixed words, then the user's.
fn command_line(append: &[String]) -> String {
    BASE_CMDLINE
        .iter()
        .map(|word| word.to_string())
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

/// Guest memory for an initramfs of `initramfs_bytes`: the archive and its
/// unpacked copy are both in RAM until the kernel frees the archive, so
/// twice its size plus headroom, or `requested_mib` if that is more. A
/// debug build of a test binary (tens of MiB, packed as /init and again as
/// /payload) would otherwise not fit and the boot would end in "No working
/// init found".
pub fn memory_for(requested_mib: u32, initramfs_bytes: u64) -> u32 {
    let needed = (2 * initramfs_bytes).div_ceil(1 << 20) + HEADROOM_MIB;
    u32::try_from(needed).unwrap_or(u32::MAX).max(requested_mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_has_no_network_and_does_not_reboot() {
        let args = machine();
        for wanted in ["-nodefaults", "-no-reboot"] {
            assert!(args.contains(&wanted.to_string()));
        }
        assert!(args.windows(2).any(|pair| pair == ["-nic", "none"]));
        assert!(args.windows(2).any(|pair| pair == ["-display", "none"]));
    }

    #[test]
    fn accelerators() {
        assert_eq!(accelerator(Accel::Kvm), ["-accel", "kvm", "-cpu", "host"]);
        assert_eq!(accelerator(Accel::Tcg), ["-accel", "tcg,thread=single"]);
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
        assert_eq!(memory_for(512, 200 << 20), 656);
        assert_eq!(memory_for(128, 0), 256);
    }

    #[test]
    fn console_first_then_results() {
        let args = serial_ports(Path::new("/tmp/con,sole.log"), Path::new("/tmp/results"));
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
    fn command_line_has_panic_quiet_and_the_users_words() {
        let line = command_line(&["rdinit=/nonexistent".to_string(), "loglevel=7".to_string()]);
        assert_eq!(
            line,
            "console=ttyS0 panic=-1 quiet loglevel=5 rdinit=/nonexistent loglevel=7"
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
    fn full_list_is_the_parts_in_order() {
        let plan = Plan {
            kernel_image: Path::new("/k"),
            initramfs: Path::new("/i"),
            accel: Accel::Tcg,
            memory_mib: 256,
            console: Path::new("/c"),
            results: Path::new("/r"),
            append: &[],
            cpus: 2,
        };
        let args: Vec<String> = qemu_args(&plan)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(args[0], "-nodefaults");
        assert_eq!(
            args.last().unwrap(),
            "console=ttyS0 panic=-1 quiet loglevel=5"
        );
    }
}
