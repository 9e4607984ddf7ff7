//! Checking that a file is an x86 bzImage before QEMU gets it.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Offset of the boot protocol magic "HdrS".
const HDRS_OFFSET: usize = 0x202;
/// Offset of the 16-bit pointer to the kernel version string (plus 0x200).
const VERSION_POINTER_OFFSET: usize = 0x20e;
/// Bytes read from the image: enough for the header and the version string.
const HEADER_BYTES: u64 = 0x8000;

/// Why an image cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist.
    #[error(
        "kernel image {path} does not exist: pass the path of a bzImage (arch/x86/boot/bzImage or /boot/vmlinuz-*)"
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
    /// The file is a kernel, but not an x86 bzImage.
    #[error("kernel image {path} is {what}, not an x86 bzImage: {hint}")]
    WrongKind {
        /// The path tried.
        path: PathBuf,
        /// What the file looks like.
        what: &'static str,
        /// What to use instead.
        hint: &'static str,
    },
    /// The file is not a kernel at all, or is cut short.
    #[error(
        "kernel image {path} has no x86 boot header (no \"HdrS\" at offset 0x202): the file is corrupt or not a kernel; rebuild it or pass arch/x86/boot/bzImage"
    )]
    Corrupt {
        /// The path tried.
        path: PathBuf,
    },
}

/// Checks `path` and returns the kernel release from its header.
pub(crate) fn validate(path: &Path) -> Result<String, ImageError> {
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
    inspect(&header).map_err(|kind| match kind {
        Some((what, hint)) => ImageError::WrongKind {
            path: path.to_path_buf(),
            what,
            hint,
        },
        None => ImageError::Corrupt {
            path: path.to_path_buf(),
        },
    })
}

/// Reads the release from a bzImage header; on failure says what the bytes
/// look like instead (`None`: nothing recognisable).
fn inspect(header: &[u8]) -> Result<String, Option<(&'static str, &'static str)>> {
    if header.get(HDRS_OFFSET..HDRS_OFFSET + 4) == Some(b"HdrS") {
        return Ok(release(header).unwrap_or_default());
    }
    let at = |offset: usize, magic: &[u8]| header.get(offset..offset + magic.len()) == Some(magic);
    let kind = if at(0, b"\x7fELF") {
        Some((
            "an ELF file (an uncompressed vmlinux?)",
            "pass arch/x86/boot/bzImage from the same build",
        ))
    } else if at(0x38, b"ARM\x64") {
        Some(("an arm64 Image", "this tool boots x86_64 kernels only"))
    } else if at(0x34, b"RSC\x05") {
        Some(("a RISC-V Image", "this tool boots x86_64 kernels only"))
    } else if at(0, b"\x1f\x8b") {
        Some((
            "gzip data (an Image.gz?)",
            "pass an uncompressed x86 bzImage",
        ))
    } else {
        None
    };
    Err(kind)
}

/// The release: the first word of the version string the header points to.
fn release(header: &[u8]) -> Option<String> {
    let pointer = header.get(VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2)?;
    let start = usize::from(u16::from_le_bytes([pointer[0], pointer[1]])) + 0x200;
    let text = header.get(start..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake header with the magic and a version string, for these tests only.
    fn fake_bzimage(version: &str) -> Vec<u8> {
        let mut header = vec![0u8; 0x400];
        header[HDRS_OFFSET..HDRS_OFFSET + 4].copy_from_slice(b"HdrS");
        header[VERSION_POINTER_OFFSET..VERSION_POINTER_OFFSET + 2]
            .copy_from_slice(&0x100u16.to_le_bytes());
        header[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        header
    }

    #[test]
    fn release_comes_from_the_version_string() {
        let header =
            fake_bzimage("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        assert_eq!(
            inspect(&header),
            Ok("6.12.117+deb12-cloud-amd64".to_string())
        );
    }

    #[test]
    fn other_architectures_are_named() {
        let mut arm = vec![0u8; 0x400];
        arm[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(inspect(&arm).unwrap_err().unwrap().0, "an arm64 Image");
        let elf = b"\x7fELF\x02\x01\x01".to_vec();
        assert!(inspect(&elf).unwrap_err().unwrap().0.contains("ELF"));
    }

    #[test]
    fn files_on_disk_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = validate(&dir.path().join("bzImage")).unwrap_err();
        assert!(matches!(missing, ImageError::Missing { .. }));
        let short = dir.path().join("short");
        std::fs::write(&short, b"MZ").unwrap();
        assert!(matches!(
            validate(&short).unwrap_err(),
            ImageError::Corrupt { .. }
        ));
        let good = dir.path().join("good");
        std::fs::write(&good, fake_bzimage("6.1.0-56-cloud-amd64 (x)")).unwrap();
        assert_eq!(validate(&good).unwrap(), "6.1.0-56-cloud-amd64");
    }
}
