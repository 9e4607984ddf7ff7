//! Booting a kernel in QEMU with the program as `/init` and collecting what
//! it sends back.

mod args;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::accel::Accel;
use crate::binary;
use crate::fault::{self, Evidence, Fault, QemuFailure};
use crate::frame::{Decoded, Decoder, Event, Problem, Stream};
use crate::initramfs::{self, Contents, Packed, Payload};
use crate::kernel::Kernel;
use crate::platform::platform;
use crate::process;

/// Guest CPUs at most: enough for the cases' parallelism, few enough that
/// TCG's per-vCPU threads do not oversubscribe a small host.
pub const MAX_CPUS: u32 = 4;

/// The guest's vCPUs: one per host core, at most [`MAX_CPUS`].
pub fn guest_cpus() -> u32 {
    args::cpus_for(
        std::thread::available_parallelism().map_or(1, usize::from),
        MAX_CPUS,
    )
}

/// How often the result file is read while QEMU runs.
const POLL: Duration = Duration::from_millis(10);
/// How long QEMU may take to stop after the end frame before it is killed;
/// the results are complete by then, so this is not a timeout.
const POWER_OFF_GRACE: Duration = Duration::from_secs(5);

/// One VM run.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The kernel to boot; its architecture chooses the QEMU platform
    /// ([`crate::platform`]).
    pub kernel: Kernel,
    /// The accelerator, from [`crate::accel::decide`].
    pub accel: Accel,
    /// Extra kernel command line words, after `console=<console> panic=-1
    /// quiet loglevel=5` and the platform's own ([`crate::platform`]).
    pub append: Vec<String>,
    /// Time limit from QEMU's start; the VM is killed when it runs out.
    pub timeout: Duration,
    /// Guest memory; raised when the initramfs needs more (it is held
    /// twice while the kernel unpacks it).
    pub memory_mib: u32,
    /// Where to save the kernel console, if anywhere.
    pub console_log: Option<PathBuf>,
    /// Executable to run as `/init` (it should call [`crate::guest::init`]),
    /// built for the kernel's architecture ([`crate::guest_program`]).
    pub init: PathBuf,
    /// A program the guest can run as it runs on the host.
    pub payload: Option<Payload>,
    /// Kernel modules to pack and load, by name.
    pub modules: Vec<String>,
    /// The guest's argument vector.
    pub guest_args: Vec<String>,
}

/// What a run produced.
///
/// A run with a [`Fault`] is an error verdict, never a pass, even when
/// messages and an exit code came back.
#[derive(Debug, Clone)]
pub struct VmRun {
    /// Messages from the guest, in order.
    pub messages: Vec<String>,
    /// The guest program's lines for the host's stderr, in order.
    pub stderr: Vec<String>,
    /// A payload's output, chunk by chunk in the order it came.
    pub output: Vec<(Stream, Vec<u8>)>,
    /// The exit code from the guest's end frame, if it arrived.
    pub exit_code: Option<i32>,
    /// What went wrong, if anything.
    pub fault: Option<Fault>,
    /// The kernel console (the platform's console UART).
    pub console: String,
    /// Time from QEMU's start to its exit.
    pub elapsed: Duration,
}

/// Why a VM could not be run at all (as opposed to a run with a [`Fault`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// QEMU is not installed.
    #[error(transparent)]
    QemuMissing(#[from] binary::NotFound),
    /// The initramfs could not be written.
    #[error(transparent)]
    Initramfs(#[from] initramfs::Error),
    /// A file of the run could not be created or read.
    #[error("{what} {path} failed")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// QEMU could not be started or watched.
    #[error("running {qemu} failed")]
    Spawn {
        /// The QEMU binary.
        qemu: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// QEMU failed before the guest showed any sign of life (bad
    /// arguments, an unloadable kernel, ...). A QEMU that fails later is a
    /// [`Fault::QemuEnded`] of the run instead, with what came back kept.
    #[error(
        "{qemu} exited with {status} before the kernel wrote anything{}: check the kernel image and the extra arguments",
        said(stderr)
    )]
    QemuFailed {
        /// The QEMU binary.
        qemu: PathBuf,
        /// How QEMU ended.
        status: String,
        /// What QEMU printed on stderr.
        stderr: String,
    },
}

/// QEMU's stderr as the tail of an error message: nothing when it said
/// nothing.
fn said(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// One thing the guest sent, as [`run`]'s callback hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A message of the guest program's.
    Message(&'a str),
    /// A line the guest program has for the host's stderr.
    Stderr(&'a str),
    /// Bytes a payload wrote to one of its output streams.
    Output(Stream, &'a [u8]),
}

/// The initramfs of a run, written by [`pack`] and booted by [`boot`].
#[derive(Debug)]
pub struct Initramfs {
    work: tempfile::TempDir,
    path: PathBuf,
    /// The kernel command line the guest was packed to expect.
    command_line: String,
    /// What was written.
    pub packed: Packed,
    /// How long writing it took.
    pub elapsed: Duration,
}

/// Writes the initramfs for `config` (the slow step for a payload with
/// many files, hence on its own).
pub fn pack(config: &VmConfig) -> Result<Initramfs, Error> {
    let platform = platform(config.kernel.arch);
    let work = tempfile::Builder::new()
        .prefix("portrange-vm-")
        .tempdir()
        .map_err(|source| Error::Io {
            what: "creating a directory in",
            path: std::env::temp_dir(),
            source,
        })?;
    let path = work.path().join("initramfs.cpio");
    let command_line = args::command_line(platform, &config.append);
    let started = Instant::now();
    let packed = initramfs::write(
        &Contents {
            arch: config.kernel.arch,
            channel_device: platform.channel_device.to_string(),
            init: config.init.clone(),
            payload: config.payload.clone(),
            modules_dir: config.kernel.modules.clone(),
            modules: config.modules.clone(),
            guest_args: config.guest_args.clone(),
            command_line: command_line.clone(),
        },
        &path,
    )?;
    Ok(Initramfs {
        work,
        path,
        command_line,
        packed,
        elapsed: started.elapsed(),
    })
}

/// Packs ([`pack`]) and boots ([`boot`]) `config`.
pub fn run(config: &VmConfig, on_message: &mut dyn FnMut(Received<'_>)) -> Result<VmRun, Error> {
    boot(config, &pack(config)?, on_message)
}

/// Boots `config.kernel` with `initramfs` (packed for `config`), so
/// `config.init` as `/init`, and waits for the guest to finish, the VM to
/// stop, or the timeout. `on_message` hears each message, stderr line and
/// piece of payload output as it arrives. A VM that has sent its end frame
/// gets a few seconds to power off and is then stopped without a fault.
/// QEMU is killed and reaped before this returns, also when `on_message`
/// panics.
pub fn boot(
    config: &VmConfig,
    initramfs: &Initramfs,
    on_message: &mut dyn FnMut(Received<'_>),
) -> Result<VmRun, Error> {
    let platform = platform(config.kernel.arch);
    let qemu = binary::locate_for(config.kernel.arch)?;
    let io = |what, path: &PathBuf| {
        let path = path.clone();
        move |source| Error::Io { what, path, source }
    };
    let work = &initramfs.work;
    let packed = &initramfs.packed;
    let command_line = &initramfs.command_line;
    let initramfs = &initramfs.path;
    let console_path = config
        .console_log
        .clone()
        .unwrap_or_else(|| work.path().join("console.log"));
    let results_path = work.path().join("results");
    let stderr_path = work.path().join("qemu.stderr");
    File::create(&console_path).map_err(io("creating", &console_path))?;
    File::create(&results_path).map_err(io("creating", &results_path))?;
    let stderr = File::create(&stderr_path).map_err(io("creating", &stderr_path))?;
    let mut results = File::open(&results_path).map_err(io("opening", &results_path))?;

    let page_size = crate::kernel::page_size(&config.kernel.image)
        .map_err(io("reading", &config.kernel.image))?;
    let plan = args::Plan {
        platform,
        tcg_cpu: platform.tcg_cpu_for(page_size),
        kernel_image: &config.kernel.image,
        initramfs,
        accel: config.accel,
        memory_mib: args::memory_for(config.memory_mib, packed.size),
        console: &console_path,
        results: &results_path,
        command_line,
        cpus: guest_cpus(),
    };
    let spawn_error = |source| Error::Spawn {
        qemu: qemu.clone(),
        source,
    };
    let started = Instant::now();
    let mut command = Command::new(&qemu);
    command
        .args(args::qemu_args(&plan))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut guard = process::spawn(&mut command).map_err(spawn_error)?;
    let mut collected = Collector::new(on_message);
    let mut timed_out = None;
    let status = loop {
        let status = guard.try_wait().map_err(spawn_error)?;
        collected
            .read(&mut results)
            .map_err(io("reading", &results_path))?;
        if status.is_some() {
            break status;
        }
        match collected.ended_at {
            Some(ended_at) if ended_at.elapsed() >= POWER_OFF_GRACE => break None,
            Some(_) => {}
            None if started.elapsed() >= config.timeout => {
                timed_out = Some(config.timeout);
                break None;
            }
            None => {}
        }
        std::thread::sleep(POLL);
    };
    drop(guard);
    let elapsed = started.elapsed();
    collected
        .read(&mut results)
        .map_err(io("reading", &results_path))?;
    let decoded = collected.finish();
    let console_bytes = std::fs::read(&console_path).map_err(io("reading", &console_path))?;
    let console = String::from_utf8_lossy(&console_bytes).into_owned();
    let qemu_failed = status
        .filter(|status| !status.success())
        .map(|status| QemuFailure {
            status: status.to_string(),
            stderr: std::fs::read_to_string(&stderr_path)
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
    if let Some(failure) = &qemu_failed
        && status.is_some_and(|status| status.code().is_some())
        && guest_silent(&console, &decoded)
    {
        return Err(Error::QemuFailed {
            qemu,
            status: failure.status.clone(),
            stderr: failure.stderr.clone(),
        });
    }
    let fault = fault::classify(&Evidence {
        console: &console,
        results: &decoded,
        timed_out,
        qemu_failed: qemu_failed.as_ref(),
    });
    Ok(VmRun {
        messages: decoded.messages,
        stderr: decoded.stderr,
        output: decoded.output,
        exit_code: decoded.exit_code,
        fault,
        console,
        elapsed,
    })
}

/// Whether the guest left no trace at all: nothing on the console and
/// nothing on the result channel, as when QEMU refuses its arguments or
/// the kernel image.
fn guest_silent(console: &str, decoded: &Decoded) -> bool {
    console.trim().is_empty()
        && decoded.messages.is_empty()
        && decoded.stderr.is_empty()
        && decoded.output.is_empty()
        && decoded.exit_code.is_none()
        && decoded
            .problems
            .iter()
            .all(|problem| *problem == Problem::MissingEnd)
}

/// Feeds the result file into the decoder and the caller's callback.
struct Collector<'a> {
    decoder: Decoder,
    decoded: Decoded,
    /// When the end frame arrived.
    ended_at: Option<Instant>,
    on_message: &'a mut dyn FnMut(Received<'_>),
}

impl<'a> Collector<'a> {
    fn new(on_message: &'a mut dyn FnMut(Received<'_>)) -> Self {
        Self {
            decoder: Decoder::default(),
            decoded: Decoded::default(),
            ended_at: None,
            on_message,
        }
    }

    /// Reads what was appended to `file` since the last call.
    fn read(&mut self, file: &mut File) -> std::io::Result<()> {
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh)?;
        let events = self.decoder.push(&fresh);
        self.take(events);
        Ok(())
    }

    fn take(&mut self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Message(message) => {
                    (self.on_message)(Received::Message(&message));
                    self.decoded.messages.push(message);
                }
                Event::Stderr(line) => {
                    (self.on_message)(Received::Stderr(&line));
                    self.decoded.stderr.push(line);
                }
                Event::Output { stream, bytes } => {
                    (self.on_message)(Received::Output(stream, &bytes));
                    self.decoded.output.push((stream, bytes));
                }
                Event::End { exit_code } => {
                    self.decoded.exit_code = Some(exit_code);
                    self.ended_at = Some(Instant::now());
                }
                Event::Problem(problem) => self.decoded.problems.push(problem),
            }
        }
    }

    fn finish(mut self) -> Decoded {
        let decoder = std::mem::take(&mut self.decoder);
        let events = decoder.finish();
        self.take(events);
        self.decoded
    }
}
