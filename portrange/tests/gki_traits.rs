//! Verdicts on a kernel with the run-time traits of Android's GKI
//! configuration (issue 16), without a GKI build, on x86_64 and arm64: the
//! minimal kernel plus `kbuild/configs/portrange.gki-traits.fragment` and
//! its layer for the architecture (the kernels check.rs's tests check,
//! built once under the same lock), and Debian's 6.12 kernels with module
//! signatures enforced.
//!
//! - x86_64: the built-in command line comes before portrange's, and the
//!   console portrange reads is still the kernel's. arm64: GKI appends its
//!   built-in line after the boot loader's (CMDLINE_EXTEND, which ACK
//!   carries and Debian's 6.12 tree lacks: there the built-in line only
//!   stands in for a missing one); its `console=ttynull` after portrange's
//!   console= leaves the console portrange reads the kernel's;
//! - panic on oops with `CONFIG_PANIC_TIMEOUT=-1`: the kernel reboots at
//!   once, QEMU (-no-reboot) exits, and the verdict names the panic and the
//!   BUG before it;
//! - a lockdep report and a UBSAN trap (x86: ud2, arm64: BRK) are errors
//!   naming them;
//! - an SCTP module the kernel refuses (unsigned, with `module.sig_enforce=1`)
//!   makes the SCTP cases skip with that reason.
//!
//! Faults are provoked with LKDTM by Debian's static busybox for the guest's
//! architecture (the one static_rootfs.rs fetches into the cache) running a
//! shell line that writes the fault's name to `provoke-crash/DIRECT`, as
//! `portrange vm -- PROGRAM`. Needs QEMU (and for arm64 the cross-built
//! guest portrange), the kernel build packages (clang-16, lld-16 and
//! llvm-16 for the clang builds) of .ci/install-deps, xz and apt access for
//! Debian's kernels and busybox; skips with a printed reason without them
//! (fails under PORTRANGE_REQUIRE=vm,kbuild).

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arch::Arch;
use common::{gki_traits_kernel, portrange, qemu_missing, validate_ktap, vm_missing_for};

/// One VM at a time: two cores, and TCG under lockdep is slow.
static ONE_VM: Mutex<()> = Mutex::new(());

fn one_vm() -> MutexGuard<'static, ()> {
    ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Far more than a run takes (under 30 s on x86_64, about a minute for
/// arm64 under TCG): a guest that rebooted after its panic would boot and
/// panic again until this ran out.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The shell line busybox runs as the LKDTM payload: mounts debugfs (unless
/// LKDTM's directory is there already), writes the fault's name (`$1`: BUG, SPINLOCKUP,
/// ARRAY_BOUNDS, ...) to LKDTM's `provoke-crash/DIRECT`, and says so if the
/// kernel lived through it. Exit status 1 when debugfs or LKDTM's file could
/// not be used.
const PROVOKE: &str = "\
[ -d /sys/kernel/debug/provoke-crash ] || mount -t debugfs debugfs /sys/kernel/debug || exit 1
echo \"$1\" > /sys/kernel/debug/provoke-crash/DIRECT || exit 1
echo \"provoked $1, and the kernel lived on\"";

/// `portrange vm --kernel IMAGE -- busybox sh -c PROVOKE sh CRASHTYPE`
/// with the busybox for the image's architecture: its output and how long
/// it took.
fn provoke(arch: Arch, image: &Path, crashtype: &str) -> (Output, Duration) {
    let busybox = common::rootfs::busybox(arch);
    let _one = one_vm();
    let started = Instant::now();
    let output = common::command(&[
        "vm",
        "--kernel",
        image.to_str().unwrap(),
        "--timeout",
        &TIMEOUT.as_secs().to_string(),
        "--",
        busybox.to_str().unwrap(),
        "sh",
        "-c",
        PROVOKE,
        "sh",
        crashtype,
    ])
    // cargo's CARGO_BIN_EXE_portrange names this host's build, which
    // `portrange vm -- PROGRAM` would pack for the payload as cargo's
    // runner: not a program for an arm64 guest, and not needed here.
    .env_remove("CARGO_BIN_EXE_portrange")
    .output()
    .expect("run portrange");
    let took = started.elapsed();
    println!(
        "{crashtype} ({arch}): {took:?}, exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, took)
}

/// The VM error line `portrange vm -- PROGRAM` prints for a fault.
fn vm_error(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("portrange: VM error: "))
        .unwrap_or_else(|| panic!("no VM error in:\n{stderr}"))
        .to_owned()
}

/// `--exact tcp4/sockopt/round_trip` on `image` with the words `append`
/// after portrange's command line and the console kept: the KTAP (checked:
/// one result, exit 0) and the console log.
fn one_case_with_console(image: &Path, append: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.log");
    let mut args = vec!["vm", "--kernel", image.to_str().unwrap()];
    for word in append {
        args.extend(["--append", word]);
    }
    args.extend([
        "--console-log",
        console.to_str().unwrap(),
        "--format",
        "ktap",
        "--exact",
        "tcp4/sockopt/round_trip",
    ]);
    let output = {
        let _one = one_vm();
        portrange(&args)
    };
    let ktap = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{ktap}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(validate_ktap(&ktap).len(), 1, "{ktap}");
    (ktap, std::fs::read_to_string(&console).unwrap())
}

/// The `.config` the kernel `image` was built with (the image lies at
/// `<out>/arch/<arch>/boot/<image>`).
fn dot_config(image: &Path) -> String {
    let out = image.ancestors().nth(4).unwrap();
    std::fs::read_to_string(out.join(".config")).unwrap()
}

#[test]
fn x86_64_built_in_command_line_comes_first_and_the_console_is_still_ours() {
    let Some(image) = gki_traits_kernel(Arch::X86_64) else {
        return;
    };
    let (ktap, console) = one_case_with_console(&image, &["loglevel=7"]);
    let both = "console=ttynull stack_depot_disable=on cgroup_disable=pressure bootconfig \
                console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check loglevel=7";
    assert!(
        ktap.contains(&format!("# kernel command line: {both}")),
        "{ktap}"
    );
    // On the console portrange reads: x86_64 prints the boot loader's line
    // before it puts the built-in one in front, then the line it runs with.
    assert!(
        console.contains(
            "Command line: console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check loglevel=7\r\n"
        ),
        "{console}"
    );
    assert!(
        console.contains(&format!("Kernel command line: {both}")),
        "{console}"
    );
}

/// On Debian's 6.12 tree arm64 has no CMDLINE_EXTEND (upstream dropped it
/// in 5.12; ACK carries it back): Kconfig drops GKI's choice, the default
/// CMDLINE_FROM_BOOTLOADER takes over, and with QEMU's -append the kernel
/// runs with portrange's line alone.
#[test]
fn arm64_built_in_command_line_stands_in_only_for_a_missing_one_on_debians_tree() {
    let Some(image) = gki_traits_kernel(Arch::Arm64) else {
        return;
    };
    let config = dot_config(&image);
    assert!(
        config.contains(
            "\nCONFIG_CMDLINE=\"console=ttynull stack_depot_disable=on cgroup_disable=pressure bootconfig\"\n"
        ),
        "{config}"
    );
    assert!(
        config.contains("\nCONFIG_CMDLINE_FROM_BOOTLOADER=y\n")
            && !config.contains("CONFIG_CMDLINE_EXTEND"),
        "{config}"
    );
    let (ktap, console) = one_case_with_console(&image, &["loglevel=7"]);
    let ours = "console=ttyAMA0 panic=-1 quiet loglevel=5 loglevel=7";
    assert!(
        ktap.contains(&format!("# kernel command line: {ours}\n")),
        "{ktap}"
    );
    assert!(
        console.contains(&format!("Kernel command line: {ours}\r\n")),
        "{console}"
    );
}

/// GKI's arm64 line after portrange's, as CMDLINE_EXTEND puts it on an
/// ACK tree (appended here with --append): its `console=ttynull` comes
/// last and becomes /dev/console, yet the kernel still writes to the
/// console portrange reads, and the results come on their own channel.
#[test]
fn arm64_gki_built_in_line_after_ours_keeps_the_console_ours() {
    let Some(image) = gki_traits_kernel(Arch::Arm64) else {
        return;
    };
    let gki = [
        "console=ttynull",
        "stack_depot_disable=on",
        "cgroup_disable=pressure",
        "bootconfig",
    ];
    let append = [&["loglevel=7"][..], &gki].concat();
    let (ktap, console) = one_case_with_console(&image, &append);
    let both = format!(
        "console=ttyAMA0 panic=-1 quiet loglevel=5 {}",
        append.join(" ")
    );
    assert!(
        ktap.contains(&format!("# kernel command line: {both}\n")),
        "{ktap}"
    );
    for wanted in [
        format!("Kernel command line: {both}\r\n"),
        "Run /init as init process".to_owned(),
    ] {
        assert!(console.contains(&wanted), "{wanted:?} in {console}");
    }
}

/// The verdict's start for a panic after a failed BUG_ON() in LKDTM: arm64
/// names the oops in the panic's reason.
fn bug_panic_verdict(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => {
            "kernel panic: Fatal exception (after kernel BUG at drivers/misc/lkdtm/bugs.c:"
        }
        Arch::Arm64 => {
            "kernel panic: Oops - BUG: Fatal exception (after kernel BUG at drivers/misc/lkdtm/bugs.c:"
        }
    }
}

fn panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug(arch: Arch) {
    let Some(image) = gki_traits_kernel(arch) else {
        return;
    };
    let (output, took) = provoke(arch, &image, "BUG");
    assert_eq!(output.status.code(), Some(1), "a kernel fault exits 1");
    let error = vm_error(&output);
    assert!(error.starts_with(bug_panic_verdict(arch)), "{error}");
    assert!(
        took < TIMEOUT / 2,
        "QEMU should end with the reboot that follows the panic, not run into the \
         {TIMEOUT:?} timeout: {took:?}"
    );
}

#[test]
fn panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug_on_x86_64() {
    panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug(Arch::X86_64);
}

#[test]
fn panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug_on_arm64() {
    panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug(Arch::Arm64);
}

/// The verdict after LKDTM's SPINLOCKUP, which takes a spinlock and
/// returns to user space holding it: lockdep reports it. On x86 that report
/// is the fault; on arm64 the task's next page fault, taken in atomic
/// context, is an oops, and with panic on oops the panic names the report.
fn lockdep_verdict(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "lockdep: WARNING: lock held when returning to user space!",
        Arch::Arm64 => {
            "kernel panic: Oops: Fatal exception (after WARNING: lock held when returning to \
             user space!)"
        }
    }
}

fn lockdep_report_is_an_error_naming_it(arch: Arch) {
    let Some(image) = gki_traits_kernel(arch) else {
        return;
    };
    let (output, _) = provoke(arch, &image, "SPINLOCKUP");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(vm_error(&output), lockdep_verdict(arch));
}

#[test]
fn lockdep_report_is_an_error_naming_it_on_x86_64() {
    lockdep_report_is_an_error_naming_it(Arch::X86_64);
}

#[test]
fn lockdep_report_is_an_error_naming_it_on_arm64() {
    lockdep_report_is_an_error_naming_it(Arch::Arm64);
}

/// The verdict's start for LKDTM's ARRAY_BOUNDS under UBSAN in trap mode.
/// With clang (GKI's compiler) x86 names the check before the oops; a gcc
/// build (kbuild's fallback without clang) traps with a plain ud2, an
/// anonymous "invalid opcode" oops. arm64 traps with a BRK whose handler
/// dies naming the check either way.
fn ubsan_panic_verdict(arch: Arch, config: &str) -> &'static str {
    match arch {
        Arch::X86_64 if config.contains("\nCONFIG_CC_IS_CLANG=y\n") => {
            "kernel panic: Fatal exception (after UBSAN: array index out of bounds at lkdtm_ARRAY_BOUNDS+"
        }
        Arch::X86_64 => "kernel panic: Fatal exception (after Oops: invalid opcode",
        Arch::Arm64 => {
            "kernel panic: UBSAN: array index out of bounds: Fatal exception (after Internal \
             error: UBSAN: array index out of bounds: "
        }
    }
}

fn ubsan_trap_is_an_error_naming_it(arch: Arch) {
    let Some(image) = gki_traits_kernel(arch) else {
        return;
    };
    let (output, took) = provoke(arch, &image, "ARRAY_BOUNDS");
    assert_eq!(output.status.code(), Some(1));
    let error = vm_error(&output);
    let verdict = ubsan_panic_verdict(arch, &dot_config(&image));
    assert!(error.starts_with(verdict), "{error}");
    assert!(took < TIMEOUT / 2, "{took:?}");
}

#[test]
fn ubsan_trap_is_an_error_naming_it_on_x86_64() {
    ubsan_trap_is_an_error_naming_it(Arch::X86_64);
}

#[test]
fn ubsan_trap_is_an_error_naming_it_on_arm64() {
    ubsan_trap_is_an_error_naming_it(Arch::Arm64);
}

/// Debian's 6.12 kernel for `arch`: fetched into the cache on first use.
fn debian_6_12(arch: Arch) -> Result<qemu::kernel::Kernel, qemu::kernel::Error> {
    let cache = qemu::kernel::default_cache_dir();
    qemu::kernel::resolve_for("debian-6.12", Some(arch), &cache, &mut |step| {
        println!("{step}")
    })
}

/// Debian's 6.12 kernel for `arch` as an unpacked package tree of links
/// into the cache, with `sctp.ko` replaced by `module` (uncompressed):
/// `portrange vm --kernel ROOT/boot/vmlinuz-RELEASE` then packs the modules
/// from `ROOT/lib/modules/RELEASE`, as for any unpacked kernel package.
fn debian_6_12_with_sctp(arch: Arch, root: &Path, module: &[u8]) -> PathBuf {
    let kernel = debian_6_12(arch).expect("debian-6.12");
    let modules = kernel.modules.expect("debian-6.12 has modules");
    let release = kernel.release.expect("debian-6.12 has a release");
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let image = root.join("boot").join(format!("vmlinuz-{release}"));
    symlink(&kernel.image, &image).unwrap();
    let sctp = Path::new("kernel/net/sctp");
    let tree = root.join("lib/modules").join(&release);
    link_all_but(&modules, &tree, sctp);
    std::fs::write(tree.join(sctp).join("sctp.ko"), module).unwrap();
    image
}

/// Mirrors `from` into `to` with symbolic links, except along `keep_out`
/// (relative), whose directories are made and whose own files are left out.
fn link_all_but(from: &Path, to: &Path, keep_out: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut parts = keep_out.components();
    let first = parts.next().map(|part| part.as_os_str().to_owned());
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        match &first {
            Some(first) if *first == name => {
                link_all_but(&entry.path(), &to.join(&name), parts.as_path())
            }
            None if entry.path().is_file() => {}
            _ => symlink(entry.path(), to.join(&name)).unwrap(),
        }
    }
}

/// Ends every signed module: "~Module signature appended~\n".
const SIGNATURE_MARKER: &[u8] = b"~Module signature appended~\n";
/// The size of the kernel's `struct module_signature`, which precedes the
/// marker; its last four bytes hold the signature's length, big-endian.
const SIGNATURE_INFO: usize = 12;

/// The module without its appended signature.
fn strip_signature(module: &[u8]) -> Vec<u8> {
    let body = module
        .strip_suffix(SIGNATURE_MARKER)
        .expect("Debian signs its modules");
    let info = &body[body.len() - SIGNATURE_INFO..];
    let signature = u32::from_be_bytes(info[8..12].try_into().unwrap()) as usize;
    body[..body.len() - SIGNATURE_INFO - signature].to_vec()
}

fn sctp_ko_of_debian_6_12(arch: Arch) -> Option<Vec<u8>> {
    let kernel = match debian_6_12(arch) {
        Ok(kernel) => kernel,
        Err(e) => {
            require::skip_or_fail(require::Requirement::Vm, &e.to_string());
            return None;
        }
    };
    let modules = kernel.modules.expect("debian-6.12 has modules");
    let packed = modules.join("kernel/net/sctp/sctp.ko.xz");
    let output = Command::new("xz")
        .arg("-dc")
        .arg(&packed)
        .output()
        .map_err(|e| e.to_string())
        .and_then(|output| {
            output
                .status
                .success()
                .then_some(output.stdout)
                .ok_or_else(|| String::from_utf8_lossy(&output.stderr).into_owned())
        });
    match output {
        Ok(module) => Some(module),
        Err(e) => {
            let reason = format!(
                "xz -dc {} failed (apt-get install xz-utils): {e}",
                packed.display()
            );
            require::skip_or_fail(require::Requirement::Vm, &reason);
            None
        }
    }
}

/// The SCTP and one TCP case on `image` with module signatures enforced.
fn sctp_and_tcp_with_signatures_enforced(image: &Path) -> (Option<i32>, String) {
    let _one = one_vm();
    let output = portrange(&[
        "vm",
        "--kernel",
        image.to_str().unwrap(),
        "--append",
        "module.sig_enforce=1",
        "--format",
        "ktap",
        "--exact",
        "sctp4/sockopt/round_trip",
        "tcp4/sockopt/round_trip",
    ]);
    let ktap = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{ktap}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(validate_ktap(&ktap).len(), 2, "{ktap}");
    (output.status.code(), ktap)
}

/// The KTAP result line of case `name`.
fn result<'a>(ktap: &'a str, name: &str) -> &'a str {
    ktap.lines()
        .find(|line| line.trim_start_matches("not ").split(' ').nth(2) == Some(name))
        .unwrap_or_else(|| panic!("no result for {name} in {ktap}"))
}

fn refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason(arch: Arch) {
    let vm_missing = match arch {
        Arch::X86_64 => qemu_missing(),
        Arch::Arm64 => vm_missing_for(arch),
    };
    if vm_missing {
        return;
    }
    let Some(signed) = sctp_ko_of_debian_6_12(arch) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // Debian's own signed module loads with signatures enforced.
    let image = debian_6_12_with_sctp(arch, &dir.path().join("signed"), &signed);
    let (code, ktap) = sctp_and_tcp_with_signatures_enforced(&image);
    assert_eq!(code, Some(0), "{ktap}");
    assert!(
        result(&ktap, "sctp4/sockopt/round_trip").starts_with("ok ") && !ktap.contains("# SKIP"),
        "{ktap}"
    );

    // Without its signature the kernel refuses it: SCTP skips, TCP passes.
    let image = debian_6_12_with_sctp(
        arch,
        &dir.path().join("unsigned"),
        &strip_signature(&signed),
    );
    let (code, ktap) = sctp_and_tcp_with_signatures_enforced(&image);
    assert_eq!(code, Some(0), "skips allowed, TCP passed: {ktap}");
    assert!(
        !result(&ktap, "tcp4/sockopt/round_trip").contains('#'),
        "{ktap}"
    );
    let skip = result(&ktap, "sctp4/sockopt/round_trip");
    assert!(
        skip.starts_with("ok ") && skip.contains(" # SKIP "),
        "{ktap}"
    );
    for wanted in [
        "module sctp is unavailable: the kernel refused /modules/sctp.ko",
        "EKEYREJECTED",
        "module.sig_enforce=1",
        "SCTP over IPv4 is not available",
    ] {
        assert!(skip.contains(wanted), "{wanted} in {skip}");
    }
}

#[test]
fn refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason_on_x86_64() {
    refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason(Arch::X86_64);
}

#[test]
fn refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason_on_arm64() {
    refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason(Arch::Arm64);
}
