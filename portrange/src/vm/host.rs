//! The host side: boot a kernel with `portrange` as `/init`, collect what
//! the guest sends, and turn faults into error verdicts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use arch::Arch;
use qemu::accel::{Accel, AccelChoice, Decision, Memo};
use qemu::frame::Stream;
use qemu::guest_program::{Artifact, Program};
use qemu::kernel::Kernel;
use qemu::launch::{Received, VmConfig, VmRun};

use crate::vm::runner::{self, Sharing};
use crate::vm::{GUEST_MODULES, GuestMessage, phases_note, suite_args};
use harness::Case;
use harness::outcome::{CaseResult, Outcome};
use harness::probe::{Availability, Probes};
use harness::report::{Phases, RunReport};
use harness::runner::RunOptions;

/// This program, as the guest's `/init`.
const PORTRANGE: Program<'static> = Program {
    package: "portrange",
    artifact: Artifact::Bin("portrange"),
};

/// How to boot the VM, as the user asked.
#[derive(Debug, Clone)]
pub struct VmRequest {
    /// A kernel image path or a prebuilt name (`debian-6.12`).
    pub kernel: String,
    /// The guest's architecture: a prebuilt is fetched for it and an image
    /// must be for it. `None`: the host's for a prebuilt, the image's own
    /// for a path.
    pub arch: Option<Arch>,
    /// The `portrange` executable to use as `/init` (built for the
    /// kernel's architecture); `None`: this one, or for another
    /// architecture its cross build beside this one's target directory.
    pub guest_binary: Option<PathBuf>,
    /// KVM, TCG or decide.
    pub accel: AccelChoice,
    /// Extra kernel command line words.
    pub append: Vec<String>,
    /// Time limit for the whole VM run.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Where to keep the kernel console; on a fault it is kept anyway.
    pub console_log: Option<PathBuf>,
    /// Cache for fetched kernels and kept console logs.
    pub cache: PathBuf,
}

/// The kernel and accelerator a request resolves to; fetching and probing
/// report progress on stderr.
fn prepare(request: &VmRequest) -> anyhow::Result<(Kernel, Decision)> {
    let kernel =
        qemu::kernel::resolve_for(&request.kernel, request.arch, &request.cache, &mut |step| {
            eprintln!("portrange: {step}");
        })
        .with_context(|| format!("kernel {}", request.kernel))?;
    let qemu_binary = qemu::binary::locate_for(kernel.arch)?;
    let decision = qemu::accel::decide(
        request.accel,
        &qemu_binary,
        &kernel,
        &Memo::in_cache(&request.cache),
    )?;
    Ok((kernel, decision))
}

/// The VM to boot: the guest program found (or built) first, then the
/// line saying what boots.
fn config(request: &VmRequest, kernel: Kernel, decision: &Decision) -> anyhow::Result<VmConfig> {
    // A kernel without a modules directory (a custom build) has what it
    // has built in; the probes say what is missing.
    let modules = match kernel.modules {
        Some(_) => GUEST_MODULES.iter().map(|m| (*m).to_owned()).collect(),
        None => Vec::new(),
    };
    let init = match &request.guest_binary {
        Some(path) => path.clone(),
        None => qemu::guest_program::running_for(kernel.arch, &PORTRANGE, &mut |step| {
            eprintln!("portrange: {step}");
        })
        .with_context(|| {
            format!(
                "finding /init for the {} guest (or pass --guest-binary PATH)",
                kernel.arch
            )
        })?,
    };
    eprintln!(
        "portrange: booting {} ({}, {}) under {decision}",
        kernel.name,
        kernel.arch,
        kernel.release.as_deref().unwrap_or("unknown release")
    );
    Ok(VmConfig {
        kernel,
        accel: decision.accel,
        append: request.append.clone(),
        timeout: request.timeout,
        memory_mib: request.memory_mib,
        console_log: request.console_log.clone(),
        init,
        payload: None,
        modules,
        guest_args: Vec::new(),
    })
}

/// A suite run in a VM.
#[derive(Debug)]
pub struct SuiteRun {
    /// What ran and came back.
    pub report: RunReport,
    /// The booted kernel's architecture.
    pub arch: Arch,
    /// The kernel console's log, kept because the run went wrong (a fault,
    /// a guest that could not set itself up or sent no end frame).
    pub console_log: Option<PathBuf>,
}

/// Runs `cases` in a VM; `on_result` hears each result as it arrives. A
/// fault (panic, oops, hang, lost results, QEMU's own death) becomes
/// harness errors in the report, never a pass, and the results that came
/// before it stay.
pub fn run_suite(
    request: &VmRequest,
    cases: &[Case],
    options: &RunOptions,
    on_result: &mut dyn FnMut(&CaseResult),
) -> anyhow::Result<SuiteRun> {
    let (kernel, decision) = prepare(request)?;
    let arch = kernel.arch;
    let release = kernel.release.clone().unwrap_or_else(|| "unknown".into());
    let accel = match decision.accel {
        Accel::Kvm => "Kvm",
        Accel::Tcg(_) => "Tcg",
    };
    let target = format!("vm {} under {accel}", kernel.name);
    let mut config = config(request, kernel, &decision)?;
    config.guest_args = suite_args(cases, options);
    let mut probes = None;
    let mut notes = vec![
        format!("vm: accelerator {decision}"),
        format!(
            "vm: {} vCPU(s), one per host core (at most {})",
            qemu::launch::guest_cpus(),
            qemu::launch::MAX_CPUS
        ),
    ];
    let mut phases = Phases::default();
    let mut received = BTreeMap::new();
    let run = qemu::launch::run(&config, &mut |message| match message {
        Received::Message(text) => match serde_json::from_str::<GuestMessage>(text) {
            Ok(GuestMessage::Probes { probes: p }) => probes = Some(p),
            Ok(GuestMessage::Note { text }) => notes.push(text),
            Ok(GuestMessage::Result { result }) => {
                on_result(&result);
                received.insert(result.name.clone(), result);
            }
            Ok(GuestMessage::Phases { phases: measured }) => {
                notes.extend(phases_note(&measured));
                phases = measured;
            }
            Err(_) => notes.push(format!("guest: {text}")),
        },
        Received::Stderr(line) => notes.push(format!("guest: stderr: {line}")),
        Received::Output(_, bytes) => notes.push(format!(
            "guest: output: {}",
            String::from_utf8_lossy(bytes).trim_end()
        )),
    })
    .context("running the VM")?;
    notes.push(format!(
        "vm: {:.1} s from QEMU start to exit",
        run.elapsed.as_secs_f64()
    ));
    phases.vm_micros = Phases::micros(run.elapsed);
    let (problem, console_log) = run_problem(&run, request)?.unzip();
    if let Some(problem) = &problem {
        eprintln!("portrange: {problem}");
    }
    let mut results: Vec<CaseResult> = cases
        .iter()
        .map(|case| {
            received.remove(&case.name).unwrap_or_else(|| {
                let outcome = Outcome::Error(match &problem {
                    Some(problem) => format!(
                        "no result from the VM, which failed first: {} (details under vm/run)",
                        problem.lines().next().unwrap_or_default()
                    ),
                    None => "no result from the VM although it finished normally".into(),
                });
                CaseResult::new(case.name.clone(), outcome, Duration::ZERO)
            })
        })
        .collect();
    if let Some(problem) = problem {
        results.push(CaseResult::new(
            "vm/run",
            Outcome::Error(problem),
            run.elapsed,
        ));
    }
    let probes = probes.unwrap_or_else(|| Probes {
        kernel: release,
        build: String::new(),
        option: Availability::Broken("the guest never reported its probes".into()),
        variants: BTreeMap::new(),
        profiles: BTreeMap::new(),
    });
    Ok(SuiteRun {
        report: RunReport {
            target,
            probes,
            notes,
            results,
            phases,
        },
        arch,
        console_log,
    })
}

/// What makes a VM run untrustworthy, with the console log kept (its path
/// in the message and given), if anything does.
fn run_problem(run: &VmRun, request: &VmRequest) -> anyhow::Result<Option<(String, PathBuf)>> {
    let problem = match (&run.fault, run.exit_code) {
        (Some(fault), _) => {
            let splat = fault.splat().join("\n    ");
            format!("{fault}\n    {splat}")
        }
        (None, Some(code)) if code == qemu::guest::SETUP_FAILED_EXIT_CODE => {
            match run
                .messages
                .iter()
                .find_map(|message| qemu::guest::setup_failure(message))
            {
                Some(reason) => format!("the guest could not set itself up: {reason}"),
                None => "the guest could not set itself up (see the console log)".into(),
            }
        }
        (None, Some(_)) => return Ok(None),
        (None, None) => "the guest sent no end frame".into(),
    };
    let log = keep_console(run, request)?;
    let problem = format!("{problem}\n    console log: {}", log.display());
    Ok(Some((problem, log)))
}

fn keep_console(run: &VmRun, request: &VmRequest) -> anyhow::Result<PathBuf> {
    if let Some(path) = &request.console_log {
        return Ok(path.clone());
    }
    let dir = request.cache.join("logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = dir.join(format!("console-{stamp}.log"));
    std::fs::write(&path, &run.console).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs `program` with `args` inside the VM as `cargo test` runs it on
/// the host (the cargo runner mode; what it gets: [`crate::vm::runner`]):
/// its stdout and stderr come back byte for byte and its exit code
/// becomes ours. A fault is reported and gives exit code 1.
pub fn run_exec(
    request: &VmRequest,
    sharing: &Sharing,
    program: &Path,
    args: &[String],
) -> anyhow::Result<i32> {
    let (kernel, decision) = prepare(request)?;
    if let Some(note) = runner::choose(sharing.mode, &kernel)? {
        eprintln!("portrange: {note}");
    }
    let gathered = runner::gather(program, sharing)?;
    let mut config = config(request, kernel, &decision)?;
    config.payload = Some(gathered.payload.clone());
    config.guest_args = ["exec".to_owned()]
        .into_iter()
        .chain(args.iter().cloned())
        .collect();
    let initramfs = qemu::launch::pack(&config).context("packing the VM's files")?;
    if let Some(note) = gathered.packed_note(initramfs.elapsed, initramfs.packed.size) {
        eprintln!("{note}");
    }
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let mut relayed = Ok(());
    let run = qemu::launch::boot(&config, &initramfs, &mut |received| {
        let written = match received {
            Received::Output(Stream::Stdout, bytes) => {
                stdout.write_all(bytes).and_then(|()| stdout.flush())
            }
            Received::Output(Stream::Stderr, bytes) => stderr.write_all(bytes),
            Received::Message(line) | Received::Stderr(line) => writeln!(stderr, "{line}"),
        };
        if relayed.is_ok() {
            relayed = written;
        }
    })
    .context("running the VM")?;
    relayed.context("relaying the program's output")?;
    match run_problem(&run, request)? {
        Some((problem, _)) => {
            eprintln!("portrange: VM error: {problem}");
            Ok(1)
        }
        None => Ok(run.exit_code.unwrap_or(1)),
    }
}
