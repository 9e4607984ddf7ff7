//! Debian's prebuilt cloud kernels for each architecture, fetched and
//! unpacked through [`debian_archive`].

use std::path::{Path, PathBuf};

use arch::Arch;
use debian_archive::{Archive, Suite};

/// The prebuilt kernel names, each `debian-<series>`.
pub(super) const NAMES: &[&str] = &["debian-5.10", "debian-6.1", "debian-6.12"];

/// Where a series' packages come from: the machine's apt sources
/// (bookworm: 6.1, and 6.12 through bookworm-security), or the sources of a
/// suite of their own (bullseye's 5.10, which predates the option).
fn archive(series: &str, cache: &Path, arch: Arch) -> Archive {
    match series {
        "5.10" => Archive::of_suite(cache, arch, Suite::Bullseye),
        _ => Archive::new(cache, arch),
    }
}

/// Why a prebuilt kernel could not be fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// apt could not list, download or unpack the package.
    #[error(transparent)]
    Archive(#[from] debian_archive::Error),
    /// No package of the wanted series is known to apt.
    #[error("apt-cache knows no package {pattern} for {arch}: check that {sources}")]
    NoPackage {
        /// The package name pattern searched for.
        pattern: String,
        /// The architecture searched.
        arch: Arch,
        /// Which sources should list it.
        sources: &'static str,
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

/// The package name pattern of a series' cloud kernels: the unsigned
/// images, which on arm64 as on amd64 are the plain kernel (the signed
/// ones carry the same kernel with a signature for Secure Boot).
fn flavour(arch: Arch) -> String {
    format!("-cloud-{}-unsigned", arch.debian_name())
}

/// Returns the unpacked package of `name` (series `series`) for `arch`,
/// fetching it into `<cache>/<name>-<debian arch>` on first use.
pub(super) fn fetch(
    name: &str,
    series: &str,
    arch: Arch,
    cache: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Unpacked, FetchError> {
    let dir = cache.join(format!("{name}-{}", arch.debian_name()));
    let root = dir.join("root");
    if root.is_dir() {
        return locate(&root);
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { what, path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let archive = archive(series, cache, arch);
    let flavour = flavour(arch);
    let pattern = format!("^linux-image-{}\\..*{flavour}$", series.replace('.', "\\."));
    let names = archive.search(&pattern, progress)?;
    let newest = newest_first(series, &flavour, &names);
    if newest.is_empty() {
        return Err(FetchError::NoPackage {
            pattern: pattern.clone(),
            arch,
            sources: match series {
                "5.10" => {
                    "deb.debian.org serves bullseye and bullseye-security (the cache's own sources list)"
                }
                _ => "apt's sources include bookworm and bookworm-security",
            },
        });
    }
    // Download and unpack in a private directory, then rename: a concurrent
    // fetch of the same kernel cannot see or break a half-unpacked tree.
    let staging = tempfile::Builder::new()
        .prefix("fetch-")
        .tempdir_in(&dir)
        .map_err(io("creating a directory in", &dir))?;
    let deb = download_newest(&archive, &newest, staging.path(), progress)?;
    progress(&format!("unpacking {} with dpkg-deb", deb.display()));
    let unpacked = staging.path().join("root");
    debian_archive::unpack(&deb, &unpacked)?;
    if let Err(error) = std::fs::rename(&unpacked, &root) {
        if !root.is_dir() {
            return Err(io("renaming to", &root)(error));
        }
    }
    locate(&root)
}

/// How many of the newest packages a fetch tries: a mirror may list a
/// package it does not serve (measured 2026-12-05: bullseye-security's
/// newest three 5.10 kernels, ABI 44 to 46, answered 404 while the lists
/// named them; ABI 43 downloaded).
const TRIES: usize = 8;

/// Downloads the first of `newest` (newest first) that the archive serves,
/// trying at most [`TRIES`]; the first error when none could be had.
fn download_newest(
    archive: &Archive,
    newest: &[String],
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, debian_archive::Error> {
    let mut first_error = None;
    for package in newest.iter().take(TRIES) {
        match archive.download(package, dir, progress) {
            Ok(deb) => return Ok(deb),
            Err(error) => {
                progress(&format!(
                    "{package} could not be fetched, trying an older one: {error}"
                ));
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.expect("newest is not empty"))
}

/// The package names of `series` and `flavour`, highest version first.
fn newest_first(series: &str, flavour: &str, names: &[String]) -> Vec<String> {
    let prefix = format!("linux-image-{series}.");
    let mut matching: Vec<String> = names
        .iter()
        .filter(|name| name.starts_with(&prefix) && name.ends_with(flavour))
        .cloned()
        .collect();
    matching.sort_by_key(|name| std::cmp::Reverse(version_key(name)));
    matching
}

/// The numbers in a package name, in order, to compare versions.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(listing: &[&str]) -> Vec<String> {
        listing.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn newest_of_each_series_is_picked() {
        let listing = names(&[
            "linux-image-6.12.9+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.113+deb12-cloud-amd64-unsigned",
            "linux-image-6.12-cloud-amd64-dbg",
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-48-cloud-amd64-unsigned",
        ]);
        let amd64 = flavour(Arch::X86_64);
        assert_eq!(
            newest_first("6.12", &amd64, &listing)
                .first()
                .map(String::as_str),
            Some("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert_eq!(
            newest_first("6.1", &amd64, &listing)
                .first()
                .map(String::as_str),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert!(newest_first("6.6", &amd64, &listing).is_empty());
        assert_eq!(
            newest_first("6.1", &amd64, &listing)[1..],
            [
                "linux-image-6.1.0-48-cloud-amd64-unsigned",
                "linux-image-6.1.0-9-cloud-amd64-unsigned"
            ]
        );
    }

    #[test]
    fn arm64_takes_the_unsigned_cloud_image_not_the_signed_or_debug_one() {
        let listing = names(&[
            "linux-image-6.1.0-57-cloud-arm64",
            "linux-image-6.1.0-57-cloud-arm64-dbg",
            "linux-image-6.1.0-57-cloud-arm64-unsigned",
            "linux-image-6.1.0-56-cloud-arm64-unsigned",
            "linux-image-6.1.0-58-cloud-amd64-unsigned",
        ]);
        assert_eq!(
            newest_first("6.1", &flavour(Arch::Arm64), &listing)
                .first()
                .map(String::as_str),
            Some("linux-image-6.1.0-57-cloud-arm64-unsigned")
        );
    }

    #[test]
    fn names_map_to_series() {
        assert_eq!(series("debian-6.12"), Some("6.12"));
        assert_eq!(series("debian-6.1"), Some("6.1"));
        assert_eq!(series("debian-5.10"), Some("5.10"));
        assert_eq!(series("debian-6"), None);
    }

    #[test]
    fn incomplete_tree_is_a_layout_error() {
        let root = tempfile::tempdir().unwrap();
        let err = locate(root.path()).unwrap_err();
        assert!(err.to_string().contains("0 boot/vmlinuz-* files"), "{err}");
    }
}
