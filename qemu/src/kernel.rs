//! Kernel images: a path to a bzImage, or a named Debian prebuilt fetched
//! into a cache directory.

mod bzimage;
mod debian;

use std::path::{Path, PathBuf};

pub use bzimage::ImageError;
pub use debian::FetchError;

/// A bootable kernel and, when known, its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The x86 bzImage (vmlinuz) to boot.
    pub image: PathBuf,
    /// The `lib/modules/<release>` directory that belongs to the image.
    pub modules: Option<PathBuf>,
    /// The kernel release (`uname -r`), read from the image header.
    pub release: Option<String>,
    /// A short name for reports: the prebuilt's name or the image file name.
    pub name: String,
}

/// Why a kernel could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image file is not usable.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A named prebuilt could not be fetched or unpacked.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The spec is neither an existing path nor a known name.
    #[error(
        "kernel {spec:?} is neither a file nor a known prebuilt: give a bzImage path or one of {}",
        debian::NAMES.join(", ")
    )]
    Unknown {
        /// The spec as given.
        spec: String,
    },
}

/// Resolves `spec`: a path to a bzImage/vmlinuz, or a prebuilt name
/// (`debian-6.1`, `debian-6.12`) fetched into `cache` on first use and reused
/// afterwards without touching the network. `progress` hears about slow steps.
pub fn resolve(spec: &str, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<Kernel, Error> {
    if let Some(series) = debian::series(spec) {
        let unpacked = debian::fetch(spec, series, cache, progress)?;
        let release = bzimage::validate(&unpacked.image)?;
        return Ok(Kernel {
            image: unpacked.image,
            modules: Some(unpacked.modules),
            release: Some(release),
            name: spec.to_string(),
        });
    }
    let image = PathBuf::from(spec);
    if !image.exists() && !spec.contains('/') {
        return Err(Error::Unknown {
            spec: spec.to_string(),
        });
    }
    let release = bzimage::validate(&image)?;
    let modules = modules_beside(&image, &release);
    let name = image
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string());
    Ok(Kernel {
        image,
        modules,
        release: Some(release),
        name,
    })
}

/// The project's cache directory: `$PORTRANGE_CACHE`, else
/// `$XDG_CACHE_HOME/portrange`, else `~/.cache/portrange` (`/tmp` standing in
/// for a missing `$HOME`). Not created here.
///
/// The one place this policy is written: fetched kernels, kernel sources
/// and build trees, and kept console logs all live under it.
pub fn default_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = var("PORTRANGE_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("portrange");
    }
    let home = var("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("portrange")
}

/// Finds `lib/modules/<release>` for an image laid out like an unpacked
/// package or an installed system (`<root>/boot/vmlinuz-<release>`).
/// The release comes from the image header, so it is outside input: one
/// that is not a single plain path component (`/`, `..`, `a/b`) is refused
/// rather than joined.
fn modules_beside(image: &Path, release: &str) -> Option<PathBuf> {
    let mut components = Path::new(release).components();
    let single = matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    if !single {
        return None;
    }
    let root = image.parent()?.parent()?;
    let dir = root.join("lib/modules").join(release);
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_that_is_a_path_finds_no_modules() {
        for release in ["/", "..", "a/b", "/etc"] {
            assert_eq!(
                modules_beside(Path::new("/x/boot/vmlinuz"), release),
                None,
                "{release}"
            );
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = resolve("debian-5.10", Path::new("/nonexistent"), &mut |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("debian-6.1, debian-6.12"), "{text}");
    }

    #[test]
    fn missing_path_says_so() {
        let err = resolve(
            "/nonexistent/bzImage",
            Path::new("/nonexistent"),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/bzImage"), "{err}");
    }

    #[test]
    fn modules_are_found_beside_an_unpacked_image() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("boot")).unwrap();
        std::fs::create_dir_all(root.path().join("lib/modules/6.1.0-1-cloud-amd64")).unwrap();
        let image = root.path().join("boot/vmlinuz-6.1.0-1-cloud-amd64");
        assert_eq!(
            modules_beside(&image, "6.1.0-1-cloud-amd64"),
            Some(root.path().join("lib/modules/6.1.0-1-cloud-amd64"))
        );
        assert_eq!(modules_beside(&image, "6.12.0"), None);
    }
}
