//! The cargo runner: what of the host a program run with `portrange vm --
//! PROGRAM ARGS...` finds inside the VM, so a test binary runs there as
//! `cargo test` runs it on the host.
//!
//! - The environment the runner was started with, but for [`DENIED`]
//!   (host paths and sockets that mean nothing in the guest), plus
//!   [`GUEST_ENV`] and `PWD`.
//! - The working directory (cargo's package root) at the same absolute
//!   path, read-only, with its files but for `.git` and cargo target
//!   directories ([`is_skipped`]); `--include` adds more paths.
//! - The program and the binaries it runs (`CARGO_BIN_EXE_*` variables,
//!   and the paths of the package's binaries that cargo built into the
//!   program), each with its shared libraries.
//!
//! All of it is packed into the initramfs ([`qemu::initramfs::Payload`]):
//! a copy, so nothing the program writes can reach the host.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use qemu::initramfs::Payload;
use qemu::kernel::Kernel;

/// Host variables the guest does not get: they name host programs,
/// libraries, terminals and sockets that are not in the guest, or are
/// replaced by [`GUEST_ENV`]. Every `LD_*` variable is left out too.
pub const DENIED: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "PWD",
    "OLDPWD",
    "SHELL",
    "SHLVL",
    "TERM",
    "_",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "SSH_AUTH_SOCK",
];

/// What the guest sets instead (`PWD` is the working directory).
pub const GUEST_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/tmp"),
    ("TMPDIR", "/tmp"),
];

/// Payloads above this many bytes get a line about packing them.
const REPORTED_BYTES: u64 = 10 << 20;

/// How the host's files reach the guest (`--share`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShareMode {
    /// Pack, saying why no file system is shared.
    Auto,
    /// Copy the files into the initramfs.
    Pack,
    /// Share over 9p (virtio): not done yet, refused with the reason.
    #[value(name = "9p")]
    NineP,
    /// Share over virtiofs: not done yet, refused with the reason.
    Virtiofs,
}

/// What the program gets besides its arguments, as the user asked.
#[derive(Debug, Clone)]
pub struct Sharing {
    /// How files reach the guest.
    pub mode: ShareMode,
    /// More host paths to pack (files or whole directories).
    pub includes: Vec<PathBuf>,
    /// The most bytes of files to pack.
    pub max_pack_bytes: u64,
}

/// The payload for `program` and what packing it takes.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The payload.
    pub payload: Payload,
    /// Files, directories and links to pack (executables included).
    pub entries: usize,
    /// Bytes of file contents to pack.
    pub bytes: u64,
}

impl Gathered {
    /// The line for stderr about packing, which took `elapsed` and gave an
    /// initramfs of `initramfs_bytes`; `None` for a few MiB.
    pub fn packed_note(
        &self,
        elapsed: std::time::Duration,
        initramfs_bytes: u64,
    ) -> Option<String> {
        (self.bytes > REPORTED_BYTES).then(|| {
            format!(
                "vm: packed {} files, {:.1} MiB in {:.1} s (initramfs {:.1} MiB)",
                self.entries,
                mib(self.bytes),
                elapsed.as_secs_f64(),
                mib(initramfs_bytes)
            )
        })
    }
}

/// Bytes in MiB, for messages.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Decides how files reach a guest booted on `kernel`: the note for
/// stderr when `--share auto` chose, an error naming the reason when the
/// mode asked for cannot be had.
pub fn choose(mode: ShareMode, kernel: &Kernel) -> anyhow::Result<Option<String>> {
    let config = kernel.config_file();
    let text = config
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let has = |option: &str| {
        text.as_deref().map(|text| {
            text.lines()
                .any(|line| line == format!("{option}=y") || line == format!("{option}=m"))
        })
    };
    let (name, options) = match mode {
        ShareMode::Pack => return Ok(None),
        ShareMode::Auto => {
            let found: Vec<&str> = [("9p", "CONFIG_9P_FS"), ("virtiofs", "CONFIG_VIRTIO_FS")]
                .into_iter()
                .filter(|(_, option)| has(option) == Some(true))
                .map(|(name, _)| name)
                .collect();
            let why = match (config, found.as_slice()) {
                (None, _) => format!(
                    "no kernel configuration beside {} tells whether it has 9p or virtiofs",
                    kernel.image.display()
                ),
                (Some(_), []) => format!("{} has neither 9p nor virtiofs", kernel.name),
                (Some(_), found) => format!(
                    "{} has {}, but portrange does not share file systems yet",
                    kernel.name,
                    found.join(" and ")
                ),
            };
            return Ok(Some(format!("--share auto packs the files: {why}")));
        }
        ShareMode::NineP => ("9p", ["CONFIG_NET_9P_VIRTIO", "CONFIG_9P_FS"]),
        ShareMode::Virtiofs => ("virtiofs", ["CONFIG_FUSE_FS", "CONFIG_VIRTIO_FS"]),
    };
    let missing: Vec<&str> = options
        .into_iter()
        .filter(|option| has(option) == Some(false))
        .collect();
    match (config, missing.as_slice()) {
        (None, _) => anyhow::bail!(
            "--share {name}: no kernel configuration beside {} tells whether {} has {name}, and \
             portrange does not share over {name} yet: use --share pack",
            kernel.image.display(),
            kernel.name
        ),
        (Some(config), []) => anyhow::bail!(
            "--share {name}: {} has {name} ({}), but portrange does not share over it yet: use \
             --share pack",
            kernel.name,
            config.display()
        ),
        (Some(config), missing) => anyhow::bail!(
            "--share {name}: kernel {} lacks {name} ({} not set in {}): use --share pack",
            kernel.name,
            missing.join(", "),
            config.display()
        ),
    }
}

/// Gathers what `program` (run from the current directory with the
/// current environment) needs in the guest.
pub fn gather(program: &Path, sharing: &Sharing) -> anyhow::Result<Gathered> {
    let program = program
        .canonicalize()
        .with_context(|| format!("program {}", program.display()))?;
    let cwd = std::env::current_dir().context("the working directory")?;
    let host_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut executables = built_binaries(&program)?;
    for (name, value) in &host_env {
        if name.as_bytes().starts_with(b"CARGO_BIN_EXE_") {
            let path = PathBuf::from(value);
            if path.is_file() && !executables.contains(&path) {
                executables.push(path);
            }
        }
    }
    let mut tally = Tally {
        limit: sharing.max_pack_bytes,
        ..Tally::default()
    };
    for path in executables.iter().chain([&program]) {
        tally.count(path)?;
    }
    walk(&cwd, true, &mut tally)?;
    for include in &sharing.includes {
        let path = std::path::absolute(include)
            .with_context(|| format!("--include {}", include.display()))?;
        anyhow::ensure!(
            path.symlink_metadata().is_ok(),
            "--include {}: no such file or directory",
            include.display()
        );
        walk(&path, false, &mut tally)?;
    }
    let Tally { files, bytes, .. } = tally;
    Ok(Gathered {
        entries: files.len() + executables.len() + 1,
        bytes,
        payload: Payload {
            env: guest_env(host_env, &cwd),
            program,
            executables,
            files,
            cwd,
        },
    })
}

/// The guest's environment: `host` but for [`DENIED`] and `LD_*`, then
/// [`GUEST_ENV`] and `PWD`.
fn guest_env(host: Vec<(OsString, OsString)>, cwd: &Path) -> Vec<(OsString, OsString)> {
    let denied = |name: &OsStr| {
        name.as_bytes().starts_with(b"LD_")
            || DENIED.iter().any(|denied| name == OsStr::new(denied))
    };
    host.into_iter()
        .filter(|(name, _)| !denied(name))
        .chain(
            GUEST_ENV
                .iter()
                .map(|(name, value)| (name.into(), value.into())),
        )
        .chain([("PWD".into(), cwd.as_os_str().to_owned())])
        .collect()
}

/// Whether the walk of the working directory leaves `dir` out: `.git`,
/// and cargo's target directories (`target` at the top, or any directory
/// cargo marked with a `CACHEDIR.TAG`).
fn is_skipped(dir: &walkdir::DirEntry) -> bool {
    let name = dir.file_name();
    dir.file_type().is_dir()
        && (name == ".git"
            || (dir.depth() == 1 && name == "target")
            || dir.path().join("CACHEDIR.TAG").is_file())
}

/// The paths to pack and their bytes, refused once over a limit.
#[derive(Debug, Default)]
struct Tally {
    files: Vec<PathBuf>,
    bytes: u64,
    limit: u64,
}

impl Tally {
    /// Counts the bytes of `path` (a regular file's; nothing for a
    /// directory or link); an error once they go over the limit.
    fn count(&mut self, path: &Path) -> anyhow::Result<()> {
        let metadata = path
            .symlink_metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        if metadata.is_file() {
            self.bytes += metadata.len();
        }
        anyhow::ensure!(
            self.bytes <= self.limit,
            "the files to pack for the VM come to more than {:.0} MiB, the limit, at {}: raise \
             it with --max-pack-size MIB, or leave out what the program does not need",
            mib(self.limit),
            path.display()
        );
        Ok(())
    }
}

/// Adds `root` and everything under it (but what [`is_skipped`] leaves
/// out, with `skip`) to `tally`, without following links.
fn walk(root: &Path, skip: bool, tally: &mut Tally) -> anyhow::Result<()> {
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| !(skip && entry.depth() > 0 && is_skipped(entry)));
    for entry in walker {
        let entry = entry.with_context(|| format!("reading {}", root.display()))?;
        tally.count(entry.path())?;
        tally.files.push(entry.into_path());
    }
    Ok(())
}

/// The package's binaries an integration test was built to run: cargo
/// builds them beside `program`'s `deps` directory and compiles their
/// paths into it (`env!("CARGO_BIN_EXE_<name>")`), so each executable
/// there whose path the program holds.
fn built_binaries(program: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Some(profile) = program
        .parent()
        .filter(|deps| deps.file_name() == Some(OsStr::new("deps")))
        .and_then(Path::parent)
    else {
        return Ok(Vec::new());
    };
    let mut candidates = Vec::new();
    for entry in
        std::fs::read_dir(profile).with_context(|| format!("reading {}", profile.display()))?
    {
        let path = entry
            .with_context(|| format!("reading {}", profile.display()))?
            .path();
        let executable = path
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            candidates.push(path);
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = std::fs::read(program).with_context(|| format!("reading {}", program.display()))?;
    Ok(candidates
        .into_iter()
        .filter(|path| memchr::memmem::find(&bytes, path.as_os_str().as_bytes()).is_some())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect()
    }

    #[test]
    fn the_guest_gets_the_host_environment_but_for_the_deny_list() {
        let host = pairs(&[
            ("CARGO_MANIFEST_DIR", "/src/pkg"),
            ("PATH", "/host/bin"),
            ("LD_PRELOAD", "/host/lib.so"),
            ("RUST_BACKTRACE", "1"),
            ("TERM", "xterm"),
            ("HOME", "/root"),
        ]);
        let env = guest_env(host, Path::new("/src/pkg"));
        assert_eq!(
            env,
            pairs(&[
                ("CARGO_MANIFEST_DIR", "/src/pkg"),
                ("RUST_BACKTRACE", "1"),
                (
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                ),
                ("HOME", "/tmp"),
                ("TMPDIR", "/tmp"),
                ("PWD", "/src/pkg"),
            ])
        );
    }

    /// A kernel "built" in `dir` with `config` as its `.config`.
    fn built_kernel(dir: &Path, config: &str) -> Kernel {
        std::fs::create_dir_all(dir.join("arch/x86/boot")).unwrap();
        std::fs::write(dir.join(".config"), config).unwrap();
        Kernel {
            image: dir.join("arch/x86/boot/bzImage"),
            arch: arch::Arch::X86_64,
            modules: None,
            release: None,
            name: "built".into(),
        }
    }

    #[test]
    fn sharing_is_refused_naming_what_the_kernel_lacks_or_has() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = built_kernel(dir.path(), "CONFIG_FUSE_FS=y\nCONFIG_VIRTIO_FS=m\n");
        let config = dir.path().join(".config");
        let error = |mode| choose(mode, &kernel).unwrap_err().to_string();
        assert_eq!(
            error(ShareMode::NineP),
            format!(
                "--share 9p: kernel built lacks 9p (CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS not set \
                 in {}): use --share pack",
                config.display()
            )
        );
        assert_eq!(
            error(ShareMode::Virtiofs),
            format!(
                "--share virtiofs: built has virtiofs ({}), but portrange does not share over it \
                 yet: use --share pack",
                config.display()
            )
        );
        assert_eq!(choose(ShareMode::Pack, &kernel).unwrap(), None);
        assert_eq!(
            choose(ShareMode::Auto, &kernel).unwrap().unwrap(),
            "--share auto packs the files: built has virtiofs, but portrange does not share file \
             systems yet"
        );
    }

    #[test]
    fn auto_says_when_nothing_tells_what_the_kernel_has() {
        let dir = tempfile::tempdir().unwrap();
        let mut kernel = built_kernel(dir.path(), "");
        assert_eq!(
            choose(ShareMode::Auto, &kernel).unwrap().unwrap(),
            "--share auto packs the files: built has neither 9p nor virtiofs"
        );
        kernel.image = dir.path().join("bzImage");
        let note = choose(ShareMode::Auto, &kernel).unwrap().unwrap();
        assert!(note.contains("no kernel configuration beside"), "{note}");
    }

    #[test]
    fn a_tree_over_the_limit_is_refused_where_it_goes_over() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(dir.path().join(name), vec![0; 600 << 10]).unwrap();
        }
        let mut tally = Tally {
            limit: 1 << 20,
            ..Tally::default()
        };
        let error = walk(dir.path(), true, &mut tally).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "the files to pack for the VM come to more than 1 MiB, the limit, at {}: raise \
                 it with --max-pack-size MIB, or leave out what the program does not need",
                dir.path().join("b").display()
            )
        );
    }

    #[test]
    fn the_walk_leaves_out_git_and_target_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for path in [
            "src/lib.rs",
            "tests/data/target/kept.txt",
            "target/debug/big",
            ".git/HEAD",
            "other-target/CACHEDIR.TAG",
            "other-target/debug/big",
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), "x").unwrap();
        }
        let mut tally = Tally {
            limit: u64::MAX,
            ..Tally::default()
        };
        walk(root, true, &mut tally).unwrap();
        assert_eq!(tally.bytes, 2);
        let names: Vec<String> = tally
            .files
            .iter()
            .map(|path| path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "",
                "src",
                "src/lib.rs",
                "tests",
                "tests/data",
                "tests/data/target",
                "tests/data/target/kept.txt"
            ]
        );
    }
}
