//! `portrange build` and `portrange check`: a kernel from a build.config,
//! then (for `check`) the suite booted on it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use arch::Arch;
use kbuild::{BuildConfig, BuildOptions, Location, shipped, source};

use super::vm::VmSuiteArgs;
use harness::profile::RequiredProtocols;
use harness::{Case, Proto};

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
    /// (`build.config.portrange.minimal.<x86_64|aarch64>`, the default for
    /// the architecture; `build.config.portrange.minimal-peers.x86_64`, the
    /// same plus what vmtest and virtme-ng need to boot it;
    /// `build.config.portrange.x86_64`).
    #[arg(long, value_name = "FILE")]
    build_config: Option<PathBuf>,
    /// The Kleaf form instead of a build.config (android14 and later ACK
    /// branches, as BUILD.bazel's `kernel_build` has it): this defconfig
    /// from `arch/<ARCH>/configs/` (`gki_defconfig`), built with clang
    /// (LLVM=1) for `--arch` (without it, for the architecture whose
    /// configs hold it; refused when several do); on a tree with ACK's `build.config.common`,
    /// with its compiler variables (KCFLAGS, prebuilt paths) as Kleaf has
    /// them.
    #[arg(long, value_name = "NAME", conflicts_with = "build_config")]
    defconfig: Option<PathBuf>,
    /// With `--defconfig`: a config fragment merged after it (Kleaf's
    /// `defconfig_fragments`), relative to the tree or the current
    /// directory; repeat for more, merged in order.
    #[arg(long, value_name = "FILE", requires = "defconfig")]
    fragment: Vec<PathBuf>,
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
    /// The architecture to build for: `x86_64` or `arm64` (also `aarch64`).
    /// Chooses the default build.config; the build.config's ARCH must
    /// agree (default: the build.config's ARCH, or with `--defconfig` the
    /// architecture whose configs hold it, else the host's).
    #[arg(long, value_name = "ARCH")]
    arch: Option<Arch>,
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
    /// `--debian`): the Kleaf form for `arch` with `--defconfig`, else the
    /// one given, else the shipped minimal one for `arch` (`None`: the
    /// host's). Its ARCH must be `arch` when one is given.
    fn evaluate(&self, cache: &Path, arch: Option<Arch>) -> anyhow::Result<BuildConfig> {
        let tree = match (&self.source, &self.debian) {
            (Some(dir), _) => dir.clone(),
            (None, Some(version)) => source::fetch_debian(version, cache, &mut progress)?,
            (None, None) => anyhow::bail!("pass --source DIR or --debian VERSION"),
        };
        let location = Location::from_source(&tree)
            .with_context(|| format!("kernel source {}", tree.display()))?;
        if let Some(defconfig) = &self.defconfig {
            let arch = match arch {
                Some(arch) => arch,
                None => kleaf_arch(&location, defconfig)?,
            };
            return Ok(kbuild::config::kleaf(
                &location,
                arch,
                defconfig,
                &self.fragment,
            )?);
        }
        let file = match &self.build_config {
            None => shipped::config(shipped::minimal(arch.unwrap_or_default())),
            Some(path) => path.clone(),
        };
        let config = kbuild::evaluate(&location, &file)?;
        if let Some(wanted) = arch {
            agrees(&config, wanted)?;
        }
        Ok(config)
    }

    /// Builds the kernel for `arch` (as [`SourceArgs::evaluate`] chooses),
    /// keeping sources and build trees under `cache`, and gives the image,
    /// its architecture and the build.config (or defconfig) it came from.
    fn build(&self, cache: &Path, arch: Option<Arch>) -> anyhow::Result<(PathBuf, Arch, PathBuf)> {
        let config = self.evaluate(cache, arch)?;
        let mut options = BuildOptions::new(
            self.out
                .clone()
                .unwrap_or_else(|| source::out_dir(cache, &config)),
        );
        if let Some(jobs) = self.jobs {
            options.jobs = jobs;
        }
        let built = kbuild::build(&config, &options, &mut progress)?;
        Ok((built.image, built.arch, config.file))
    }
}

/// The Kleaf form's architecture when `--arch` is not given: the one whose
/// `arch/<ARCH>/configs/` holds the defconfig (an ACK tree has a
/// `gki_defconfig` for each, so there it must be named); the default one
/// when none does, which the Kleaf form then refuses, saying where it looked.
fn kleaf_arch(location: &Location, defconfig: &Path) -> anyhow::Result<Arch> {
    match kbuild::config::defconfig_arches(location, defconfig).as_slice() {
        [] => Ok(Arch::default()),
        [one] => Ok(*one),
        several => {
            let names: Vec<String> = several.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "{} is a defconfig of {} in {}: pass --arch to say which kernel to build",
                defconfig.display(),
                names.join(" and "),
                location.source_dir().display()
            )
        }
    }
}

/// Refuses a build.config whose ARCH is not `wanted`.
fn agrees(config: &BuildConfig, wanted: Arch) -> anyhow::Result<()> {
    let found = config.arch().parse::<Arch>().ok();
    if found != Some(wanted) {
        anyhow::bail!(
            "{} sets ARCH={}, but --arch {wanted} was asked for: pass a build.config for {wanted} \
             (the shipped {} without --build-config), or drop --arch",
            config.file.display(),
            config.arch(),
            shipped::minimal(wanted)
        );
    }
    Ok(())
}

fn progress(line: &str) {
    eprintln!("portrange: {line}");
}

/// Runs `portrange build`: prints the kernel image's path on stdout.
pub fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let cache = qemu::kernel::default_cache_dir();
    if args.print_config {
        let config = args.source.evaluate(&cache, args.arch)?;
        print!("{}", kbuild::print(&config));
        return Ok(ExitCode::SUCCESS);
    }
    let (image, _, _) = args.source.build(&cache, args.arch)?;
    println!("{}", image.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `portrange check`: build, boot (on the architecture built for),
/// run, report; one verdict. The kernel has SCTP and MPTCP ([`fragment_protocols`]).
pub fn check(args: &CheckArgs, cases: Vec<Case>) -> anyhow::Result<ExitCode> {
    let cases = args.suite.prepare(cases)?;
    let (image, arch, config) = args.source.build(&args.suite.cache(), args.suite.arch())?;
    eprintln!("portrange: built {} ({arch})", image.display());
    args.suite.run(
        &image.to_string_lossy(),
        &cases,
        fragment_protocols(),
        Some(config),
    )
}

/// The protocols every kernel `build` and `check` make has: the project
/// fragment, merged into every build and checked option by option after
/// olddefconfig, sets `CONFIG_IP_SCTP=y` and `CONFIG_MPTCP=y`.
fn fragment_protocols() -> RequiredProtocols {
    RequiredProtocols {
        protos: vec![Proto::Sctp, Proto::Mptcp],
        because: "portrange check built it with the project fragment \
                  (kbuild/fragments/portrange.config), which sets CONFIG_IP_SCTP=y and \
                  CONFIG_MPTCP=y and is checked after olddefconfig"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `check` requires is what the fragment every build merges sets.
    #[test]
    fn the_required_protocols_are_those_the_fragment_enables() {
        let fragment = kbuild::shipped::FRAGMENT;
        for option in ["CONFIG_IP_SCTP=y", "CONFIG_MPTCP=y"] {
            assert!(
                fragment.lines().any(|line| line == option),
                "{option} not in the fragment"
            );
        }
        assert_eq!(fragment_protocols().protos, [Proto::Sctp, Proto::Mptcp]);
    }
}
