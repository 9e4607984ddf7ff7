//! Boots real Debian kernels in real QEMU with the `guest_echo` example as
//! `/init`: the host's architecture, and arm64 (under TCG, from any host).
//!
//! Needs `qemu-system-x86_64` (apt-get install qemu-system-x86),
//! `qemu-system-aarch64` (apt-get install qemu-system-arm) for the arm64
//! tests, which also cross-build the example for aarch64-unknown-linux-musl
//! themselves (`rustup target add aarch64-unknown-linux-musl`), and, on the
//! first run, apt access to Debian's archive to fetch the kernels into the
//! cache (`PORTRANGE_CACHE`, else ~/.cache/portrange). Each test prints
//! `skipped: <reason>` and passes when QEMU, apt or the Rust target is
//! missing, or when the example was not built (`cargo test -p qemu` builds
//! it; `--test vm` alone does not); with `PORTRANGE_REQUIRE=vm` it fails
//! instead. One test builds its programs into a target directory of its
//! own under `target/tmp/guest-build` (the first run takes minutes).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arch::Arch;
use qemu::accel::{self, AccelChoice};
use qemu::fault::Fault;
use qemu::frame::Stream;
use qemu::guest_program::{self, Artifact, Program};
use qemu::initramfs::Payload;
use qemu::kernel::{self, Kernel};
use qemu::launch::{self, Received, VmConfig, VmRun};

/// One VM at a time: the machine has two cores and timings should mean something.
static ONE_VM: Mutex<()> = Mutex::new(());

/// Generous for TCG on a busy two-core machine; a clean boot takes seconds.
const TIMEOUT: Duration = Duration::from_secs(90);

/// QEMU, a kernel or the echo guest is missing: a skip, or a failure when
/// PORTRANGE_REQUIRE includes `vm`.
fn skip(reason: &str) {
    require::skip_or_fail(require::Requirement::Vm, reason);
}

const ECHO: Program<'static> = Program {
    package: "qemu",
    artifact: Artifact::Example("guest_echo"),
};

/// guest_echo for `arch`: the host's build from `cargo test -p qemu`, or a
/// cross build made here once per run (cargo's incremental build: seconds
/// when nothing changed), so it is never older than the source.
fn echo_binary(arch: Arch) -> Result<PathBuf, String> {
    static CROSS_BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if arch != Arch::host() {
        CROSS_BUILT
            .get_or_init(|| {
                let args = guest_program::build_args(arch, &ECHO);
                let output = Command::new(env!("CARGO"))
                    .args(&args)
                    .output()
                    .map_err(|e| format!("running cargo {}: {e}", args.join(" ")))?;
                if output.status.success() {
                    return Ok(());
                }
                Err(format!(
                    "cargo {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .filter(|line| line.starts_with("error"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })
            .clone()?;
    }
    guest_program::locate(arch, &ECHO).map_err(|e| e.to_string())
}

/// The prebuilt kernel and the echo guest for the host, or the reason to skip.
fn prepare(name: &str) -> Result<(Kernel, PathBuf), String> {
    prepare_for(name, Arch::host())
}

/// The prebuilt kernel and the echo guest for `arch`, or the reason to skip.
fn prepare_for(name: &str, arch: Arch) -> Result<(Kernel, PathBuf), String> {
    qemu::binary::locate_for(arch).map_err(|e| e.to_string())?;
    let init = echo_binary(arch)?;
    Ok((kernel_for(name, arch)?, init))
}

/// The prebuilt kernel `name` for `arch`, or the reason to skip.
fn kernel_for(name: &str, arch: Arch) -> Result<Kernel, String> {
    let mut progress = |step: &str| println!("{step}");
    let kernel = match kernel::resolve_for(
        name,
        Some(arch),
        &kernel::default_cache_dir(),
        &mut progress,
    ) {
        Ok(kernel) => kernel,
        Err(kernel::Error::Fetch(error))
            if error.to_string().contains("not found: apt-get install") =>
        {
            return Err(error.to_string());
        }
        Err(error) => panic!("resolving {name} for {arch}: {error}"),
    };
    assert_eq!(kernel.arch, arch);
    Ok(kernel)
}

fn config(kernel: Kernel, init: PathBuf, guest_args: &[&str]) -> VmConfig {
    let qemu = qemu::binary::locate_for(kernel.arch).expect("checked in prepare");
    let memo = accel::Memo::in_cache(&kernel::default_cache_dir());
    let accel = accel::decide(AccelChoice::Auto, &qemu, &kernel, &memo)
        .expect("auto never fails")
        .accel;
    VmConfig {
        kernel,
        accel,
        append: vec![],
        timeout: TIMEOUT,
        memory_mib: 256,
        console_log: None,
        init,
        payload: None,
        modules: vec![],
        guest_args: guest_args.iter().map(|arg| arg.to_string()).collect(),
    }
}

/// What the payload wrote to `stream`, as text (stdout and stderr are
/// read by separate threads: only each stream's own order holds).
fn output_of(run: &VmRun, stream: Stream) -> String {
    let bytes: Vec<u8> = run
        .output
        .iter()
        .filter(|(of, _)| *of == stream)
        .flat_map(|(_, bytes)| bytes.clone())
        .collect();
    String::from_utf8(bytes).expect("utf-8 output")
}

fn boot(config: &VmConfig) -> VmRun {
    let _one = ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (mut seen, mut seen_stderr, mut seen_output) = (Vec::new(), Vec::new(), Vec::new());
    let run = launch::run(config, &mut |received| match received {
        Received::Message(message) => seen.push(message.to_string()),
        Received::Stderr(line) => seen_stderr.push(line.to_string()),
        Received::Output(stream, bytes) => seen_output.push((stream, bytes.to_vec())),
    })
    .expect("the VM runs");
    assert_eq!(seen, run.messages, "on_message saw every message in order");
    assert_eq!(seen_stderr, run.stderr, "and every stderr line in order");
    assert_eq!(seen_output, run.output, "and all payload output in order");
    println!(
        "{} under {:?}: {:?} from QEMU start to exit, fault {:?}",
        config.kernel.name,
        config.accel,
        run.elapsed,
        run.fault.as_ref().map(ToString::to_string)
    );
    run
}

fn echo(name: &str) {
    let (kernel, init) = match prepare(name) {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let args = [
        "hello",
        "two words",
        "multi\nline | {braces} 100%",
        "exit=42",
    ];
    let run = boot(&config(kernel, init, &args));
    assert_eq!(run.fault, None, "console:\n{}", run.console);
    assert_eq!(
        run.messages,
        ["hello", "two words", "multi\nline | {braces} 100%"]
    );
    assert_eq!(run.exit_code, Some(42));
}

#[test]
fn echo_guest_returns_messages_and_exit_code_on_6_12() {
    echo("debian-6.12");
}

#[test]
fn echo_guest_returns_messages_and_exit_code_on_6_1() {
    echo("debian-6.1");
}

#[test]
fn broken_boot_is_a_fault_within_the_timeout() {
    let (kernel, init) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let mut config = config(kernel, init, &["never sent"]);
    config.append = vec!["rdinit=/nonexistent".to_string()];
    config.timeout = Duration::from_secs(60);
    let started = Instant::now();
    let run = boot(&config);
    assert!(started.elapsed() < config.timeout + Duration::from_secs(10));
    assert!(run.messages.is_empty());
    assert_eq!(run.exit_code, None);
    let fault = run.fault.expect("a broken boot is a fault");
    assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
}

#[test]
fn init_exiting_is_init_died() {
    let (kernel, init) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let run = boot(&config(kernel, init, &["first", "die"]));
    assert_eq!(run.messages, ["first"]);
    let fault = run.fault.expect("PID 1 exiting is a fault");
    assert!(matches!(fault, Fault::InitDied { .. }), "{fault:?}");
    assert!(
        fault.to_string().contains("Attempted to kill init"),
        "{fault}"
    );
}

#[test]
fn kernel_crash_is_a_kernel_panic() {
    let (kernel, init) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let run = boot(&config(kernel, init, &["before", "crash", "after"]));
    assert_eq!(run.messages, ["before"]);
    assert_eq!(run.exit_code, None);
    let fault = run.fault.expect("a crash is a fault");
    assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
    assert!(
        fault.to_string().contains("sysrq triggered crash"),
        "{fault}"
    );
}

/// The kernel rewrites its own code whenever a static key flips while
/// other CPUs run it: on x86_64 through int3 breakpoints and IPIs, on arm64
/// with all CPUs stopped (`stop_machine`) and the instruction cache
/// invalidated. Multi-threaded TCG can keep a stale translation of an x86
/// int3 and the guest dies of "Oops: int3": QEMU 7.2 (Debian 12's) failed
/// this 4 of 6 runs, and 10.0.2 too, 2 of 16 (docs/vm.md). Plain boots hit
/// the same at "sched_clock: Marking stable". This holds the emulator
/// set-up (TCG's threading from `qemu::tcg::decide`) to a guest that
/// survives 200 flips of `kernel.sched_schedstats` with its CPUs busy.
fn code_patching_survives(arch: Arch) {
    let (kernel, init) = match prepare_for("debian-6.12", arch) {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let config = config(kernel, init, &["patch-code=200"]);
    println!("{arch}: {:?}", config.accel);
    let run = boot(&config);
    assert_eq!(run.fault, None, "console:\n{}", run.console);
    assert_eq!(run.exit_code, Some(0), "{:?}", run.messages);
    let [report] = run.messages.as_slice() else {
        panic!("one report expected: {:?}", run.messages);
    };
    let cpus: usize = report
        .strip_prefix("patched 200 times on ")
        .and_then(|rest| rest.strip_suffix(" cpus"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected report {report:?}"));
    if cpus < 2 {
        println!(
            "SKIP: the guest has one CPU (one host core): the code was patched, but no other CPU ran it meanwhile"
        );
    }
}

#[test]
fn kernel_code_patching_on_busy_cpus_does_not_crash_the_guest() {
    code_patching_survives(Arch::host());
}

#[test]
fn kernel_code_patching_on_busy_cpus_does_not_crash_an_arm64_guest() {
    code_patching_survives(Arch::Arm64);
}

#[test]
fn timeout_kills_the_vm() {
    let (kernel, init) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let mut config = config(kernel, init, &["x"]);
    config.timeout = Duration::from_millis(500);
    let run = boot(&config);
    assert!(
        matches!(run.fault, Some(Fault::Timeout { .. })),
        "{:?}",
        run.fault
    );
    assert!(run.elapsed < Duration::from_secs(5));
}

fn modules_and_payload(name: &str) {
    let (kernel, init) = match prepare(name) {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let mut config = config(kernel, init.clone(), &["modules", "payload"]);
    config.modules = ["sctp", "mptcp_diag", "no_such_module"]
        .map(String::from)
        .to_vec();
    config.payload = Some(Payload::program(init));
    let run = boot(&config);
    assert_eq!(run.fault, None, "console:\n{}", run.console);
    for wanted in [
        "loaded sctp",
        "loaded libcrc32c",
        "loaded mptcp_diag",
        "loaded inet_diag",
    ] {
        assert!(
            run.messages.iter().any(|m| m == wanted),
            "{wanted} in {:?}",
            run.messages
        );
    }
    assert!(
        run.messages
            .iter()
            .any(|m| m.starts_with("unavailable no_such_module: no no_such_module.ko* file")),
        "{:?}",
        run.messages
    );
    assert_eq!(run.messages.last().unwrap(), "payload exit 7");
    assert_eq!(output_of(&run, Stream::Stdout), "one\ntwo words\n");
    assert_eq!(output_of(&run, Stream::Stderr), "to stderr\n");
    assert_eq!(run.exit_code, Some(0));
}

#[test]
fn modules_load_and_payload_runs_on_6_12() {
    modules_and_payload("debian-6.12");
}

#[test]
fn modules_load_and_payload_runs_on_6_1() {
    modules_and_payload("debian-6.1");
}

/// On arm64 (QEMU's virt machine under TCG, from any host): the result
/// channel round trip, IP_LOCAL_PORT_RANGE set and read back and honoured
/// by bind(), the SCTP and veth modules of Debian's arm64 package loaded,
/// a payload run, and a clean power-off (a PSCI system reset, which ends
/// QEMU under -no-reboot).
fn arm64_round_trip(name: &str) {
    let (kernel, init) = match prepare_for(name, Arch::Arm64) {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let args = [
        "hello",
        "multi\nline | {braces} 100%",
        "port-range=40000-40009",
        "modules",
        "payload",
        "exit=42",
    ];
    let mut config = config(kernel, init.clone(), &args);
    config.modules = ["sctp", "veth"].map(String::from).to_vec();
    config.payload = Some(Payload::program(init));
    let run = boot(&config);
    assert_eq!(run.fault, None, "console:\n{}", run.console);
    assert_eq!(run.exit_code, Some(42), "{:?}", run.messages);
    assert_eq!(output_of(&run, Stream::Stdout), "one\ntwo words\n");
    assert_eq!(run.messages[..2], ["hello", "multi\nline | {braces} 100%"]);
    let port: u16 = run.messages[2]
        .strip_prefix("port range 40000-40009 bound ")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected report {:?}", run.messages[2]));
    assert!((40000..=40009).contains(&port), "{port}");
    for wanted in ["loaded sctp", "loaded veth", "payload exit 7"] {
        assert!(
            run.messages.iter().any(|m| m == wanted),
            "{wanted} in {:?}",
            run.messages
        );
    }
    assert!(
        run.console.contains("reboot: Restarting system"),
        "the guest powers off through a PSCI reset: {}",
        run.console
    );
}

#[test]
fn arm64_guest_round_trip_on_6_12() {
    arm64_round_trip("debian-6.12");
}

#[test]
fn arm64_guest_round_trip_on_6_1() {
    arm64_round_trip("debian-6.1");
}

#[test]
fn arm64_kernel_crash_is_a_kernel_panic() {
    let (kernel, init) = match prepare_for("debian-6.12", Arch::Arm64) {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let run = boot(&config(kernel, init, &["before", "crash", "after"]));
    assert_eq!(run.messages, ["before"]);
    assert_eq!(run.exit_code, None);
    let fault = run.fault.expect("a crash is a fault");
    assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
    assert!(
        fault.to_string().contains("sysrq triggered crash"),
        "{fault}"
    );
    assert!(
        fault
            .splat()
            .iter()
            .any(|line| line.contains("Call trace:")),
        "{:?}",
        fault.splat()
    );
}

#[test]
fn prebuilt_is_reused_without_fetching_and_has_its_release() {
    let (kernel, _) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let mut steps = Vec::new();
    let again = kernel::resolve("debian-6.12", &kernel::default_cache_dir(), &mut |step| {
        steps.push(step.to_string())
    })
    .expect("the cached kernel resolves");
    assert!(
        steps.is_empty(),
        "a cached kernel is not fetched again: {steps:?}"
    );
    assert_eq!(again, kernel);
    let modules = kernel.modules.expect("Debian kernels have modules");
    let release = kernel
        .release
        .expect("the bzImage header names the release");
    assert!(release.starts_with("6.12."), "{release}");
    assert!(
        modules.ends_with(&release),
        "{} vs {release}",
        modules.display()
    );
}

#[test]
fn explicit_kvm_agrees_with_auto() {
    let (kernel, _) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let qemu = qemu::binary::locate().expect("checked in prepare");
    let memo = accel::Memo::disabled();
    let started = Instant::now();
    let auto = accel::decide(AccelChoice::Auto, &qemu, &kernel, &memo).expect("auto never fails");
    println!("auto chose {auto} in {:?}", started.elapsed());
    assert!(auto.verdict.as_ref().unwrap().remembered_from.is_none());
    match (
        auto.accel,
        accel::decide(AccelChoice::Kvm, &qemu, &kernel, &memo),
    ) {
        (accel::Accel::Kvm, Ok(explicit)) if explicit.accel == accel::Accel::Kvm => {}
        (accel::Accel::Tcg(_), Err(error)) => {
            println!("explicit KVM: {error}");
            assert!(error.to_string().contains("--accel tcg"), "{error}");
        }
        (auto, explicit) => panic!("auto gave {auto:?} but explicit KVM gave {explicit:?}"),
    }
}

#[test]
fn the_probe_verdict_is_remembered_and_says_so() {
    let (kernel, _) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let qemu = qemu::binary::locate().expect("checked in prepare");
    let cache = tempfile::tempdir().unwrap();
    let memo = accel::Memo::in_cache(cache.path());
    let first = accel::decide(AccelChoice::Auto, &qemu, &kernel, &memo).unwrap();
    let second = accel::decide(AccelChoice::Auto, &qemu, &kernel, &memo).unwrap();
    assert_eq!(first.accel, second.accel);
    let line = second.to_string();
    let verdict = second.verdict.unwrap();
    assert_eq!(verdict.kvm, first.verdict.unwrap().kvm);
    let file = verdict
        .remembered_from
        .expect("the second decision is remembered");
    assert!(file.starts_with(cache.path()), "{}", file.display());
    assert!(
        line.contains(&format!("; remembered from {})", file.display())),
        "{line}"
    );
}

/// QEMU children of this process that are still there (running or zombie).
fn qemu_children() -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            let after_comm = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            stat.contains("(qemu-system-") && after_comm.split(' ').nth(1) == Some(me.as_str())
        })
        .collect()
}

#[test]
fn panicking_callback_leaves_no_qemu_behind() {
    let (kernel, init) = match prepare("debian-6.12") {
        Ok(ready) => ready,
        Err(reason) => return skip(&reason),
    };
    let config = config(kernel, init, &["boom"]);
    let _one = ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = std::panic::catch_unwind(|| {
        launch::run(&config, &mut |received| {
            panic!("caller gave up at {received:?}")
        })
    });
    assert!(outcome.is_err(), "the callback's panic propagates");
    assert_eq!(qemu_children(), Vec::<String>::new());
}

/// `portrange vm --arch` run from a checkout that lacks the guest's build:
/// the running program builds it where it then looks (cargo's output on its
/// stderr, after one progress line), the next run reuses it, and it boots.
/// A small program through the same code path stands in for portrange
/// (`echo_guest_for`, finding guest_echo), in a target directory of its
/// own under CARGO_TARGET_TMPDIR so the workspace's is left alone: the
/// first run builds qemu's dependencies there (minutes), later ones only
/// link guest_echo again.
#[test]
fn a_missing_guest_build_is_built_from_a_checkout_and_boots() {
    let arch = Arch::ALL
        .into_iter()
        .find(|arch| *arch != Arch::host())
        .expect("two architectures");
    if let Err(missing) = qemu::binary::locate_for(arch) {
        return skip(&missing.to_string());
    }
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-build");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let built = Command::new(env!("CARGO"))
        .args(["build", "-p", "qemu", "--example", "echo_guest_for"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(workspace)
        .status()
        .expect("run cargo");
    assert!(built.success(), "building echo_guest_for: {built}");
    let guest = target_dir
        .join(guest_program::rust_target(arch))
        .join("debug/examples/guest_echo");
    match std::fs::remove_file(&guest) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => panic!("removing {}: {error}", guest.display()),
    }
    let find = || {
        let output = Command::new(target_dir.join("debug/examples/echo_guest_for"))
            .arg(arch.to_string())
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run echo_guest_for");
        let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
        let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
        (output.status, stdout, stderr)
    };

    let (status, stdout, stderr) = find();
    let target = guest_program::rust_target(arch);
    if stderr.contains(&format!("the Rust target {target} is not installed")) {
        return skip(stderr.trim());
    }
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout.trim_end(), guest.to_str().unwrap(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "echo_guest_for: building guest_echo for {arch} \
             (`cargo build --target {target} -p qemu --example guest_echo` in {}), \
             once: later runs only check it\n",
            workspace.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Finished"), "cargo's own output: {stderr}");

    let (status, again, stderr) = find();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(again, stdout);
    assert!(
        stderr.starts_with(&format!(
            "echo_guest_for: checking that guest_echo's {arch} build is no older than the source"
        )) && !stderr.contains("Compiling"),
        "the second time only checks, nothing is compiled: {stderr}"
    );

    let kernel = match kernel_for("debian-6.12", arch) {
        Ok(kernel) => kernel,
        Err(reason) => return skip(&reason),
    };
    let run = boot(&config(kernel, guest, &["hello", "exit=3"]));
    assert_eq!(run.fault, None, "console:\n{}", run.console);
    assert_eq!(run.messages, ["hello"]);
    assert_eq!(run.exit_code, Some(3));
}
