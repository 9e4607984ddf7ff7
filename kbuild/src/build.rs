//! The kernel build: out of tree, DEFCONFIG, the config's defconfig
//! commands, fragments merged (the config's and the project's), olddefconfig,
//! a check of every option the project needs, then MAKE_GOALS.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arch::Arch;

use crate::build_log;
use crate::cmds::{self, Stage};
use crate::config::BuildConfig;
use crate::error::BuildError;
use crate::kconfig;
use crate::pahole;
use crate::per_arch::kernel_arch;
use crate::session;
use crate::shipped;
use crate::toolchain::{self, Toolchain};

/// How to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// Output directory (make's O=); reused for incremental rebuilds.
    pub out_dir: PathBuf,
    /// Parallel make jobs.
    pub jobs: usize,
    /// Fragments merged after the config's FRAGMENT_CONFIG and before the
    /// project fragment.
    pub extra_fragments: Vec<PathBuf>,
}

impl BuildOptions {
    /// Building into `out_dir` with one job per CPU and no extra fragments.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            extra_fragments: Vec::new(),
        }
    }
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The architecture built for.
    pub arch: Arch,
    /// The kernel image: `<out_dir>/arch/x86/boot/bzImage` on x86_64,
    /// `<out_dir>/arch/arm64/boot/Image` on arm64 ([`crate::per_arch`]).
    pub image: PathBuf,
    /// The output directory, absolute.
    pub out_dir: PathBuf,
    /// The toolchain used.
    pub toolchain: Toolchain,
    /// Commands the config or its defconfig commands called that nothing
    /// defines (skipped, with a warning each).
    pub skipped: Vec<String>,
}

/// One make invocation's fixed parts.
struct Make<'a> {
    source_dir: PathBuf,
    out_dir: &'a Path,
    args: Vec<String>,
    path: &'a OsStr,
}

impl<'a> Make<'a> {
    fn new(
        config: &BuildConfig,
        arch: Arch,
        options: &BuildOptions,
        out_dir: &'a Path,
        toolchain: &'a Toolchain,
    ) -> Self {
        let mut args = vec![format!("ARCH={}", arch.kernel_name())];
        args.extend(toolchain.make_vars.iter().cloned());
        args.push(format!("-j{}", options.jobs.max(1)));
        Self {
            source_dir: config.source_dir(),
            out_dir,
            args,
            path: &toolchain.path,
        }
    }

    fn run(&self, targets: &[&str]) -> Result<(), BuildError> {
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(&self.source_dir)
            .arg(format!("O={}", self.out_dir.display()))
            .args(&self.args)
            .args(targets)
            .env("PATH", self.path);
        let status = build_log::run(make, self.out_dir, targets)?;
        if status.success() {
            Ok(())
        } else {
            Err(BuildError::Make {
                targets: targets.join(" "),
                source_dir: self.source_dir.clone(),
                out_dir: self.out_dir.to_owned(),
                status,
                log: self.out_dir.join(build_log::LOG_NAME),
            })
        }
    }
}

/// A configured output directory: `.config` holds every option of the
/// portrange fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    /// The architecture configured for.
    pub arch: Arch,
    /// The output directory, absolute.
    pub out_dir: PathBuf,
    /// The toolchain chosen.
    pub toolchain: Toolchain,
    /// Commands the config or its defconfig commands called that nothing
    /// defines (skipped, with a warning each).
    pub skipped: Vec<String>,
    /// The options the portrange fragment had to change after the
    /// defconfig and the config's own fragments, as `CONFIG_X=y (was n)`:
    /// what a GKI configuration turns off that the cases need.
    pub overridden: Vec<String>,
    /// The options the defconfig and the config's own fragments set that
    /// the final `.config` has otherwise, as `CONFIG_X=asked (got v)`:
    /// what Kconfig dropped on this tree ([`DROPPED_NAME`] lists them).
    pub dropped: Vec<String>,
}

/// The file in the output directory listing [`Configured::dropped`], one
/// option a line (rewritten by every configuration, empty of options when
/// nothing was dropped).
pub const DROPPED_NAME: &str = "portrange-dropped-options.txt";

/// Refuses a directory that is not a kernel tree for `arch` before make
/// (and the output directory) get involved.
fn check_kernel_tree(dir: &Path, arch: Arch) -> Result<(), BuildError> {
    for missing in ["Makefile", "Kconfig", kernel_arch(arch).kconfig] {
        if !dir.join(missing).is_file() {
            return Err(BuildError::NotAKernelTree {
                dir: dir.to_owned(),
                missing,
            });
        }
    }
    Ok(())
}

/// Configures `config`'s kernel in `options.out_dir` (DEFCONFIG, the
/// defconfig commands, fragments, olddefconfig) and checks the portrange
/// options, without building: seconds rather than minutes.
pub fn configure(
    config: &BuildConfig,
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Configured, BuildError> {
    let arch: Arch = config
        .arch()
        .parse()
        .map_err(|_| BuildError::UnsupportedArch {
            file: config.file.clone(),
            arch: config.arch().to_owned(),
        })?;
    let defconfig = config.defconfig().ok_or_else(|| BuildError::NoDefconfig {
        file: config.file.clone(),
    })?;
    check_kernel_tree(&config.source_dir(), arch)?;
    let toolchain = toolchain::select(
        config,
        arch,
        &session::host_path(),
        Path::new(toolchain::DEBIAN_LLVM_ROOT),
    )?;
    let out_dir = prepare_out_dir(&options.out_dir)?;
    progress(&toolchain.summary);
    for warning in &toolchain.warnings {
        progress(&format!("warning: {warning}"));
    }
    for name in &config.skipped {
        progress(&format!(
            "warning: the config called `{name}`, which nothing defines: skipped"
        ));
    }
    let mut skipped = config.skipped.clone();
    let make = Make::new(config, arch, options, &out_dir, &toolchain);

    if config.pre_defconfig_cmds().is_some() {
        progress("running PRE_DEFCONFIG_CMDS");
        skipped.extend(cmds::run(
            config,
            Stage::PreDefconfig,
            &out_dir,
            &make.args,
            make.path,
        )?);
    }
    progress(&format!("make {defconfig}"));
    make.run(&[defconfig])?;
    if config.post_defconfig_cmds().is_some() {
        progress("running POST_DEFCONFIG_CMDS");
        skipped.extend(cmds::run(
            config,
            Stage::PostDefconfig,
            &out_dir,
            &make.args,
            make.path,
        )?);
    }

    let (theirs, own) = fragments(config, arch, options, &out_dir)?;
    if !theirs.is_empty() {
        progress(&format!("merging {} config fragment(s)", theirs.len()));
        merge(config, &out_dir, &theirs, make.path)?;
    }
    let overridden = overridden(&out_dir.join(".config"), arch)?;
    if !overridden.is_empty() {
        progress(&format!(
            "the portrange fragment changes {} option(s) {defconfig}{} set otherwise: {}",
            overridden.len(),
            if theirs.is_empty() {
                ""
            } else {
                " and its fragments"
            },
            overridden.join(", ")
        ));
    }
    progress("merging the portrange fragment");
    merge(config, &out_dir, &[own], make.path)?;
    progress("make olddefconfig");
    make.run(&["olddefconfig"])?;
    let options = check_options(&out_dir.join(".config"), arch)?;
    progress("every option of the portrange fragment is set");
    let dropped = dropped(config, arch, &theirs, &options)?;
    let list = out_dir.join(DROPPED_NAME);
    write_dropped(&list, defconfig, &dropped)?;
    if !dropped.is_empty() {
        const SHOWN: usize = 8;
        let more = if dropped.len() > SHOWN { ", ..." } else { "" };
        progress(&format!(
            "{} option(s) that {defconfig}{} set came out otherwise in the final .config \
             (Kconfig: no such symbol in this tree, unmet dependencies, or set by another \
             option), all listed in {}: {}{more}",
            dropped.len(),
            if theirs.is_empty() {
                ""
            } else {
                " and its fragments"
            },
            list.display(),
            dropped[..dropped.len().min(SHOWN)].join(", "),
        ));
    }
    pahole::check(&options, make.path)?;
    Ok(Configured {
        arch,
        out_dir,
        toolchain,
        skipped,
        overridden,
        dropped,
    })
}

/// Configures (see [`configure`]) and builds `config`'s kernel as `options`
/// say, reporting each step to `progress`; make's own output goes to the
/// build log ([`build_log`]).
pub fn build(
    config: &BuildConfig,
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Built, BuildError> {
    let Configured {
        arch,
        out_dir,
        toolchain,
        skipped,
        ..
    } = configure(config, options, progress)?;
    let make = Make::new(config, arch, options, &out_dir, &toolchain);
    let target = kernel_arch(arch);
    let goals = config.make_goals();
    let goals = if goals.is_empty() {
        vec![target.make_goal]
    } else {
        goals
    };
    progress(&format!("make {}", goals.join(" ")));
    make.run(&goals)?;
    let image = out_dir.join(target.image);
    if !image.is_file() {
        return Err(BuildError::NoImage {
            path: image,
            goal: target.make_goal,
        });
    }
    progress(&format!("kernel image: {}", image.display()));
    Ok(Built {
        arch,
        image,
        out_dir,
        toolchain,
        skipped,
    })
}

fn prepare_out_dir(out_dir: &Path) -> Result<PathBuf, BuildError> {
    fs::create_dir_all(out_dir)
        .and_then(|()| out_dir.canonicalize())
        .map_err(|e| BuildError::Io {
            what: format!("create the output directory {}", out_dir.display()),
            source: e,
        })
}

/// FRAGMENT_CONFIG then the caller's, each checked to exist, and the
/// project fragment for `arch` (written into the output directory).
fn fragments(
    config: &BuildConfig,
    arch: Arch,
    options: &BuildOptions,
    out_dir: &Path,
) -> Result<(Vec<PathBuf>, PathBuf), BuildError> {
    let mut all = config.fragments();
    all.extend(options.extra_fragments.iter().cloned());
    if let Some(missing) = all.iter().find(|f| !f.is_file()) {
        return Err(BuildError::FragmentMissing {
            path: missing.clone(),
            root_dir: config.location.root_dir.clone(),
        });
    }
    let own = out_dir.join(shipped::FRAGMENT_NAME);
    fs::write(&own, shipped::fragment(arch)).map_err(|e| BuildError::Io {
        what: format!("write the portrange fragment to {}", own.display()),
        source: e,
    })?;
    Ok((all, own))
}

/// The project fragment's options that the `.config` so far has
/// otherwise, as `CONFIG_X=wanted (was got)`.
fn overridden(dot_config: &Path, arch: Arch) -> Result<Vec<String>, BuildError> {
    let text = fs::read_to_string(dot_config).map_err(|e| BuildError::Io {
        what: format!("read {}", dot_config.display()),
        source: e,
    })?;
    let required = kconfig::requirements(&shipped::fragment(arch));
    Ok(kconfig::unmet(&required, &kconfig::parse(&text))
        .iter()
        .map(|(r, got)| format!("{}={} (was {got})", r.name, r.value))
        .collect())
}

/// The options that DEFCONFIG's file (when it names one in
/// `arch/<arch>/configs/`, not a make target such as `tinyconfig`) and
/// `fragments` set, the later value winning, that the final `.config`
/// (`options`) has otherwise, as `CONFIG_X=asked (got v)`; the portrange
/// fragment's own options are left out (they are reported as overridden).
fn dropped(
    config: &BuildConfig,
    arch: Arch,
    fragments: &[PathBuf],
    options: &BTreeMap<String, String>,
) -> Result<Vec<String>, BuildError> {
    let defconfig = config.defconfig().map(|name| {
        config
            .source_dir()
            .join("arch")
            .join(arch.source_dir())
            .join("configs")
            .join(name)
    });
    let mut asked = String::new();
    for file in defconfig.iter().filter(|f| f.is_file()).chain(fragments) {
        asked.push_str(&fs::read_to_string(file).map_err(|e| BuildError::Io {
            what: format!("read {}", file.display()),
            source: e,
        })?);
        asked.push('\n');
    }
    let ours = kconfig::parse(&shipped::fragment(arch));
    let required = kconfig::requirements(&asked);
    Ok(kconfig::unmet(&required, options)
        .iter()
        .filter(|(r, _)| !ours.contains_key(&r.name))
        .map(|(r, got)| format!("{}={} (got {got})", r.name, r.value))
        .collect())
}

/// Writes [`DROPPED_NAME`]: a comment naming what was compared, then one
/// dropped option a line.
fn write_dropped(file: &Path, defconfig: &str, dropped: &[String]) -> Result<(), BuildError> {
    let mut text = format!(
        "# Options {defconfig} and the config's fragments set that the final .config has otherwise ({})\n",
        dropped.len()
    );
    for line in dropped {
        text.push_str(line);
        text.push('\n');
    }
    fs::write(file, text).map_err(|e| BuildError::Io {
        what: format!("write {}", file.display()),
        source: e,
    })
}

/// Merges `fragments` into `<out_dir>/.config` with the tree's own
/// scripts/kconfig/merge_config.sh (merge only; olddefconfig follows).
fn merge(
    config: &BuildConfig,
    out_dir: &Path,
    fragments: &[PathBuf],
    path: &OsStr,
) -> Result<(), BuildError> {
    let dot_config = out_dir.join(".config");
    let status = child_lifetime::bind_to_this_thread(&mut Command::new("sh"))
        .arg(config.source_dir().join("scripts/kconfig/merge_config.sh"))
        .arg("-m")
        .arg("-O")
        .arg(out_dir)
        .arg(&dot_config)
        .args(fragments)
        .current_dir(config.source_dir())
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(cmds::stdout_to_stderr()?)
        .status()
        .map_err(|e| BuildError::Spawn {
            program: "sh (merge_config.sh)".into(),
            source: e,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Merge {
            config: dot_config,
            status,
        })
    }
}

/// Every option of the project fragment for `arch` must have its value in
/// `.config`; gives `.config`'s options.
fn check_options(dot_config: &Path, arch: Arch) -> Result<BTreeMap<String, String>, BuildError> {
    let text = fs::read_to_string(dot_config).map_err(|e| BuildError::Io {
        what: format!("read {}", dot_config.display()),
        source: e,
    })?;
    let required = kconfig::requirements(&shipped::fragment(arch));
    let options = kconfig::parse(&text);
    let unmet = kconfig::unmet(&required, &options);
    if unmet.is_empty() {
        return Ok(options);
    }
    let missing = unmet
        .iter()
        .map(|(r, got)| format!("  {}: wanted {}, got {got}", r.name, r.value))
        .collect::<Vec<_>>()
        .join("\n");
    Err(BuildError::MissingOptions {
        config: dot_config.to_owned(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, kleaf};

    #[test]
    fn dropped_names_what_the_defconfig_and_fragments_asked_for_and_did_not_get() {
        let tmp = tempfile::tempdir().unwrap();
        let common = tmp.path().join("common");
        let configs = common.join("arch/arm64/configs");
        fs::create_dir_all(&configs).unwrap();
        fs::write(
            configs.join("gki_defconfig"),
            "CONFIG_NET=y\nCONFIG_ANDROID_ONLY=y\nCONFIG_DEVTMPFS=n\nCONFIG_NR_CPUS=32\n",
        )
        .unwrap();
        fs::write(
            common.join("extra.fragment"),
            "CONFIG_NR_CPUS=8\n# CONFIG_KASAN is not set\n",
        )
        .unwrap();
        let location = Location::from_source(&common).unwrap();
        let config = kleaf(
            &location,
            Arch::Arm64,
            Path::new("gki_defconfig"),
            &[PathBuf::from("extra.fragment")],
        )
        .unwrap();
        // DEVTMPFS is the portrange fragment's (overridden, not dropped);
        // the fragment's NR_CPUS=8 wins over the defconfig's 32.
        let final_config =
            kconfig::parse("CONFIG_NET=y\nCONFIG_DEVTMPFS=y\nCONFIG_NR_CPUS=4\nCONFIG_KASAN=y\n");
        let got = dropped(&config, Arch::Arm64, &config.fragments(), &final_config).unwrap();
        assert_eq!(
            got,
            [
                "CONFIG_ANDROID_ONLY=y (got n)",
                "CONFIG_NR_CPUS=8 (got 4)",
                "CONFIG_KASAN=n (got y)"
            ]
        );
    }

    #[test]
    fn a_defconfig_that_is_a_make_target_adds_nothing_to_compare() {
        let tmp = tempfile::tempdir().unwrap();
        let common = tmp.path().join("common");
        fs::create_dir_all(common.join("arch/x86/configs")).unwrap();
        fs::write(
            common.join("build.config.tiny"),
            "ARCH=x86_64\nDEFCONFIG=tinyconfig\n",
        )
        .unwrap();
        let location = Location::from_source(&common).unwrap();
        let config = crate::config::evaluate(&location, Path::new("build.config.tiny")).unwrap();
        let got = dropped(&config, Arch::X86_64, &[], &kconfig::parse("")).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }
}
