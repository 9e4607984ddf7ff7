//! Debian's prebuilt cloud kernels, fetched with apt and unpacked with dpkg-deb.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The prebuilt kernel names, each `debian-<series>`.
pub(super) const NAMES: &[&str] = &["debian-6.1", "debian-6.12"];
/// Where apt keeps its package lists.
const APT_LISTS: &str = "/var/lib/apt/lists";
/// Suffix of the package names used.
const FLAVOUR: &str = "-cloud-amd64-unsigned";

/// Why a prebuilt kernel could not be fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A tool is not installed.
    #[error("{tool} not found: apt-get install {package}")]
    ToolMissing {
        /// The program that could not be run.
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// apt has never downloaded its package lists.
    #[error("apt has no package lists (no *_Packages* file in {APT_LISTS}): run apt-get update")]
    NoPackageLists,
    /// No package of the wanted series is known to apt.
    #[error(
        "apt-cache knows no package linux-image-{series}.*{FLAVOUR}: run apt-get update, and check that apt's sources include bookworm and bookworm-security"
    )]
    NoPackage {
        /// The kernel series wanted, such as "6.12".
        series: String,
    },
    /// A command ran but failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr.
        stderr: String,
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
    /// The unpacked package does not look like a kernel package.
    #[error("unpacked package {root} has {found}: remove {root} and try again")]
    Layout {
        /// The unpacked tree.
        root: PathBuf,
        /// What was found instead of one vmlinuz and one modules directory.
        found: String,
    },
}

/// The parts of an unpacked kernel package.
#[derive(Debug)]
pub(super) struct Unpacked {
    /// `boot/vmlinuz-<release>`.
    pub image: PathBuf,
    /// `lib/modules/<release>`.
    pub modules: PathBuf,
}

/// The series of a prebuilt name: "debian-6.12" gives "6.12".
pub(super) fn series(spec: &str) -> Option<&str> {
    NAMES.contains(&spec).then(|| &spec["debian-".len()..])
}

/// Returns the unpacked package for `series`, fetching it on first use.
pub(super) fn fetch(
    name: &str,
    series: &str,
    cache: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Unpacked, FetchError> {
    let dir = cache.join(name);
    let root = dir.join("root");
    if root.is_dir() {
        return locate(&root);
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { what, path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let package = newest_package(series)?;
    // Download and unpack in a private directory, then rename: a concurrent
    // fetch of the same kernel cannot see or break a half-unpacked tree.
    let staging = tempfile::Builder::new()
        .prefix("fetch-")
        .tempdir_in(&dir)
        .map_err(io("creating a directory in", &dir))?;
    progress(&format!("fetching {package} with apt-get download"));
    run(
        Command::new("apt-get")
            .arg("download")
            .arg(&package)
            .current_dir(staging.path()),
        ("apt-get", "apt"),
    )?;
    let deb = find_deb(staging.path(), &package)?;
    progress(&format!("unpacking {} with dpkg-deb", deb.display()));
    let unpacked = staging.path().join("root");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked),
        ("dpkg-deb", "dpkg"),
    )?;
    if let Err(error) = std::fs::rename(&unpacked, &root) {
        if !root.is_dir() {
            return Err(io("renaming to", &root)(error));
        }
    }
    locate(&root)
}

/// Asks apt-cache for the newest `linux-image-<series>.*-cloud-amd64-unsigned`.
fn newest_package(series: &str) -> Result<String, FetchError> {
    let has_lists = std::fs::read_dir(APT_LISTS)
        .map(|entries| {
            entries
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false);
    if !has_lists {
        return Err(FetchError::NoPackageLists);
    }
    let pattern = format!("^linux-image-{}\\..*{FLAVOUR}$", series.replace('.', "\\."));
    let output = run(
        Command::new("apt-cache").args(["search", "--names-only", &pattern]),
        ("apt-cache", "apt"),
    )?;
    let listing = String::from_utf8_lossy(&output.stdout);
    pick_newest(series, &listing).ok_or_else(|| FetchError::NoPackage {
        series: series.to_string(),
    })
}

/// Picks the highest version from `apt-cache search` output lines.
fn pick_newest(series: &str, listing: &str) -> Option<String> {
    let prefix = format!("linux-image-{series}.");
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&prefix) && name.ends_with(FLAVOUR))
        .max_by_key(|name| version_key(name))
        .map(str::to_string)
}

/// The numbers in a package name, in order, to compare versions.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

fn find_deb(dir: &Path, package: &str) -> Result<PathBuf, FetchError> {
    let entries = std::fs::read_dir(dir).map_err(|source| FetchError::Io {
        what: "listing",
        path: dir.to_path_buf(),
        source,
    })?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&format!("{package}_")) && name.ends_with(".deb")
        })
        .ok_or_else(|| FetchError::Layout {
            root: dir.to_path_buf(),
            found: format!("no {package}_*.deb after apt-get download"),
        })
}

/// Finds the one vmlinuz and the one modules directory in an unpacked tree.
fn locate(root: &Path) -> Result<Unpacked, FetchError> {
    let list = |dir: &Path, prefix: &str| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
                    .map(|entry| entry.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    let images = list(&root.join("boot"), "vmlinuz-");
    let modules = list(&root.join("lib/modules"), "");
    match (&images[..], &modules[..]) {
        ([image], [modules]) => Ok(Unpacked {
            image: image.clone(),
            modules: modules.clone(),
        }),
        _ => Err(FetchError::Layout {
            root: root.to_path_buf(),
            found: format!(
                "{} boot/vmlinuz-* files and {} lib/modules/* directories, not one of each",
                images.len(),
                modules.len()
            ),
        }),
    }
}

/// Runs a command, mapping "not installed" and failures to errors.
fn run(
    command: &mut Command,
    (tool, package): (&'static str, &'static str),
) -> Result<Output, FetchError> {
    let output = command.output().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FetchError::ToolMissing { tool, package },
        _ => FetchError::Command {
            command: format!("{command:?}"),
            status: "not started".to_string(),
            stderr: source.to_string(),
        },
    })?;
    if output.status.success() {
        return Ok(output);
    }
    Err(FetchError::Command {
        command: format!("{command:?}"),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
linux-image-6.12.9+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12.117+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12.113+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12-cloud-amd64-dbg - Debugging symbols
linux-image-6.1.0-9-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-56-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-48-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
";

    #[test]
    fn newest_of_each_series_is_picked() {
        assert_eq!(
            pick_newest("6.12", LISTING).as_deref(),
            Some("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert_eq!(
            pick_newest("6.1", LISTING).as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert_eq!(pick_newest("6.6", LISTING), None);
    }

    #[test]
    fn names_map_to_series() {
        assert_eq!(series("debian-6.12"), Some("6.12"));
        assert_eq!(series("debian-6.1"), Some("6.1"));
        assert_eq!(series("debian-6"), None);
    }

    #[test]
    fn incomplete_tree_is_a_layout_error() {
        let root = tempfile::tempdir().unwrap();
        let err = locate(root.path()).unwrap_err();
        assert!(err.to_string().contains("0 boot/vmlinuz-* files"), "{err}");
    }
}
