//! Finding a program of this workspace built for a guest's architecture,
//! among cargo's build outputs next to the running program, and building
//! it there when it is missing and the running program runs from a
//! checkout with cargo at hand ([`checkout`] decides).
//!
//! For the host's architecture that is the running program's own target
//! directory (`target/<profile>/`): the host build, whose shared libraries
//! [`crate::initramfs`] packs from the host. For another architecture it is
//! cargo's directory for the static musl target
//! (`target/<arch>-unknown-linux-musl/<profile>/`): a musl build links
//! everything in, so nothing of the host's (glibc for x86_64) is needed in
//! the guest, and rustup ships the C library with the target. The
//! workspace's `.cargo/config.toml` links aarch64 musl programs with
//! rust-lld, which comes with the toolchain.

mod checkout;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;

use arch::Arch;

use checkout::Checkout;
pub use checkout::NoCheckout;

/// Which build output of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact<'a> {
    /// A binary target (`--bin NAME`).
    Bin(&'a str),
    /// An example (`--example NAME`).
    Example(&'a str),
}

/// A program of this workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program<'a> {
    /// The package that builds it (`-p`).
    pub package: &'a str,
    /// The build output.
    pub artifact: Artifact<'a>,
}

/// The program has not been built for the wanted architecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {arch} build of {name} at {}{}: {remedy}", path.display(), why_not_here(not_built_here))]
pub struct NotBuilt {
    /// The architecture wanted.
    pub arch: Arch,
    /// The program's name.
    pub name: String,
    /// Where it was looked for.
    pub path: PathBuf,
    /// Why the running program did not build it itself, when it was asked
    /// to ([`locate_or_build`]).
    pub not_built_here: Option<NoCheckout>,
    /// The commands that build it.
    pub remedy: String,
}

/// " (not built here: WHY)" when building was tried, else nothing.
fn why_not_here(not_built_here: &Option<NoCheckout>) -> String {
    not_built_here
        .as_ref()
        .map(|why| format!(" (not built here: {why})"))
        .unwrap_or_default()
}

/// No guest program: not built, or building it failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It is not there, and the running program did not build it.
    #[error(transparent)]
    NotBuilt(#[from] NotBuilt),
    /// cargo could not be started.
    #[error("starting `{command}` in {}: {source}", workspace.display())]
    Spawn {
        /// The build command.
        command: String,
        /// Where it was run.
        workspace: PathBuf,
        /// What starting it returned.
        #[source]
        source: std::io::Error,
    },
    /// cargo failed; its errors went to stderr before this.
    #[error("`{command}` in {} failed ({status}); cargo's errors are above", workspace.display())]
    BuildFailed {
        /// The build command.
        command: String,
        /// Where it was run.
        workspace: PathBuf,
        /// How cargo ended.
        status: ExitStatus,
    },
    /// cargo succeeded and the program is still not where it was looked for.
    #[error("`{command}` succeeded but left nothing at {}, where the running program's target directory and profile put it", path.display())]
    Misplaced {
        /// The build command.
        command: String,
        /// Where the program was looked for.
        path: PathBuf,
    },
}

/// The Rust target guest programs are cross-built for: `<arch>-unknown-linux-musl`.
pub fn rust_target(arch: Arch) -> String {
    format!("{}-unknown-linux-musl", arch.gnu_name())
}

/// Finds `program` built for `arch` next to the running program (see the
/// module documentation), or says which commands build it.
pub fn locate(arch: Arch, program: &Program<'_>) -> Result<PathBuf, NotBuilt> {
    let layout = Layout::of(&std::env::current_exe().unwrap_or_default());
    layout.find(arch, program, None)
}

/// Finds `program` built for another architecture than the host's. When
/// the running program runs from a checkout with cargo at hand
/// ([`checkout`]), cargo builds it first with [`build_args`] into the
/// running program's own target directory, after telling `progress`
/// (cargo's output goes to stderr): the first time that is the whole
/// build, later a check that the build is no older than the source (under
/// a second when it is), so the guest never runs another version of the
/// program than the host. Elsewhere an existing build is used as it is, as
/// [`locate`] finds it, and [`Error::NotBuilt`] says which condition of a
/// checkout failed and what to type.
pub fn locate_or_build(
    arch: Arch,
    program: &Program<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, Error> {
    // Two guests of one run (a matrix) wait for the one build.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let layout = Layout::of(&std::env::current_exe().unwrap_or_default());
    let built = layout.path(arch, program).is_file();
    let target = rust_target(arch);
    let path_var = std::env::var_os("PATH");
    let checkout = Checkout::find(
        &layout,
        checkout::built_from(),
        path_var.as_deref(),
        &target,
        |cargo, workspace, target| {
            target_installed(&cargo.with_file_name("rustc"), workspace, target) == Some(true)
        },
    );
    match checkout {
        Ok(checkout) => checkout.build(&layout, arch, program, built, progress),
        Err(why) => layout.find(arch, program, Some(why)).map_err(Error::from),
    }
}

/// The guest program that is the running program itself: this very
/// executable when `arch` is the host's, else its build for `arch` as
/// [`locate_or_build`] finds or builds it (or says how to make it).
pub fn running_for(
    arch: Arch,
    program: &Program<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, Error> {
    match std::env::current_exe() {
        Ok(exe) if arch == Arch::host() => Ok(exe),
        _ => locate_or_build(arch, program, progress),
    }
}

impl Program<'_> {
    /// The name of the executable.
    fn name(&self) -> &str {
        match self.artifact {
            Artifact::Bin(name) | Artifact::Example(name) => name,
        }
    }

    /// Its path below a profile directory.
    fn relative(&self) -> PathBuf {
        match self.artifact {
            Artifact::Bin(name) => PathBuf::from(name),
            Artifact::Example(name) => Path::new("examples").join(name),
        }
    }
}

/// Where cargo put the running program: `<target dir>/[<triple>/]<profile>/[deps|examples/]<exe>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// The running program's profile directory.
    own: PathBuf,
    /// The target directory.
    target_dir: PathBuf,
    /// The profile's directory name: `debug`, `release`, or a custom profile.
    profile: String,
}

impl Layout {
    fn of(exe: &Path) -> Layout {
        let mut own = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
        if own.ends_with("deps") || own.ends_with("examples") {
            own.pop();
        }
        let profile = own.file_name().map_or_else(
            || "debug".to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let mut target_dir = own.parent().unwrap_or(Path::new(".")).to_path_buf();
        // A `--target` build: `<arch>-<vendor>-linux-<env>` between the two.
        let is_triple = target_dir.file_name().is_some_and(|name| {
            let name = name.to_string_lossy();
            name.contains("-linux-")
                && Arch::ALL
                    .iter()
                    .any(|arch| name.starts_with(&format!("{}-", arch.gnu_name())))
        });
        if is_triple {
            target_dir.pop();
        }
        Layout {
            own,
            target_dir,
            profile,
        }
    }

    /// `program` for `arch` where it belongs in this layout, or what to
    /// type to build it there (`not_built_here`: why it was not built
    /// automatically, if that was tried).
    fn find(
        &self,
        arch: Arch,
        program: &Program<'_>,
        not_built_here: Option<NoCheckout>,
    ) -> Result<PathBuf, NotBuilt> {
        let path = self.path(arch, program);
        if path.is_file() {
            return Ok(path);
        }
        let target = rust_target(arch);
        // An installed program's directory is no profile: a checkout's
        // release build is what to make.
        let (args, place) = match not_built_here {
            Some(NoCheckout::NotInTargetDir(_)) => {
                let release = Layout {
                    profile: "release".to_string(),
                    ..self.clone()
                };
                (release.build_args(arch, program), " in a checkout")
            }
            _ => (self.build_args(arch, program), ""),
        };
        let build = format!("cargo {}", args.join(" "));
        let remedy = if arch == Arch::host() {
            format!("build it{place} with `{build}`")
        } else {
            match target_installed(Path::new("rustc"), Path::new("."), &target) {
                Some(true) => format!("cross-build it{place} with `{build}`"),
                Some(false) => format!(
                    "add the Rust target with `rustup target add {target}`, then cross-build it{place} with `{build}`"
                ),
                None => format!(
                    "cross-build it{place} with `{build}` (the Rust target first, if missing: `rustup target add {target}`)"
                ),
            }
        };
        Err(NotBuilt {
            arch,
            name: program.name().to_string(),
            path,
            not_built_here,
            remedy,
        })
    }

    /// Where `program` for `arch` is.
    fn path(&self, arch: Arch, program: &Program<'_>) -> PathBuf {
        let dir = if arch == Arch::host() {
            self.own.clone()
        } else {
            self.target_dir.join(rust_target(arch)).join(&self.profile)
        };
        dir.join(program.relative())
    }

    /// cargo's arguments that build `program` for `arch` into [`Layout::path`].
    fn build_args(&self, arch: Arch, program: &Program<'_>) -> Vec<String> {
        let mut args = vec!["build".to_string()];
        match self.profile.as_str() {
            "debug" => {}
            "release" => args.push("--release".to_string()),
            custom => args.extend(["--profile".to_string(), custom.to_string()]),
        }
        if arch != Arch::host() {
            args.extend(["--target".to_string(), rust_target(arch)]);
        }
        args.extend(["-p".to_string(), program.package.to_string()]);
        args.extend(match program.artifact {
            Artifact::Bin(name) => ["--bin".to_string(), name.to_string()],
            Artifact::Example(name) => ["--example".to_string(), name.to_string()],
        });
        args
    }
}

/// cargo's arguments (after `cargo`) that build `program` for `arch` where
/// [`locate`] looks for it, in the running program's profile.
pub fn build_args(arch: Arch, program: &Program<'_>) -> Vec<String> {
    Layout::of(&std::env::current_exe().unwrap_or_default()).build_args(arch, program)
}

/// Whether the standard library for `target` is in `rustc`'s sysroot, run
/// in `dir` (where a rust-toolchain file would pick the toolchain); `None`
/// when `rustc` does not run.
fn target_installed(rustc: &Path, dir: &Path, target: &str) -> Option<bool> {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    Some(Path::new(String::from_utf8_lossy(&output.stdout).trim()).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTRANGE: Program<'static> = Program {
        package: "portrange",
        artifact: Artifact::Bin("portrange"),
    };
    const ECHO: Program<'static> = Program {
        package: "qemu",
        artifact: Artifact::Example("guest_echo"),
    };

    fn other() -> Arch {
        Arch::ALL
            .into_iter()
            .find(|arch| *arch != Arch::host())
            .unwrap()
    }

    #[test]
    fn targets_are_the_static_musl_ones() {
        assert_eq!(rust_target(Arch::Arm64), "aarch64-unknown-linux-musl");
        assert_eq!(rust_target(Arch::X86_64), "x86_64-unknown-linux-musl");
    }

    #[test]
    fn a_test_binary_finds_the_foreign_build_beside_its_profile() {
        let layout = Layout::of(Path::new("/w/target/debug/deps/vm-0123abcd"));
        assert_eq!(layout.target_dir, Path::new("/w/target"));
        assert_eq!(
            layout.path(other(), &ECHO),
            Path::new("/w/target")
                .join(rust_target(other()))
                .join("debug/examples/guest_echo")
        );
        assert_eq!(
            layout.path(Arch::host(), &ECHO),
            Path::new("/w/target/debug/examples/guest_echo")
        );
    }

    #[test]
    fn a_release_binary_built_for_a_triple_finds_its_siblings() {
        let layout = Layout::of(Path::new("/w/t/x86_64-unknown-linux-gnu/release/portrange"));
        assert_eq!(layout.target_dir, Path::new("/w/t"));
        assert_eq!(layout.profile, "release");
        assert_eq!(
            layout.path(Arch::host(), &PORTRANGE),
            Path::new("/w/t/x86_64-unknown-linux-gnu/release/portrange")
        );
        assert_eq!(
            layout.path(other(), &PORTRANGE),
            Path::new("/w/t")
                .join(rust_target(other()))
                .join("release/portrange")
        );
    }

    #[test]
    fn the_build_command_matches_the_profile_target_and_artifact() {
        let layout = Layout::of(Path::new("/w/target/release/portrange"));
        assert_eq!(
            layout.build_args(other(), &PORTRANGE).join(" "),
            format!(
                "build --release --target {} -p portrange --bin portrange",
                rust_target(other())
            )
        );
        let layout = Layout::of(Path::new("/w/my-own-target-dir/bench/deps/x"));
        assert_eq!(layout.target_dir, Path::new("/w/my-own-target-dir"));
        assert_eq!(
            layout.build_args(Arch::host(), &ECHO).join(" "),
            "build --profile bench -p qemu --example guest_echo"
        );
    }

    #[test]
    fn the_running_program_is_itself_on_the_host() {
        let program = Program {
            package: "qemu",
            artifact: Artifact::Bin("no_such_program"),
        };
        let mut progress = |step: &str| panic!("nothing to build, yet {step}");
        assert_eq!(
            running_for(Arch::host(), &program, &mut progress).unwrap(),
            std::env::current_exe().unwrap()
        );
    }

    #[test]
    fn a_program_not_built_here_says_why_and_what_to_type() {
        let target = rust_target(other());
        let installed = Layout::of(Path::new("/usr/local/bin/portrange"));
        let err = installed
            .find(
                other(),
                &PORTRANGE,
                Some(NoCheckout::NotInTargetDir("/usr/local".into())),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "no {} build of portrange at /usr/local/{target}/bin/portrange \
                 (not built here: the running program is not in a cargo target directory \
                 (/usr/local has no CACHEDIR.TAG)): ",
                other()
            )),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "cross-build it in a checkout with \
                 `cargo build --release --target {target} -p portrange --bin portrange`"
            )),
            "{text}"
        );

        let checkout = Layout::of(Path::new("/w/target/debug/portrange"));
        let text = checkout
            .find(other(), &PORTRANGE, Some(NoCheckout::NoCargo))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("/portrange (not built here: cargo is not on PATH): "),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "cross-build it with `cargo build --target {target} -p portrange --bin portrange`"
            )),
            "{text}"
        );
    }

    #[test]
    fn a_missing_build_names_the_commands_in_one_line() {
        let program = Program {
            package: "qemu",
            artifact: Artifact::Example("no_such_example"),
        };
        let err = locate(other(), &program).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with(&format!("no {} build of no_such_example at ", other())),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "`cargo build --target {} -p qemu --example no_such_example`",
                rust_target(other())
            )),
            "{text}"
        );
    }
}
