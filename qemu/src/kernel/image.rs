//! Reading a kernel image before QEMU gets it: which architecture it is
//! for and which release it is.
//!
//! - x86 bzImage: the boot protocol magic "HdrS" at 0x202 and, at 0x20e, a
//!   pointer to the version string.
//! - arm64 Image (`arch/arm64/boot/Image`, Debian's arm64 vmlinuz): the
//!   magic "ARM\x64" at 0x38 (Documentation/arch/arm64/booting.rst). Its
//!   header has no version pointer; the image is not compressed, so the
//!   kernel's banner (`Linux version <release> (...)`) is in it as text.
//!   Its flags (a little-endian u64 at 0x18) give the page size the kernel
//!   was built for in bits 1-2: 1 = 4K, 2 = 16K, 3 = 64K, 0 = unspecified
//!   (images older than Linux 3.17).

use std::io::Read;
use std::path::{Path, PathBuf};

use arch::Arch;

/// Offset of the x86 boot protocol magic "HdrS".
const HDRS_OFFSET: usize = 0x202;
/// Offset of the 16-bit pointer to the x86 kernel version string (plus 0x200).
const VERSION_POINTER_OFFSET: usize = 0x20e;
/// Offset of the arm64 Image magic.
const ARM64_MAGIC_OFFSET: usize = 0x38;
/// Offset of the arm64 Image header's flags.
const ARM64_FLAGS_OFFSET: usize = 0x18;
/// Bytes read first: an x86 header and its version string.
const HEADER_BYTES: u64 = 0x8000;
/// What starts the kernel's banner, followed by the release.
const BANNER: &[u8] = b"Linux version ";

/// Why an image cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist.
    #[error(
        "kernel image {path} does not exist: pass the path of a bzImage (arch/x86/boot/bzImage, /boot/vmlinuz-*) or an arm64 Image (arch/arm64/boot/Image)"
    )]
    Missing {
        /// The path tried.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("reading kernel image {path} failed")]
    Unreadable {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is a kernel, but not in a format QEMU boots directly.
    #[error("kernel image {path} is {what}, which this tool does not boot: {hint}")]
    WrongKind {
        /// The path tried.
        path: PathBuf,
        /// What the file looks like.
        what: &'static str,
        /// What to use instead.
        hint: &'static str,
    },
    /// The image is for another architecture than the one asked for.
    #[error(
        "kernel image {path} is {format} ({found}), and this run boots {wanted} kernels only: pass an {wanted} kernel, or ask for {found} (--arch {found})"
    )]
    OtherArch {
        /// The path tried.
        path: PathBuf,
        /// What the image is, as in "an arm64 Image".
        format: &'static str,
        /// The architecture asked for.
        wanted: Arch,
        /// The image's architecture.
        found: Arch,
    },
    /// The file is not a kernel at all, or is cut short.
    #[error(
        "kernel image {path} has no x86 boot header (\"HdrS\" at 0x202) and no arm64 Image header (\"ARM\\x64\" at 0x38): the file is corrupt or not a kernel; rebuild it or pass arch/x86/boot/bzImage or arch/arm64/boot/Image"
    )]
    Corrupt {
        /// The path tried.
        path: PathBuf,
    },
}

/// The page size (translation granule) an arm64 kernel is built for.
///
/// Every ARMv8 CPU implements the 4K granule; the 16K and 64K ones are
/// optional, so the page size decides which CPUs can boot the kernel.
/// A CPU without the granule stops the kernel in its first instructions,
/// before any console: the boot looks like a silent hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB pages (Debian's arm64 kernels, GKI's default).
    K4,
    /// 16 KiB pages (Debian's `arm64-16k` flavour, Android's 16K GKI builds).
    K16,
    /// 64 KiB pages.
    K64,
}

/// The page size an arm64 Image's header names; `None` for other images
/// and for an unspecified page size.
fn arm64_page_size(header: &[u8]) -> Option<PageSize> {
    arch_of(header).ok().filter(|arch| *arch == Arch::Arm64)?;
    let flags = header.get(ARM64_FLAGS_OFFSET..ARM64_FLAGS_OFFSET + 8)?;
    let flags = u64::from_le_bytes(flags.try_into().ok()?);
    match (flags >> 1) & 0b11 {
        1 => Some(PageSize::K4),
        2 => Some(PageSize::K16),
        3 => Some(PageSize::K64),
        _ => None,
    }
}

/// The page size the arm64 kernel image at `path` is built for (see
/// [`PageSize`]); `None` for an x86 image or an unspecified page size.
pub fn page_size(path: &Path) -> std::io::Result<Option<PageSize>> {
    let mut header = Vec::new();
    std::fs::File::open(path)?
        .take(ARM64_MAGIC_OFFSET as u64 + 4)
        .read_to_end(&mut header)?;
    Ok(arm64_page_size(&header))
}

/// What an image header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The architecture the image boots on.
    pub arch: Arch,
    /// What the image is, as in "an arm64 Image".
    pub format: &'static str,
    /// The release (`uname -r`), when the image names it.
    pub release: Option<String>,
}

/// Checks `path` and returns its architecture and release.
pub(crate) fn identify(path: &Path) -> Result<Identity, ImageError> {
    if !path.exists() {
        return Err(ImageError::Missing {
            path: path.to_path_buf(),
        });
    }
    let unreadable = |source| ImageError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut header = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(HEADER_BYTES).read_to_end(&mut header))
        .map_err(unreadable)?;
    let arch = arch_of(&header).map_err(|kind| match kind {
        Some((what, hint)) => ImageError::WrongKind {
            path: path.to_path_buf(),
            what,
            hint,
        },
        None => ImageError::Corrupt {
            path: path.to_path_buf(),
        },
    })?;
    let (format, release) = match arch {
        Arch::X86_64 => ("an x86 bzImage", bzimage_release(&header)),
        Arch::Arm64 => (
            "an arm64 Image",
            banner_release(&std::fs::read(path).map_err(unreadable)?),
        ),
    };
    Ok(Identity {
        arch,
        format,
        release,
    })
}

/// The architecture of an image from its first bytes; on failure, what
/// the bytes look like instead (`None`: nothing recognisable).
fn arch_of(header: &[u8]) -> Result<Arch, Option<(&'static str, &'static str)>> {
    let at = |offset: usize, magic: &[u8]| header.get(offset..offset + magic.len()) == Some(magic);
    if at(HDRS_OFFSET, b"HdrS") {
        return Ok(Arch::X86_64);
    }
    if at(ARM64_MAGIC_OFFSET, b"ARM\x64") {
        return Ok(Arch::Arm64);
    }
    let kind = if at(0, b"\x7fELF") {
        Some((
            "an ELF file (an uncompressed vmlinux?)",
            "pass arch/x86/boot/bzImage or arch/arm64/boot/Image from the same build",
        ))
    } else if at(0, b"MZ") && at(4, b"zimg") {
        Some((
            "an EFI zboot image (vmlinuz.efi)",
            "pass arch/arm64/boot/Image from the same build",
        ))
    } else if at(0x34, b"RSC\x05") {
        Some((
            "a RISC-V Image",
            "this tool boots x86_64 and arm64 kernels only",
        ))
    } else if at(0, b"\x1f\x8b") {
        Some((
            "gzip data (an Image.gz?)",
            "pass the uncompressed arch/arm64/boot/Image",
        ))
    } else {
        None
    };
    Err(kind)
}

/// The release in a bzImage: the first word of the version string the
/// header points to.
fn bzimage_release(header: &[u8]) -> Option<String> {
    let pointer = header.get(VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2)?;
    let start = usize::from(u16::from_le_bytes([pointer[0], pointer[1]])) + 0x200;
    first_word(header.get(start..)?)
}

/// The release in an uncompressed image: the word after the first
/// "Linux version " that is followed by a digit (format strings such as
/// "Linux version %s" are skipped).
fn banner_release(image: &[u8]) -> Option<String> {
    image
        .windows(BANNER.len() + 1)
        .enumerate()
        .find(|(_, window)| window.starts_with(BANNER) && window[BANNER.len()].is_ascii_digit())
        .and_then(|(at, _)| first_word(&image[at + BANNER.len()..]))
}

/// The text up to the first NUL or space, if it is non-empty UTF-8.
fn first_word(text: &[u8]) -> Option<String> {
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let word = std::str::from_utf8(&text[..end]).ok()?;
    (!word.is_empty()).then(|| word.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage header with the magic and a version string.
    fn fake_bzimage(version: &str) -> Vec<u8> {
        let mut header = vec![0u8; 0x400];
        header[HDRS_OFFSET..HDRS_OFFSET + 4].copy_from_slice(b"HdrS");
        header[VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2]
            .copy_from_slice(&0x100u16.to_le_bytes());
        header[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        header
    }

    /// A fake arm64 Image: the magic, a format string and the banner far
    /// beyond the first [`HEADER_BYTES`].
    fn fake_arm64_image(banner: &str) -> Vec<u8> {
        let mut image = vec![0u8; 0x20000];
        image[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4].copy_from_slice(b"ARM\x64");
        let format = b"Linux version %s (%s)\0";
        image[0x100..0x100 + format.len()].copy_from_slice(format);
        image[0x12000..0x12000 + banner.len()].copy_from_slice(banner.as_bytes());
        image
    }

    #[test]
    fn bzimage_release_comes_from_the_version_string() {
        let header =
            fake_bzimage("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(arch_of(&header), Ok(Arch::X86_64));
        assert_eq!(
            bzimage_release(&header).as_deref(),
            Some("6.12.117+deb12-cloud-amd64")
        );
    }

    #[test]
    fn arm64_image_is_recognised_and_its_banner_read() {
        let image = fake_arm64_image(
            "Linux version 6.1.0-57-cloud-arm64 (debian-kernel@lists.debian.org) (gcc-12)",
        );
        assert_eq!(arch_of(&image[..0x400]), Ok(Arch::Arm64));
        assert_eq!(
            banner_release(&image).as_deref(),
            Some("6.1.0-57-cloud-arm64")
        );
        assert_eq!(banner_release(&fake_arm64_image("")), None);
    }

    #[test]
    fn arm64_page_size_comes_from_the_header_flags() {
        let with_flags = |flags: u64| {
            let mut image = fake_arm64_image("");
            image[ARM64_FLAGS_OFFSET..ARM64_FLAGS_OFFSET + 8].copy_from_slice(&flags.to_le_bytes());
            image
        };
        // Debian's 6.12 arm64-16k vmlinuz has flags 0x0c (16K pages,
        // anywhere in memory); its 4K kernels 0x0a.
        assert_eq!(arm64_page_size(&with_flags(0x0c)), Some(PageSize::K16));
        assert_eq!(arm64_page_size(&with_flags(0x0a)), Some(PageSize::K4));
        assert_eq!(arm64_page_size(&with_flags(0x06)), Some(PageSize::K64));
        assert_eq!(arm64_page_size(&with_flags(0)), None);
        assert_eq!(arm64_page_size(&fake_bzimage("6.12.0 (x)")), None);
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("Image");
        std::fs::write(&image, with_flags(0x0c)).unwrap();
        assert_eq!(page_size(&image).unwrap(), Some(PageSize::K16));
        assert!(page_size(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn other_formats_are_named() {
        let elf = b"\x7fELF\x02\x01\x01".to_vec();
        assert!(arch_of(&elf).unwrap_err().unwrap().0.contains("ELF"));
        let mut zboot = vec![0u8; 0x40];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(b"zimg");
        assert!(arch_of(&zboot).unwrap_err().unwrap().0.contains("zboot"));
        assert!(
            arch_of(b"\x1f\x8b\x08")
                .unwrap_err()
                .unwrap()
                .0
                .contains("gzip")
        );
        assert_eq!(arch_of(b"MZ"), Err(None));
    }

    #[test]
    fn files_on_disk_are_identified() {
        let dir = tempfile::tempdir().unwrap();
        let missing = identify(&dir.path().join("bzImage")).unwrap_err();
        assert!(matches!(missing, ImageError::Missing { .. }));
        let short = dir.path().join("short");
        std::fs::write(&short, b"MZ").unwrap();
        assert!(matches!(
            identify(&short).unwrap_err(),
            ImageError::Corrupt { .. }
        ));
        let bzimage = dir.path().join("bzImage");
        std::fs::write(&bzimage, fake_bzimage("6.1.0-56-cloud-amd64 (x)")).unwrap();
        assert_eq!(
            identify(&bzimage).unwrap(),
            Identity {
                arch: Arch::X86_64,
                format: "an x86 bzImage",
                release: Some("6.1.0-56-cloud-amd64".into())
            }
        );
        let image = dir.path().join("Image");
        std::fs::write(&image, fake_arm64_image("Linux version 6.12.0 #1")).unwrap();
        assert_eq!(
            identify(&image).unwrap(),
            Identity {
                arch: Arch::Arm64,
                format: "an arm64 Image",
                release: Some("6.12.0".into())
            }
        );
    }
}
