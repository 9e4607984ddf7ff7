//! Finding a program of this workspace built for a guest's architecture,
//! among cargo's build outputs next to the running program.
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

use std::path::{Path, PathBuf};
use std::process::Command;

use arch::Arch;

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
#[error("no {arch} build of {name} at {}: {remedy}", path.display())]
pub struct NotBuilt {
    /// The architecture wanted.
    pub arch: Arch,
    /// The program's name.
    pub name: String,
    /// Where it was looked for.
    pub path: PathBuf,
    /// The commands that build it.
    pub remedy: String,
}

/// The Rust target guest programs are cross-built for: `<arch>-unknown-linux-musl`.
pub fn rust_target(arch: Arch) -> String {
    format!("{}-unknown-linux-musl", arch.gnu_name())
}

/// Finds `program` built for `arch` next to the running program (see the
/// module documentation), or says which commands build it.
pub fn locate(arch: Arch, program: &Program<'_>) -> Result<PathBuf, NotBuilt> {
    let exe = std::env::current_exe().unwrap_or_default();
    let layout = Layout::of(&exe);
    let path = layout.path(arch, program);
    if path.is_file() {
        return Ok(path);
    }
    let target = rust_target(arch);
    let build = format!("cargo {}", layout.build_args(arch, program).join(" "));
    let remedy = if arch == Arch::host() {
        format!("build it with `{build}`")
    } else if target_installed(&target) {
        format!("cross-build it with `{build}`")
    } else {
        format!(
            "add the Rust target with `rustup target add {target}`, then cross-build it with `{build}`"
        )
    };
    Err(NotBuilt {
        arch,
        name: program.name().to_string(),
        path,
        remedy,
    })
}

/// The guest program that is the running program itself: this very
/// executable when `arch` is the host's, else its build for `arch` as
/// [`locate`] finds it (or says how to make it).
pub fn running_for(arch: Arch, program: &Program<'_>) -> Result<PathBuf, NotBuilt> {
    match std::env::current_exe() {
        Ok(exe) if arch == Arch::host() => Ok(exe),
        _ => locate(arch, program),
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

/// Whether rustup has installed the standard library for `target`.
fn target_installed(target: &str) -> bool {
    Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .is_ok_and(|output| {
            output.status.success()
                && Path::new(String::from_utf8_lossy(&output.stdout).trim()).is_dir()
        })
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
    fn the_running_program_is_itself_on_the_host_and_its_cross_build_elsewhere() {
        let program = Program {
            package: "qemu",
            artifact: Artifact::Bin("no_such_program"),
        };
        assert_eq!(
            running_for(Arch::host(), &program),
            Ok(std::env::current_exe().unwrap())
        );
        let err = running_for(other(), &program).unwrap_err();
        assert_eq!(err.arch, other());
        assert!(
            err.path
                .starts_with(Layout::of(&std::env::current_exe().unwrap()).target_dir),
            "{err}"
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
