//! Kernel images: a path to an x86 bzImage or an arm64 Image, or a named
//! Debian prebuilt for an architecture, fetched into a cache directory.

mod debian;
mod image;

use std::path::{Path, PathBuf};

use arch::Arch;

pub use debian::FetchError;
pub use image::{ImageError, PageSize, page_size};

/// A bootable kernel and, when known, its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The image to boot: an x86 bzImage (vmlinuz) or an arm64 Image.
    pub image: PathBuf,
    /// The architecture the image boots on, read from its header.
    pub arch: Arch,
    /// The `lib/modules/<release>` directory that belongs to the image.
    pub modules: Option<PathBuf>,
    /// The kernel release (`uname -r`), read from the image.
    pub release: Option<String>,
    /// A short name for reports: the prebuilt's name or the image file name.
    pub name: String,
}

impl Kernel {
    /// The kernel's configuration file, when it lies where a package or a
    /// build leaves it: `config-<release>` beside a packaged image
    /// (`boot/vmlinuz-<release>`), or `.config` at the top of the build
    /// tree an image was built in (`arch/<arch>/boot/<image>`).
    pub fn config_file(&self) -> Option<PathBuf> {
        let beside = self
            .release
            .as_deref()
            .and_then(|release| Some(self.image.parent()?.join(format!("config-{release}"))));
        let build_tree = self.image.ancestors().nth(4).map(|top| top.join(".config"));
        beside
            .into_iter()
            .chain(build_tree)
            .find(|path| path.is_file())
    }
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
        "kernel {spec:?} is neither a file nor a known prebuilt: give a bzImage or arm64 Image path or one of {}",
        debian::NAMES.join(", ")
    )]
    Unknown {
        /// The spec as given.
        spec: String,
    },
}

/// Resolves `spec` as [`resolve_for`] does, for the host's architecture:
/// the kernels a guest that is this very program (built for the host) can
/// run on. An image for another architecture is an error saying so.
pub fn resolve(spec: &str, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<Kernel, Error> {
    resolve_for(spec, Some(Arch::host()), cache, progress)
}

/// Resolves `spec`: a path to a bzImage/vmlinuz or an arm64 Image, or a
/// prebuilt name (`debian-5.10`, `debian-6.1`, `debian-6.12`) for `arch` (`None`: the
/// host's), fetched into `cache` on first use and reused afterwards without
/// touching the network. A path's architecture is its image's; with
/// `Some(arch)`, an image for another one is an error. `progress` hears
/// about slow steps.
pub fn resolve_for(
    spec: &str,
    arch: Option<Arch>,
    cache: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Kernel, Error> {
    if let Some(series) = debian::series(spec) {
        let arch = arch.unwrap_or_default();
        let unpacked = debian::fetch(spec, series, arch, cache, progress)?;
        let identity = identify(&unpacked.image, arch)?;
        return Ok(Kernel {
            image: unpacked.image,
            arch: identity.arch,
            modules: Some(unpacked.modules),
            release: identity.release,
            name: spec.to_string(),
        });
    }
    let image = PathBuf::from(spec);
    if !image.exists() && !spec.contains('/') {
        return Err(Error::Unknown {
            spec: spec.to_string(),
        });
    }
    let identity = match arch {
        Some(arch) => identify(&image, arch)?,
        None => image::identify(&image)?,
    };
    let modules = identity
        .release
        .as_deref()
        .and_then(|release| modules_beside(&image, release));
    let name = image
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string());
    Ok(Kernel {
        image,
        arch: identity.arch,
        modules,
        release: identity.release,
        name,
    })
}

/// Reads `image` and checks that it is for `wanted`.
fn identify(image: &Path, wanted: Arch) -> Result<image::Identity, ImageError> {
    let identity = image::identify(image)?;
    if identity.arch != wanted {
        return Err(ImageError::OtherArch {
            path: image.to_path_buf(),
            format: identity.format,
            wanted,
            found: identity.arch,
        });
    }
    Ok(identity)
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
    fn the_configuration_is_found_beside_a_package_or_atop_a_build_tree() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = |image: PathBuf| Kernel {
            image,
            arch: Arch::X86_64,
            modules: None,
            release: Some("6.12.0-test".into()),
            name: "test".into(),
        };
        let boot = dir.path().join("root/boot");
        std::fs::create_dir_all(&boot).unwrap();
        let packaged = kernel(boot.join("vmlinuz-6.12.0-test"));
        assert_eq!(packaged.config_file(), None);
        std::fs::write(boot.join("config-6.12.0-test"), "").unwrap();
        assert_eq!(
            packaged.config_file(),
            Some(boot.join("config-6.12.0-test"))
        );
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("arch/x86/boot")).unwrap();
        std::fs::write(out.join(".config"), "").unwrap();
        let built = kernel(out.join("arch/x86/boot/bzImage"));
        assert_eq!(built.config_file(), Some(out.join(".config")));
    }

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
        let err = resolve("debian-4.19", Path::new("/nonexistent"), &mut |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("debian-5.10, debian-6.1, debian-6.12"),
            "{text}"
        );
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

    /// An arm64 Image header (the magic only), written for these tests.
    fn fake_arm64_image(dir: &Path) -> PathBuf {
        let image = dir.join("Image");
        let mut bytes = vec![0u8; 0x1000];
        bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
        std::fs::write(&image, bytes).unwrap();
        image
    }

    #[test]
    fn a_path_has_its_images_arch_unless_another_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let image = fake_arm64_image(dir.path());
        let spec = image.to_str().unwrap();
        let kernel = resolve_for(spec, None, dir.path(), &mut |_| {}).unwrap();
        assert_eq!(kernel.arch, Arch::Arm64);
        assert_eq!(kernel.release, None);
        assert_eq!(
            resolve_for(spec, Some(Arch::Arm64), dir.path(), &mut |_| {})
                .unwrap()
                .arch,
            Arch::Arm64
        );
        let other = Arch::ALL.into_iter().find(|a| *a != Arch::Arm64).unwrap();
        let err = resolve_for(spec, Some(other), dir.path(), &mut |_| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "kernel image {spec} is an arm64 Image (arm64), and this run boots {other} kernels only: \
                 pass an {other} kernel, or ask for arm64 (--arch arm64)"
            )
        );
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
