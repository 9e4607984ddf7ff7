//! `portrange build` and `portrange check`: a kernel from a build.config,
//! then (for `check`) the suite booted on it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use kbuild::{BuildConfig, BuildOptions, Location, shipped, source};

use super::vm::VmSuiteArgs;
use harness::Case;

/// Which tree and build.config, shared by `build` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// The kernel source tree (for an ACK checkout, its kernel directory,
    /// e.g. `common`; ROOT_DIR is its parent).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "debian",
        conflicts_with = "debian"
    )]
    source: Option<PathBuf>,
    /// Use Debian's linux-source-VERSION (`6.12`, `6.1`), fetched into the
    /// cache on first use.
    #[arg(long, value_name = "VERSION")]
    debian: Option<String>,
    /// The build.config to evaluate: a path (relative to the tree, as ACK
    /// names them, or to the current directory), or a shipped one by name
    /// (`build.config.portrange.minimal.x86_64`, the default;
    /// `build.config.portrange.minimal-peers.x86_64`, the same plus what
    /// vmtest and virtme-ng need to boot it; `build.config.portrange.x86_64`).
    #[arg(long, value_name = "FILE")]
    build_config: Option<PathBuf>,
    /// Output directory (make's O=), reused for incremental rebuilds
    /// (default: under the cache, one per tree and config).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Parallel make jobs (default: one per CPU).
    #[arg(long)]
    jobs: Option<usize>,
}

/// Arguments of `portrange build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Print the variables the build.config resolves to (as bash has them)
    /// and exit without building.
    #[arg(long)]
    print_config: bool,
}

/// Arguments of `portrange check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    suite: VmSuiteArgs,
}

impl SourceArgs {
    /// The build.config evaluated on the tree (fetched into `cache` for
    /// `--debian`).
    fn evaluate(&self, cache: &Path) -> anyhow::Result<BuildConfig> {
        let tree = match (&self.source, &self.debian) {
            (Some(dir), _) => dir.clone(),
            (None, Some(version)) => source::fetch_debian(version, cache, &mut progress)?,
            (None, None) => anyhow::bail!("pass --source DIR or --debian VERSION"),
        };
        let file = match &self.build_config {
            None => shipped::config(shipped::MINIMAL),
            Some(path) => path.clone(),
        };
        let location = Location::from_source(&tree)
            .with_context(|| format!("kernel source {}", tree.display()))?;
        Ok(kbuild::evaluate(&location, &file)?)
    }

    /// Builds the kernel, keeping sources and build trees under `cache`,
    /// and gives the bzImage path.
    fn build(&self, cache: &Path) -> anyhow::Result<PathBuf> {
        let config = self.evaluate(cache)?;
        let mut options = BuildOptions::new(
            self.out
                .clone()
                .unwrap_or_else(|| source::out_dir(cache, &config)),
        );
        if let Some(jobs) = self.jobs {
            options.jobs = jobs;
        }
        let built = kbuild::build(&config, &options, &mut progress)?;
        Ok(built.bzimage)
    }
}

fn progress(line: &str) {
    eprintln!("portrange: {line}");
}

/// Runs `portrange build`: prints the bzImage path on stdout.
pub fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let cache = qemu::kernel::default_cache_dir();
    if args.print_config {
        let config = args.source.evaluate(&cache)?;
        print!("{}", kbuild::print(&config));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", args.source.build(&cache)?.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `portrange check`: build, boot, run, report; one verdict.
pub fn check(args: &CheckArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let image = args.source.build(&args.suite.cache())?;
    eprintln!("portrange: built {}", image.display());
    args.suite.run(&image.to_string_lossy(), cases)
}
