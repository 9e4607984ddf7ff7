//! Debian's package archive for any architecture, as apt on this machine
//! reaches it, without changing the machine.
//!
//! Each architecture gets its own apt state (package lists and apt's
//! cache) under `<cache>/apt/<debian arch>/`, and apt is pointed at it with
//! `-o` options: the machine's sources, keyrings and proxy settings are
//! used, but its dpkg architectures and `/var/lib/apt/lists` are left
//! alone, so nothing needs `dpkg --add-architecture`, an `apt-get update`
//! by root, or root at all. The lists are fetched on first use and again
//! when a day old (about 9 MB and 2-5 s for Debian 12's three suites).
//!
//! ```no_run
//! use arch::Arch;
//! use debian_archive::{Archive, unpack};
//! # fn main() -> Result<(), debian_archive::Error> {
//! # let cache = std::path::Path::new("/tmp/cache");
//! let archive = Archive::new(cache, Arch::Arm64);
//! let names = archive.search("^linux-image-6\\.12\\..*-cloud-arm64-unsigned$", &mut |s| eprintln!("{s}"))?;
//! let deb = archive.download(&names[0], cache, &mut |s| eprintln!("{s}"))?;
//! unpack(&deb, &cache.join("root"))?;
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use arch::Arch;
use nix::fcntl::{Flock, FlockArg};

/// Package lists older than this are fetched again before a search.
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Touched after each successful `apt-get update`.
const STAMP: &str = "lists-updated";
/// Held while apt runs on a state directory, across processes.
const LOCK: &str = "portrange.lock";

/// Why a package could not be listed, fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool is not installed.
    #[error("{tool} not found: apt-get install {package}")]
    ToolMissing {
        /// The program that could not be run.
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A command ran but failed.
    #[error("`{command}` failed ({status}): {stderr}: {hint}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr.
        stderr: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The download left no package file.
    #[error(
        "apt-get download {package} left no {package}_*.deb in {dir}: check `apt-cache policy {package}`"
    )]
    NoDeb {
        /// The package asked for.
        package: String,
        /// Where it should be.
        dir: PathBuf,
    },
    /// A file operation in the cache failed.
    #[error("{what} {path} failed (check the cache directory, PORTRANGE_CACHE)")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A Debian release the machine's apt sources need not list, reached
/// through a sources list of the archive's own (in its state directory),
/// signed by the keys of the machine's `debian-archive-keyring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Debian 11 and its security updates (Linux 5.10).
    Bullseye,
}

impl Suite {
    /// The suite's name (`bullseye`).
    pub fn name(self) -> &'static str {
        match self {
            Suite::Bullseye => "bullseye",
        }
    }

    /// The sources list apt reads for this suite.
    fn sources(self) -> String {
        let name = self.name();
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        format!(
            "deb [signed-by={keyring}] http://deb.debian.org/debian {name} main\n\
             deb [signed-by={keyring}] http://deb.debian.org/debian-security {name}-security main\n"
        )
    }
}

/// Debian's archive for one architecture, with its apt state in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    arch: Arch,
    state: PathBuf,
    suite: Option<Suite>,
}

impl Archive {
    /// The archive for `arch` as the machine's apt sources list it, its apt
    /// state under `<cache>/apt/<debian arch>`.
    pub fn new(cache: &Path, arch: Arch) -> Archive {
        Archive {
            arch,
            state: cache.join("apt").join(arch.debian_name()),
            suite: None,
        }
    }

    /// The archive of `suite` for `arch`, through sources of its own (not
    /// the machine's), its apt state under `<cache>/apt/<debian arch>-<suite>`.
    pub fn of_suite(cache: &Path, arch: Arch, suite: Suite) -> Archive {
        Archive {
            arch,
            state: cache
                .join("apt")
                .join(format!("{}-{}", arch.debian_name(), suite.name())),
            suite: Some(suite),
        }
    }

    /// The architecture whose packages this archive lists.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Names of the packages whose names match the POSIX regular
    /// expression `pattern` (`apt-cache search --names-only`), fetching
    /// the package lists first when they are missing or a day old.
    pub fn search(
        &self,
        pattern: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Error> {
        let _lock = self.lock()?;
        if !self.fresh() {
            self.update(progress)?;
        }
        let output = run(
            Command::new("apt-cache").args(self.options()).args([
                "search",
                "--names-only",
                pattern,
            ]),
            ("apt-cache", "apt"),
            "check that apt's sources (/etc/apt/sources.list*) are Debian's",
        )?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }

    /// Downloads `package` for this architecture into `dir` and returns
    /// the `.deb` file, fetching the package lists first when they are
    /// missing or a day old.
    pub fn download(
        &self,
        package: &str,
        dir: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> Result<PathBuf, Error> {
        let _lock = self.lock()?;
        if !self.fresh() {
            self.update(progress)?;
        }
        progress(&format!(
            "fetching {package} ({}) with apt-get download",
            self.arch.debian_name()
        ));
        run(
            Command::new("apt-get")
                .args(self.options())
                .arg("download")
                .arg(format!("{package}:{}", self.arch.debian_name()))
                .current_dir(dir),
            ("apt-get", "apt"),
            "check `apt-cache policy` for the package and network access to the archive",
        )?;
        newest_deb(dir, package)?.ok_or_else(|| Error::NoDeb {
            package: package.to_string(),
            dir: dir.to_path_buf(),
        })
    }

    /// apt's options that point it at this archive's own state (and, for
    /// a suite, at its own sources only).
    fn options(&self) -> Vec<String> {
        let arch = self.arch.debian_name();
        let sources = self.suite.map(|_| {
            [
                format!(
                    "Dir::Etc::SourceList={}",
                    self.state.join("sources.list").display()
                ),
                format!(
                    "Dir::Etc::SourceParts={}",
                    self.state.join("sources.list.d").display()
                ),
            ]
        });
        [
            format!("Dir::State::Lists={}", self.state.join("lists").display()),
            format!("Dir::Cache={}", self.state.join("cache").display()),
            format!("APT::Architecture={arch}"),
            format!("APT::Architectures={arch}"),
            "Acquire::Languages=none".to_string(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_string(),
        ]
        .into_iter()
        .chain(sources.into_iter().flatten())
        .flat_map(|option| ["-o".to_string(), option])
        .collect()
    }

    /// Whether the lists were fetched less than [`MAX_AGE`] ago.
    fn fresh(&self) -> bool {
        std::fs::metadata(self.state.join(STAMP))
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| {
                SystemTime::now()
                    .duration_since(at)
                    .is_ok_and(|age| age < MAX_AGE)
            })
    }

    /// Fetches the package lists for this architecture into the state.
    fn update(&self, progress: &mut dyn FnMut(&str)) -> Result<(), Error> {
        let partial = self.state.join("lists/partial");
        std::fs::create_dir_all(&partial).map_err(io("creating", &partial))?;
        progress(&format!(
            "fetching Debian's {} package lists into {}",
            self.arch.debian_name(),
            self.state.display()
        ));
        run(
            Command::new("apt-get")
                .args(self.options())
                .args(["-q", "update"]),
            ("apt-get", "apt"),
            "check network access to the sources in /etc/apt/sources.list*",
        )?;
        let stamp = self.state.join(STAMP);
        File::create(&stamp).map_err(io("creating", &stamp))?;
        Ok(())
    }

    /// Takes the state's lock, creating the state directory (and a
    /// suite's sources list) on first use.
    fn lock(&self) -> Result<Flock<File>, Error> {
        std::fs::create_dir_all(&self.state).map_err(io("creating", &self.state))?;
        if let Some(suite) = self.suite {
            let parts = self.state.join("sources.list.d");
            std::fs::create_dir_all(&parts).map_err(io("creating", &parts))?;
            let list = self.state.join("sources.list");
            std::fs::write(&list, suite.sources()).map_err(io("writing", &list))?;
        }
        let path = self.state.join(LOCK);
        let file = File::create(&path).map_err(io("creating", &path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io("locking", &path)(std::io::Error::from(errno)))
    }
}

/// Unpacks the files of `deb` into `into` (`dpkg-deb -x`).
pub fn unpack(deb: &Path, into: &Path) -> Result<(), Error> {
    run(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(into),
        ("dpkg-deb", "dpkg"),
        "delete the .deb if it is truncated and try again",
    )
    .map(drop)
}

/// The newest `<package>_*.deb` in `dir`, by file name: what
/// [`Archive::download`] left there, also in an earlier run.
pub fn newest_deb(dir: &Path, package: &str) -> Result<Option<PathBuf>, Error> {
    let prefix = format!("{package}_");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io("listing", dir))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|name| {
                let name = name.to_string_lossy();
                name.starts_with(&prefix) && name.ends_with(".deb")
            })
        })
        .collect();
    debs.sort();
    Ok(debs.pop())
}

/// An [`Error::Io`] maker for `what` on `path`.
fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// Runs a command, mapping "not installed" and failures to errors.
fn run(
    command: &mut Command,
    (tool, package): (&'static str, &'static str),
    hint: &'static str,
) -> Result<Output, Error> {
    let output = command.output().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::ToolMissing { tool, package },
        _ => Error::Command {
            command: format!("{command:?}"),
            status: "not started".to_string(),
            stderr: source.to_string(),
            hint,
        },
    })?;
    if output.status.success() {
        return Ok(output);
    }
    Err(Error::Command {
        command: format!("{command:?}"),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_architecture_has_its_own_state() {
        let cache = Path::new("/c");
        assert_eq!(
            Archive::new(cache, Arch::Arm64).state,
            Path::new("/c/apt/arm64")
        );
        assert_eq!(
            Archive::new(cache, Arch::X86_64).state,
            Path::new("/c/apt/amd64")
        );
    }

    #[test]
    fn options_point_apt_at_the_private_state_and_one_architecture() {
        let options = Archive::new(Path::new("/c"), Arch::Arm64).options();
        let pairs: Vec<&str> = options
            .chunks(2)
            .map(|pair| {
                assert_eq!(pair[0], "-o");
                pair[1].as_str()
            })
            .collect();
        assert_eq!(
            pairs,
            [
                "Dir::State::Lists=/c/apt/arm64/lists",
                "Dir::Cache=/c/apt/arm64/cache",
                "APT::Architecture=arm64",
                "APT::Architectures=arm64",
                "Acquire::Languages=none",
                "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
            ]
        );
    }

    #[test]
    fn a_suite_has_its_own_state_and_only_its_own_sources() {
        let cache = tempfile::tempdir().unwrap();
        let archive = Archive::of_suite(cache.path(), Arch::X86_64, Suite::Bullseye);
        let state = cache.path().join("apt/amd64-bullseye");
        assert_eq!(archive.state, state);
        let options = archive.options();
        for option in [
            format!(
                "Dir::Etc::SourceList={}",
                state.join("sources.list").display()
            ),
            format!(
                "Dir::Etc::SourceParts={}",
                state.join("sources.list.d").display()
            ),
        ] {
            assert!(options.contains(&option), "{options:?}");
        }
        drop(archive.lock().unwrap());
        let sources = std::fs::read_to_string(state.join("sources.list")).unwrap();
        assert!(sources.contains("/debian bullseye main\n"), "{sources}");
        assert!(
            sources.contains("/debian-security bullseye-security main\n"),
            "{sources}"
        );
        assert!(state.join("sources.list.d").is_dir());
        assert!(
            !Archive::new(cache.path(), Arch::X86_64)
                .options()
                .iter()
                .any(|o| o.starts_with("Dir::Etc"))
        );
    }

    #[test]
    fn lists_are_stale_until_updated() {
        let cache = tempfile::tempdir().unwrap();
        let archive = Archive::new(cache.path(), Arch::Arm64);
        assert!(!archive.fresh());
        drop(archive.lock().unwrap());
        File::create(archive.state.join(STAMP)).unwrap();
        assert!(archive.fresh());
    }

    #[test]
    fn newest_deb_of_the_package_is_found() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "linux-source-6.12_6.12.113-1_all.deb",
            "linux-source-6.12_6.12.117-1_all.deb",
            "linux-source-6.1_6.1.192-1_all.deb",
            "linux-source-6.12_6.12.999-1_all.deb.partial",
        ] {
            File::create(dir.path().join(name)).unwrap();
        }
        assert_eq!(
            newest_deb(dir.path(), "linux-source-6.12").unwrap(),
            Some(dir.path().join("linux-source-6.12_6.12.117-1_all.deb"))
        );
        assert_eq!(newest_deb(dir.path(), "linux-source-6.6").unwrap(), None);
    }

    #[test]
    fn missing_tool_names_its_package() {
        let err = run(
            &mut Command::new("/nonexistent/dpkg-deb"),
            ("dpkg-deb", "dpkg"),
            "",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "dpkg-deb not found: apt-get install dpkg");
    }

    #[test]
    fn failing_command_keeps_its_stderr_and_the_hint() {
        let err = unpack(Path::new("/nonexistent.deb"), Path::new("/nonexistent")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("dpkg-deb"), "{text}");
        assert!(
            text.ends_with("delete the .deb if it is truncated and try again"),
            "{text}"
        );
    }
}
