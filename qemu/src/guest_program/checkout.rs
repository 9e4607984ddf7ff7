//! Whether the running program may build a guest program it lacks: it runs
//! from a checkout of this workspace, with cargo at hand.
//!
//! All of these must hold, and the first that does not is named:
//! - the running program sits in a cargo target directory (its
//!   [`Layout`]'s target directory holds cargo's `CACHEDIR.TAG`), so that a
//!   build into that directory lands where [`super::locate`] looks;
//! - the workspace it was built from (this crate's parent directory as
//!   cargo gave it at compile time) still holds the workspace's
//!   `Cargo.toml`;
//! - `cargo` is on `PATH`;
//! - the Rust target is installed (its standard library is in the
//!   sysroot of the `rustc` beside that cargo). Adding it changes the
//!   user's toolchain, so it stays the user's step (`rustup target add`,
//!   which `.ci/install-deps` and `ci/scripts/deps.sh` run on the machines
//!   they set up).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};

use arch::Arch;

use super::{Error, Layout, Program};

/// A checkout the running program can build guest programs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Checkout {
    /// The workspace's root directory (where its `Cargo.toml` is).
    pub(super) workspace: PathBuf,
    /// The cargo found on `PATH`.
    pub(super) cargo: PathBuf,
}

/// Why the running program does not build a guest program itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoCheckout {
    /// The running program is not in a cargo target directory (an
    /// installed or copied program).
    #[error("the running program is not in a cargo target directory ({} has no CACHEDIR.TAG)", .0.display())]
    NotInTargetDir(PathBuf),
    /// The workspace the running program was built from is gone.
    #[error("the workspace it was built from is gone (no workspace Cargo.toml in {})", .0.display())]
    WorkspaceGone(PathBuf),
    /// No `cargo` on `PATH`.
    #[error("cargo is not on PATH")]
    NoCargo,
    /// The Rust target's standard library is not installed.
    #[error("the Rust target {0} is not installed")]
    TargetMissing(String),
}

/// The workspace the running program was built from.
pub(super) fn built_from() -> &'static Path {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir)
}

impl Checkout {
    /// The checkout in which to build for the Rust `target` a program that
    /// belongs in `layout`: `workspace` is where the running program was
    /// built from, `path` the `PATH` to find cargo on, and `installed`
    /// says whether a target is installed for a cargo in a workspace.
    pub(super) fn find(
        layout: &Layout,
        workspace: &Path,
        path: Option<&OsStr>,
        target: &str,
        installed: impl Fn(&Path, &Path, &str) -> bool,
    ) -> Result<Checkout, NoCheckout> {
        if !layout.target_dir.join("CACHEDIR.TAG").is_file() {
            return Err(NoCheckout::NotInTargetDir(layout.target_dir.clone()));
        }
        let is_workspace = std::fs::read_to_string(workspace.join("Cargo.toml"))
            .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"));
        if !is_workspace {
            return Err(NoCheckout::WorkspaceGone(workspace.to_path_buf()));
        }
        let cargo = path
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("cargo"))
            .find(|cargo| is_executable(cargo))
            .ok_or(NoCheckout::NoCargo)?;
        if !installed(&cargo, workspace, target) {
            return Err(NoCheckout::TargetMissing(target.to_string()));
        }
        Ok(Checkout {
            workspace: workspace.to_path_buf(),
            cargo,
        })
    }
}

impl Checkout {
    /// Builds `program` for `arch` with cargo in this checkout, into
    /// `layout`'s target directory and profile, after telling `progress`;
    /// cargo's output (stdout too) goes to stderr. Returns where it is.
    pub(super) fn build(
        &self,
        layout: &Layout,
        arch: Arch,
        program: &Program<'_>,
        built: bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, Error> {
        let args = layout.build_args(arch, program);
        let command = format!("cargo {}", args.join(" "));
        progress(&if built {
            format!(
                "checking that {}'s {arch} build is no older than the source (`{command}` in {})",
                program.name(),
                self.workspace.display()
            )
        } else {
            format!(
                "building {} for {arch} (`{command}` in {}), once: later runs only check it",
                program.name(),
                self.workspace.display()
            )
        });
        let mut cargo = Command::new(&self.cargo);
        cargo
            .args(&args)
            .current_dir(&self.workspace)
            .env("CARGO_TARGET_DIR", &layout.target_dir)
            .stdin(Stdio::null())
            .stdout(std::io::stderr());
        let status = child_lifetime::bind_to_this_thread(&mut cargo)
            .status()
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                workspace: self.workspace.clone(),
                source,
            })?;
        if !status.success() {
            return Err(Error::BuildFailed {
                command,
                workspace: self.workspace.clone(),
                status,
            });
        }
        layout
            .find(arch, program, None)
            .map_err(|not_built| Error::Misplaced {
                command,
                path: not_built.path,
            })
    }
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;

    /// A target directory as cargo leaves it, a workspace, and a directory
    /// holding a stand-in `cargo` (an empty executable file).
    struct Fixture {
        _root: tempfile::TempDir,
        exe: PathBuf,
        workspace: PathBuf,
        bin: PathBuf,
    }

    fn fixture() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("checkout");
        fs::create_dir_all(workspace.join("target/release")).unwrap();
        fs::write(
            workspace.join("Cargo.toml"),
            "[workspace]\nmembers = [\"portrange\"]\n",
        )
        .unwrap();
        fs::write(workspace.join("target/CACHEDIR.TAG"), "Signature").unwrap();
        let bin = root.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("cargo"), "").unwrap();
        fs::set_permissions(bin.join("cargo"), fs::Permissions::from_mode(0o755)).unwrap();
        Fixture {
            exe: workspace.join("target/release/portrange"),
            workspace,
            bin,
            _root: root,
        }
    }

    fn stand_in_installed(_: &Path, _: &Path, _: &str) -> bool {
        true
    }

    fn find(fixture: &Fixture, exe: &Path) -> Result<Checkout, NoCheckout> {
        Checkout::find(
            &Layout::of(exe),
            &fixture.workspace,
            Some(fixture.bin.as_os_str()),
            "aarch64-unknown-linux-musl",
            stand_in_installed,
        )
    }

    #[test]
    fn a_release_build_in_its_checkout_with_a_stand_in_cargo_builds() {
        let fixture = fixture();
        assert_eq!(
            find(&fixture, &fixture.exe),
            Ok(Checkout {
                workspace: fixture.workspace.clone(),
                cargo: fixture.bin.join("cargo"),
            })
        );
        let elsewhere = fixture.workspace.parent().unwrap().join("elsewhere");
        fs::create_dir_all(elsewhere.join("x86_64-unknown-linux-gnu/debug/deps")).unwrap();
        fs::write(elsewhere.join("CACHEDIR.TAG"), "Signature").unwrap();
        assert!(
            find(
                &fixture,
                &elsewhere.join("x86_64-unknown-linux-gnu/debug/deps/vm-0123")
            )
            .is_ok(),
            "a CARGO_TARGET_DIR outside the workspace is a checkout's too"
        );
    }

    #[test]
    fn an_installed_program_is_not_in_a_checkout() {
        let fixture = fixture();
        let home = fixture.workspace.parent().unwrap();
        fs::create_dir_all(home.join(".cargo/bin")).unwrap();
        assert_eq!(
            find(&fixture, &home.join(".cargo/bin/portrange")),
            Err(NoCheckout::NotInTargetDir(home.join(".cargo")))
        );
        assert_eq!(
            find(&fixture, Path::new("/usr/local/bin/portrange")),
            Err(NoCheckout::NotInTargetDir("/usr/local".into()))
        );
    }

    #[test]
    fn a_build_whose_workspace_is_gone_is_not_in_a_checkout() {
        let fixture = fixture();
        fs::write(fixture.workspace.join("Cargo.toml"), "[package]\n").unwrap();
        assert_eq!(
            find(&fixture, &fixture.exe),
            Err(NoCheckout::WorkspaceGone(fixture.workspace.clone()))
        );
        fs::remove_file(fixture.workspace.join("Cargo.toml")).unwrap();
        assert_eq!(
            find(&fixture, &fixture.exe),
            Err(NoCheckout::WorkspaceGone(fixture.workspace.clone()))
        );
    }

    #[test]
    fn without_cargo_on_path_nothing_is_built() {
        let fixture = fixture();
        let layout = Layout::of(&fixture.exe);
        let no_cargo = |path: Option<&OsStr>| {
            Checkout::find(
                &layout,
                &fixture.workspace,
                path,
                "aarch64-unknown-linux-musl",
                stand_in_installed,
            )
        };
        assert_eq!(no_cargo(None), Err(NoCheckout::NoCargo));
        assert_eq!(
            no_cargo(Some(fixture.workspace.as_os_str())),
            Err(NoCheckout::NoCargo)
        );
        fs::set_permissions(fixture.bin.join("cargo"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            no_cargo(Some(fixture.bin.as_os_str())),
            Err(NoCheckout::NoCargo),
            "a cargo nobody may run is none"
        );
    }

    #[test]
    fn a_missing_rust_target_is_named() {
        let fixture = fixture();
        let asked = std::cell::RefCell::new(Vec::new());
        let stand_in_missing = |cargo: &Path, workspace: &Path, target: &str| {
            asked.borrow_mut().push((
                cargo.to_path_buf(),
                workspace.to_path_buf(),
                target.to_string(),
            ));
            false
        };
        assert_eq!(
            Checkout::find(
                &Layout::of(&fixture.exe),
                &fixture.workspace,
                Some(fixture.bin.as_os_str()),
                "aarch64-unknown-linux-musl",
                stand_in_missing,
            ),
            Err(NoCheckout::TargetMissing(
                "aarch64-unknown-linux-musl".into()
            ))
        );
        assert_eq!(
            asked.into_inner(),
            [(
                fixture.bin.join("cargo"),
                fixture.workspace.clone(),
                "aarch64-unknown-linux-musl".to_string()
            )]
        );
    }

    const PORTRANGE: Program<'static> = Program {
        package: "portrange",
        artifact: super::super::Artifact::Bin("portrange"),
    };

    fn other() -> Arch {
        Arch::ALL
            .into_iter()
            .find(|arch| *arch != Arch::host())
            .unwrap()
    }

    /// Makes the fixture's cargo a stand-in: a script that logs its working
    /// directory, CARGO_TARGET_DIR and arguments, then runs `then`.
    fn stand_in_cargo(fixture: &Fixture, then: &str) -> Checkout {
        let log = fixture.bin.join("log");
        fs::write(
            fixture.bin.join("cargo"),
            format!(
                "#!/bin/sh\necho \"$PWD|$CARGO_TARGET_DIR|$*\" > {}\n{then}\n",
                log.display()
            ),
        )
        .unwrap();
        Checkout {
            workspace: fixture.workspace.clone(),
            cargo: fixture.bin.join("cargo"),
        }
    }

    #[test]
    fn a_stand_in_cargo_builds_into_the_running_programs_target_dir_and_profile() {
        let fixture = fixture();
        let target = super::super::rust_target(other());
        let checkout = stand_in_cargo(
            &fixture,
            &format!(
                "mkdir -p \"$CARGO_TARGET_DIR/{target}/release\" && \
                 touch \"$CARGO_TARGET_DIR/{target}/release/portrange\""
            ),
        );
        let mut told = Vec::new();
        let built = checkout
            .build(
                &Layout::of(&fixture.exe),
                other(),
                &PORTRANGE,
                false,
                &mut |step| told.push(step.to_string()),
            )
            .unwrap();
        let workspace = fixture.workspace.display();
        assert_eq!(
            built,
            fixture
                .workspace
                .join(format!("target/{target}/release/portrange"))
        );
        let command =
            format!("cargo build --release --target {target} -p portrange --bin portrange");
        assert_eq!(
            fs::read_to_string(fixture.bin.join("log")).unwrap(),
            format!(
                "{workspace}|{workspace}/target|{}\n",
                command.strip_prefix("cargo ").unwrap()
            )
        );
        assert_eq!(
            told,
            [format!(
                "building portrange for {} (`{command}` in {workspace}), once: later runs only check it",
                other()
            )]
        );
        told.clear();
        checkout
            .build(
                &Layout::of(&fixture.exe),
                other(),
                &PORTRANGE,
                true,
                &mut |step| told.push(step.to_string()),
            )
            .unwrap();
        assert_eq!(
            told,
            [format!(
                "checking that portrange's {} build is no older than the source (`{command}` in {workspace})",
                other()
            )]
        );
    }

    #[test]
    fn a_failed_stand_in_build_names_the_command_and_its_exit_status() {
        let fixture = fixture();
        let target = super::super::rust_target(other());
        let command =
            format!("cargo build --release --target {target} -p portrange --bin portrange");
        let layout = Layout::of(&fixture.exe);
        let checkout = stand_in_cargo(&fixture, "exit 3");
        let err = checkout
            .build(&layout, other(), &PORTRANGE, false, &mut |_| {})
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`{command}` in {} failed (exit status: 3); cargo's errors are above",
                fixture.workspace.display()
            )
        );
        let checkout = stand_in_cargo(&fixture, "true");
        let err = checkout
            .build(&layout, other(), &PORTRANGE, false, &mut |_| {})
            .unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "`{command}` succeeded but left nothing at {}, ",
                fixture
                    .workspace
                    .join(format!("target/{target}/release/portrange"))
                    .display()
            )),
            "{err}"
        );
    }

    #[test]
    fn the_workspace_is_the_one_this_crate_was_built_in() {
        assert!(built_from().join("qemu/Cargo.toml").is_file());
        assert!(built_from().join("Cargo.toml").is_file());
    }
}
