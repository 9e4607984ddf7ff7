//! Verdicts on a kernel with the run-time traits of Android's GKI
//! configuration (issue 16), without a GKI build: the minimal kernel plus
//! `kbuild/configs/portrange.gki-traits.fragment` (the kernel check.rs's
//! x86_64 test checks, built once under the same lock) and Debian's 6.12
//! kernel with module signatures enforced.
//!
//! - the built-in command line comes before portrange's, and the console
//!   portrange reads is still the kernel's;
//! - panic on oops with `CONFIG_PANIC_TIMEOUT=-1`: the kernel reboots at
//!   once, QEMU (-no-reboot) exits, and the verdict names the panic and the
//!   BUG before it;
//! - a lockdep report and a UBSAN trap are errors naming them;
//! - an SCTP module the kernel refuses (unsigned, with `module.sig_enforce=1`)
//!   makes the SCTP cases skip with that reason.
//!
//! Faults are provoked with LKDTM by `payloads/provoke_crash.c`, built here
//! static with gcc and run as `portrange vm -- PROGRAM`. Needs QEMU, the
//! kernel build packages (and clang-16, lld-16 and llvm-16 for the clang
//! build) of .ci/install-deps, xz and apt access for Debian's kernel; skips
//! with a printed reason without them (fails under PORTRANGE_REQUIRE=vm,kbuild).

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{gki_traits_kernel, portrange, qemu_missing, validate_ktap};

/// One VM at a time: two cores, and TCG under lockdep is slow.
static ONE_VM: Mutex<()> = Mutex::new(());

fn one_vm() -> MutexGuard<'static, ()> {
    ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Far more than a run takes (under 30 s): a guest that rebooted after its
/// panic would boot and panic again until this ran out.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The LKDTM payload, built static once per test binary; `None` (said)
/// when gcc cannot build it.
fn provoke_crash() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payloads/provoke_crash.c");
        let program = Path::new(env!("CARGO_TARGET_TMPDIR")).join("provoke_crash");
        let output = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&program)
            .arg(&source)
            .output()
            .map_err(|e| format!("running gcc: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "gcc -static could not build {} (apt-get install libc6-dev): {}",
                source.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(program)
    });
    match built {
        Ok(program) => Some(program.clone()),
        Err(reason) => {
            require::skip_or_fail(require::Requirement::Kbuild, reason);
            None
        }
    }
}

/// `portrange vm --kernel IMAGE -- provoke_crash CRASHTYPE`: its output and
/// how long it took.
fn provoke(image: &Path, payload: &Path, crashtype: &str) -> (Output, Duration) {
    let _one = one_vm();
    let started = Instant::now();
    let output = portrange(&[
        "vm",
        "--kernel",
        image.to_str().unwrap(),
        "--timeout",
        &TIMEOUT.as_secs().to_string(),
        "--",
        payload.to_str().unwrap(),
        crashtype,
    ]);
    let took = started.elapsed();
    println!(
        "{crashtype}: {took:?}, exit {:?}\n{}",
        output.status.code(),
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

#[test]
fn built_in_command_line_comes_first_and_the_console_is_still_ours() {
    let Some(image) = gki_traits_kernel() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let console = dir.path().join("console.log");
    let output = {
        let _one = one_vm();
        portrange(&[
            "vm",
            "--kernel",
            image.to_str().unwrap(),
            "--append",
            "loglevel=7",
            "--console-log",
            console.to_str().unwrap(),
            "--format",
            "ktap",
            "--exact",
            "tcp4/sockopt/round_trip",
        ])
    };
    let ktap = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{ktap}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(validate_ktap(&ktap).len(), 1, "{ktap}");
    let both = "console=ttynull stack_depot_disable=on cgroup_disable=pressure bootconfig \
                console=ttyS0 panic=-1 quiet loglevel=5 no_timer_check loglevel=7";
    assert!(
        ktap.contains(&format!("# kernel command line: {both}")),
        "{ktap}"
    );
    // On the console portrange reads: x86_64 prints the boot loader's line
    // before it puts the built-in one in front, then the line it runs with.
    let console = std::fs::read_to_string(&console).unwrap();
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

#[test]
fn panic_on_oops_reboots_at_once_and_the_verdict_names_the_bug() {
    let Some(image) = gki_traits_kernel() else {
        return;
    };
    let Some(payload) = provoke_crash() else {
        return;
    };
    let (output, took) = provoke(&image, &payload, "BUG");
    assert_eq!(output.status.code(), Some(1), "a kernel fault exits 1");
    assert!(
        vm_error(&output).starts_with(
            "kernel panic: Fatal exception (after kernel BUG at drivers/misc/lkdtm/bugs.c:"
        ),
        "{}",
        vm_error(&output)
    );
    assert!(
        took < TIMEOUT / 2,
        "QEMU should end with the reboot that follows the panic, not run into the \
         {TIMEOUT:?} timeout: {took:?}"
    );
}

#[test]
fn lockdep_report_is_an_error_naming_it() {
    let Some(image) = gki_traits_kernel() else {
        return;
    };
    let Some(payload) = provoke_crash() else {
        return;
    };
    // SPINLOCKUP takes a spinlock and returns to user space holding it.
    let (output, _) = provoke(&image, &payload, "SPINLOCKUP");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        vm_error(&output),
        "lockdep: WARNING: lock held when returning to user space!"
    );
}

#[test]
fn ubsan_trap_is_an_error_naming_it() {
    let Some(image) = gki_traits_kernel() else {
        return;
    };
    let Some(payload) = provoke_crash() else {
        return;
    };
    let (output, took) = provoke(&image, &payload, "ARRAY_BOUNDS");
    assert_eq!(output.status.code(), Some(1));
    let error = vm_error(&output);
    // With clang (GKI's compiler) x86 names the check before the oops; a
    // gcc build (kbuild's fallback without clang) traps with a plain ud2,
    // an anonymous "invalid opcode" oops.
    let out = image.ancestors().nth(4).unwrap();
    let config = std::fs::read_to_string(out.join(".config")).unwrap();
    let cause = if config.contains("\nCONFIG_CC_IS_CLANG=y\n") {
        "(after UBSAN: array index out of bounds at lkdtm_ARRAY_BOUNDS+"
    } else {
        "(after Oops: invalid opcode"
    };
    assert!(
        error.starts_with(&format!("kernel panic: Fatal exception {cause}")),
        "{error}"
    );
    assert!(took < TIMEOUT / 2, "{took:?}");
}

/// Debian's 6.12 kernel as an unpacked package tree of links into the cache,
/// with `sctp.ko` replaced by `module` (uncompressed): `portrange vm
/// --kernel ROOT/boot/vmlinuz-RELEASE` then packs the modules from
/// `ROOT/lib/modules/RELEASE`, as for any unpacked kernel package.
fn debian_6_12_with_sctp(root: &Path, module: &[u8]) -> PathBuf {
    let cache = qemu::kernel::default_cache_dir();
    let kernel = qemu::kernel::resolve("debian-6.12", &cache, &mut |step| println!("{step}"))
        .expect("debian-6.12");
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

fn sctp_ko_of_debian_6_12() -> Option<Vec<u8>> {
    let cache = qemu::kernel::default_cache_dir();
    let kernel = match qemu::kernel::resolve("debian-6.12", &cache, &mut |step| println!("{step}"))
    {
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

#[test]
fn refused_unsigned_sctp_module_skips_sctp_cases_with_the_reason() {
    if qemu_missing() {
        return;
    }
    let Some(signed) = sctp_ko_of_debian_6_12() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // Debian's own signed module loads with signatures enforced.
    let image = debian_6_12_with_sctp(&dir.path().join("signed"), &signed);
    let (code, ktap) = sctp_and_tcp_with_signatures_enforced(&image);
    assert_eq!(code, Some(0), "{ktap}");
    assert!(
        result(&ktap, "sctp4/sockopt/round_trip").starts_with("ok ") && !ktap.contains("# SKIP"),
        "{ktap}"
    );

    // Without its signature the kernel refuses it: SCTP skips, TCP passes.
    let image = debian_6_12_with_sctp(&dir.path().join("unsigned"), &strip_signature(&signed));
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
