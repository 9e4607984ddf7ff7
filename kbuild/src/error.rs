//! Error types: each message says what was tried, what came back and what
//! to do about it.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Evaluating a build.config failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The kernel source directory is unusable.
    #[error("cannot use {path} as the kernel source: {reason}: pass an existing kernel tree")]
    SourceDir {
        /// The directory given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The build.config file does not exist.
    #[error(
        "build config {file} not found as given, under {source_dir} nor among the shipped ones in {shipped_dir}: pass an existing build.config.* file"
    )]
    Missing {
        /// The file as given.
        file: PathBuf,
        /// The kernel source it was also looked for in.
        source_dir: PathBuf,
        /// The shipped configs, looked in for a bare file name.
        shipped_dir: PathBuf,
    },
    /// bash could not be started.
    #[error("could not start bash to source the build config (install bash)")]
    Spawn {
        /// The spawn error.
        source: io::Error,
    },
    /// bash failed while sourcing the config.
    #[error(
        "bash failed sourcing {file} ({status}); its stderr:\n{stderr}\nfix the build config or the files it sources"
    )]
    Bash {
        /// The build.config file.
        file: PathBuf,
        /// bash's exit status.
        status: ExitStatus,
        /// bash's stderr.
        stderr: String,
    },
    /// The Kleaf form's defconfig cannot be used.
    #[error(
        "defconfig {name} cannot be used ({reason}): pass a defconfig in {configs}, by name or path"
    )]
    KleafDefconfig {
        /// The defconfig as given.
        name: PathBuf,
        /// Where make looks for defconfigs of the architecture.
        configs: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A Kleaf-form fragment does not exist.
    #[error(
        "config fragment {fragment} not found as given nor under {source_dir}: pass existing fragment files"
    )]
    KleafFragment {
        /// The fragment as given.
        fragment: PathBuf,
        /// The kernel tree it was also looked for in.
        source_dir: PathBuf,
    },
    /// The config leaves ARCH unset or empty.
    #[error(
        "sourcing {file} left ARCH unset: set ARCH in it or source an arch file (build.config.x86_64) from it"
    )]
    ArchUnset {
        /// The build.config file.
        file: PathBuf,
    },
    /// The read-back from bash could not be parsed.
    #[error(
        "bash's read-back of the build config variables is malformed: {detail}: report this as a kbuild bug"
    )]
    Readback {
        /// What was wrong with it.
        detail: String,
    },
    /// A local file operation failed.
    #[error("could not {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Building a kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config's ARCH is not one kbuild can build a bootable image for.
    #[error(
        "{file} sets ARCH={arch}, but kbuild builds x86_64 and arm64 kernels only (the VMs it boots): use a build config such as build.config.gki.x86_64 or build.config.gki.aarch64"
    )]
    UnsupportedArch {
        /// The build.config file.
        file: PathBuf,
        /// Its ARCH.
        arch: String,
    },
    /// The source directory is not a kernel tree.
    #[error(
        "{dir} is not a Linux source tree (no {missing} there): pass the kernel's top directory (for an ACK checkout, its kernel directory, e.g. common)"
    )]
    NotAKernelTree {
        /// The directory.
        dir: PathBuf,
        /// The file that a kernel tree has and this one lacks.
        missing: &'static str,
    },
    /// The config names no DEFCONFIG.
    #[error(
        "{file} leaves DEFCONFIG unset or empty: set DEFCONFIG (a defconfig file or a target like tinyconfig)"
    )]
    NoDefconfig {
        /// The build.config file.
        file: PathBuf,
    },
    /// Building for another architecture than the host's with gcc, and
    /// its cross compiler is not installed.
    #[error(
        "building {arch} kernels here with gcc needs {compiler}, which is not on PATH: apt-get install {package} (or LLVM=1 with clang and lld installed)"
    )]
    CrossCompilerMissing {
        /// The architecture built for.
        arch: arch::Arch,
        /// The compiler looked for, `<CROSS_COMPILE>gcc`.
        compiler: String,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// A program could not be started.
    #[error("could not start {program} (install it: see kbuild/README.md for the packages)")]
    Spawn {
        /// The program.
        program: String,
        /// The spawn error.
        source: io::Error,
    },
    /// PRE_DEFCONFIG_CMDS or POST_DEFCONFIG_CMDS failed.
    #[error(
        "{stage} of {file} failed ({status}): see its output above, then fix the commands or the tree"
    )]
    Cmds {
        /// Which commands.
        stage: crate::stage::Stage,
        /// bash's exit status.
        status: ExitStatus,
        /// The build.config file.
        file: PathBuf,
    },
    /// A make invocation failed.
    #[error(
        "make {targets} in {source_dir} (O={out_dir}) failed ({status}): its last lines are above, all of its output is in {log}"
    )]
    Make {
        /// The targets asked for.
        targets: String,
        /// The kernel source.
        source_dir: PathBuf,
        /// The output directory.
        out_dir: PathBuf,
        /// make's exit status.
        status: ExitStatus,
        /// The build log holding make's output.
        log: PathBuf,
    },
    /// BTF from zstd-compressed DWARF with a pahole that cannot read it.
    #[error(
        "the .config asks for CONFIG_DEBUG_INFO_BTF with CONFIG_DEBUG_INFO_COMPRESSED_ZSTD, but {pahole} cannot read zstd-compressed DWARF (its libdw predates elfutils 0.189), so the build would fail at its very end generating BTF: put a newer pahole first on PATH (ACK's build-tools, BUILDTOOLS_PREBUILT_BIN, carry one), or merge a fragment with CONFIG_DEBUG_INFO_COMPRESSED_NONE=y"
    )]
    PaholeCannotReadZstd {
        /// The pahole probed.
        pahole: PathBuf,
    },
    /// BTF asked for with no pahole to generate it.
    #[error(
        "the .config asks for CONFIG_DEBUG_INFO_BTF, but no pahole is on make's PATH ({path}), so the build would fail at its very end generating BTF (\"pahole is not available\"; on 6.1 Kconfig keeps BTF without pahole unless the DWARF is version 5): apt-get install dwarves, or merge a fragment with # CONFIG_DEBUG_INFO_BTF is not set"
    )]
    PaholeMissing {
        /// The PATH make runs with.
        path: String,
    },
    /// A fragment named by the config or the caller does not exist.
    #[error(
        "config fragment {path} does not exist: fix FRAGMENT_CONFIG (paths are relative to ROOT_DIR {root_dir})"
    )]
    FragmentMissing {
        /// The fragment.
        path: PathBuf,
        /// ROOT_DIR, which relative fragments are resolved against.
        root_dir: PathBuf,
    },
    /// merge_config.sh failed.
    #[error(
        "scripts/kconfig/merge_config.sh failed merging fragments into {config} ({status}): see its output above"
    )]
    Merge {
        /// The .config it was merging into.
        config: PathBuf,
        /// Its exit status.
        status: ExitStatus,
    },
    /// After olddefconfig, options the project needs are missing.
    #[error(
        "after olddefconfig, {config} lacks options the portrange fragment requires:\n{missing}\nthis tree cannot give them (unmet Kconfig dependencies or options it does not have): check them with `make O=.. menuconfig` (search with /)"
    )]
    MissingOptions {
        /// The .config checked.
        config: PathBuf,
        /// One line per option: `CONFIG_X: wanted y, got n`.
        missing: String,
    },
    /// make succeeded but left no kernel image.
    #[error("make finished but {path} does not exist: make sure MAKE_GOALS includes {goal}")]
    NoImage {
        /// Where the image should be.
        path: PathBuf,
        /// The make goal that builds it.
        goal: &'static str,
    },
    /// A local file operation failed.
    #[error("could not {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Getting a kernel source tree or the cache directory failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A program could not be started.
    #[error("could not start {program} ({hint})")]
    Spawn {
        /// The program.
        program: String,
        /// The spawn error.
        source: io::Error,
        /// What to install.
        hint: String,
    },
    /// A program failed.
    #[error("`{command}` failed ({status}): {stderr}: {hint}")]
    Failed {
        /// The command line run.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its stderr, trimmed.
        stderr: String,
        /// What to do.
        hint: String,
    },
    /// apt could not download or unpack the package.
    #[error(transparent)]
    Archive(#[from] debian_archive::Error),
    /// A local file operation failed.
    #[error("could not {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
}
