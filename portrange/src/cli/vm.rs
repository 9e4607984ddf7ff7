//! `portrange vm`: the suite, or a program, inside a QEMU-booted kernel.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use arch::Arch;
use qemu::accel::AccelChoice;

use super::native::RunnerArgs;
use super::output::{OutputArgs, RunFacts, check_writable};
use super::selection::Selection;
use crate::vm::host::{self, VmRequest};
use crate::vm::runner::{ShareMode, Sharing};
use harness::Case;
use harness::profile::RequiredProtocols;
use harness::runner::RunOptions;

/// How to boot, shared by `vm`, `check` and `matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct BootArgs {
    /// The guest's architecture: `x86_64`, or `arm64` (also `aarch64`),
    /// booted under TCG on an x86_64 host. Prebuilt kernels are fetched
    /// for it and a kernel image must be for it (default: the host's for
    /// prebuilts, the image's own for a path).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Arch>,
    /// The portrange executable to run as the guest's /init, built for the
    /// guest's architecture (default: this one, or for another
    /// architecture its static musl build beside this one's target
    /// directory, which a portrange run from a checkout builds there first).
    #[arg(long, value_name = "PATH")]
    pub guest_binary: Option<PathBuf>,
    /// Accelerator: KVM when it really works (probed), else TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Extra kernel command line word (repeatable).
    #[arg(long, value_name = "WORD")]
    pub append: Vec<String>,
    /// Time limit for each VM run, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    pub memory: u32,
    /// Cache for fetched kernels and kept console logs
    /// (default: $PORTRANGE_CACHE, $XDG_CACHE_HOME/portrange, ~/.cache/portrange).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

/// `--accel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelArg {
    /// KVM if a probe boot works, else TCG.
    Auto,
    /// KVM, or an error.
    Kvm,
    /// Software emulation: one host thread for all vCPUs of an x86_64
    /// guest; a thread per vCPU of an arm64 guest on QEMU 10.0 and later
    /// ($PORTRANGE_TCG_THREAD=single|multi forces).
    Tcg,
}

impl BootArgs {
    /// The request for booting `kernel`, keeping the console in `console_log`.
    pub fn request(&self, kernel: &str, console_log: Option<PathBuf>) -> VmRequest {
        VmRequest {
            kernel: kernel.to_owned(),
            arch: self.arch,
            guest_binary: self.guest_binary.clone(),
            accel: match self.accel {
                AccelArg::Auto => AccelChoice::Auto,
                AccelArg::Kvm => AccelChoice::Kvm,
                AccelArg::Tcg => AccelChoice::Tcg,
            },
            append: self.append.clone(),
            timeout: Duration::from_secs(self.timeout),
            memory_mib: self.memory,
            console_log,
            cache: self.cache(),
        }
    }

    /// `--cache`, or the default cache directory.
    pub fn cache(&self) -> PathBuf {
        self.cache
            .clone()
            .unwrap_or_else(qemu::kernel::default_cache_dir)
    }
}

/// What a suite run in a VM takes, shared by `vm` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct VmSuiteArgs {
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    boot: BootArgs,
    #[command(flatten)]
    runner: RunnerArgs,
    /// Save the kernel console to FILE (kept automatically on a fault).
    #[arg(long, value_name = "FILE")]
    console_log: Option<PathBuf>,
}

impl VmSuiteArgs {
    /// The cache directory the run uses (`--cache`, or the default).
    pub fn cache(&self) -> PathBuf {
        self.boot.cache()
    }

    /// `--arch`, if given.
    pub fn arch(&self) -> Option<Arch> {
        self.boot.arch
    }

    fn request(&self, kernel: &str) -> VmRequest {
        self.boot.request(kernel, self.console_log.clone())
    }

    /// The cases the selection keeps, once `--output` and `--console-log`
    /// are known to be writable: all that can be refused before a kernel
    /// is built or booted.
    pub fn prepare(&self, cases: Vec<Case>) -> anyhow::Result<Vec<Case>> {
        let cases = self.selection.apply(cases)?;
        self.output.check_writable()?;
        if let Some(log) = &self.console_log {
            check_writable(log)?;
        }
        Ok(cases)
    }

    /// Boots `kernel`, runs `cases` (as [`VmSuiteArgs::prepare`] gave them)
    /// and reports; `required`: the protocols the kernel's configuration is
    /// known to enable; `build_config`: what this run built it from.
    pub fn run(
        &self,
        kernel: &str,
        cases: &[Case],
        required: RequiredProtocols,
        build_config: Option<PathBuf>,
    ) -> anyhow::Result<ExitCode> {
        let options = RunOptions {
            required_protocols: required,
            ..self.runner.options()?
        };
        let run = host::run_suite(&self.request(kernel), cases, &options, &mut |result| {
            self.output.progress(result)
        })?;
        let facts = RunFacts {
            arch: Some(run.arch),
            build_config,
            console_log: run.console_log,
        };
        self.output.finish(&run.report, &facts)
    }
}

/// Arguments of `portrange vm`.
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    #[command(flatten)]
    suite: VmSuiteArgs,
    /// Kernel to boot: a bzImage or arm64 Image path, or a prebuilt fetched
    /// on first use for `--arch` (`debian-5.10`, `debian-6.1`, `debian-6.12`).
    #[arg(long, default_value = "debian-6.12")]
    kernel: String,
    /// A program and its arguments to run in the VM instead of the suite
    /// (its output and exit status are relayed as they are, so the suite's
    /// selection, output and runner options do not apply).
    #[arg(
        last = true,
        value_name = "PROGRAM",
        conflicts_with_all = [
            "filters", "exact", "shard", "include_harness_faults",
            "format", "output", "threads", "case_timeout", "seed", "random_configs",
        ]
    )]
    exec: Vec<String>,
    /// With a program: a host file or directory (all of it) to pack for
    /// it at the same path, besides the working directory (repeatable).
    #[arg(long, value_name = "PATH", requires = "exec")]
    include: Vec<PathBuf>,
    /// With a program: how its host files reach the guest. Only packing
    /// into the initramfs is done; `auto` says why it packs.
    #[arg(long, value_enum, default_value_t = ShareMode::Auto, requires = "exec")]
    share: ShareMode,
    /// With a program: the most MiB of files to pack for it.
    #[arg(long, value_name = "MIB", default_value_t = 256, requires = "exec")]
    max_pack_size: u64,
}

/// Runs `portrange vm`.
pub fn run(args: &VmArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    if let Some((program, program_args)) = args.exec.split_first() {
        let request = args.suite.request(&args.kernel);
        let sharing = Sharing {
            mode: args.share,
            includes: args.include.clone(),
            max_pack_bytes: args.max_pack_size.saturating_mul(1 << 20),
        };
        let code = host::run_exec(&request, &sharing, Path::new(program), program_args)?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    let cases = args.suite.prepare(cases)?;
    args.suite
        .run(&args.kernel, &cases, RequiredProtocols::default(), None)
}
