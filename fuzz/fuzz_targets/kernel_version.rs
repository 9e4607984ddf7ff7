//! The kernel image header check and release parser
//! (`qemu/src/kernel/image.rs`), reached through its public entry point
//! `qemu::kernel::resolve` on a file holding the input.
//!
//! `inspect`/`release` are private, so every execution writes the input to a
//! file in a temporary directory (on /dev/shm when it exists) and resolves
//! that path: an open, a read and a few stats per run. The fuzz README
//! names the change that would let the target call the parser directly.
//!
//! Asserts: no panic; the image is accepted exactly when it has "HdrS" at
//! 0x202 within the first 0x8000 bytes (what `validate` reads); an accepted
//! image's release is a substring of the header at the place the version
//! pointer at 0x20e says, holds no space or NUL, and is empty only when the
//! string there is unusable; no modules directory is found for it (there
//! is none beside the scratch image); an arm64 Image header ("ARM\x64" at
//! 0x38) without the x86 one is refused as another architecture's image on
//! an x86_64 host; a refused image's message names the path.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qemu::kernel::{Error, ImageError, resolve};

/// Bytes of the image the parser reads.
const HEADER_BYTES: usize = 0x8000;

struct Scratch {
    _dir: tempfile::TempDir,
    image: PathBuf,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        // boot/ so resolve's look for lib/modules/<release> stays inside.
        std::fs::create_dir(dir.path().join("boot")).expect("boot/");
        let image = dir.path().join("boot/vmlinuz");
        Scratch { _dir: dir, image }
    })
}

fn expected_release(header: &[u8]) -> Option<&str> {
    let pointer = header.get(0x20e..0x210)?;
    let start = usize::from(u16::from_le_bytes([pointer[0], pointer[1]])) + 0x200;
    let text = header.get(start..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    std::str::from_utf8(&text[..end]).ok()
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    std::fs::write(&scratch.image, data).expect("writing the image");
    let spec = scratch.image.to_str().expect("a UTF-8 temp path");
    let header = &data[..data.len().min(HEADER_BYTES)];
    let is_bzimage = header.get(0x202..0x206) == Some(b"HdrS");
    let is_arm64_image = header.get(0x38..0x3c) == Some(b"ARM\x64");
    match resolve(spec, std::path::Path::new("/nonexistent-cache"), &mut |_| {}) {
        Ok(kernel) => {
            assert!(is_bzimage, "accepted an image without HdrS: {kernel:?}");
            assert_eq!(kernel.image, scratch.image);
            // No release (None) where the header's string is unusable.
            let release = kernel.release.unwrap_or_default();
            assert_eq!(release, expected_release(header).unwrap_or(""));
            assert!(!release.contains([' ', '\0']), "{release:?}");
            assert_eq!(kernel.name, "vmlinuz");
            // There is no lib/modules beside the scratch image: whatever the
            // release says, no modules directory may be found for it.
            assert_eq!(kernel.modules, None, "release {release:?}");
        }
        Err(err) => {
            assert!(!is_bzimage, "refused a bzImage header: {err}");
            let other_arch = matches!(err, Error::Image(ImageError::OtherArch { .. }));
            assert_eq!(other_arch, is_arm64_image, "{err:?}");
            assert!(
                other_arch
                    || matches!(
                        err,
                        Error::Image(ImageError::Corrupt { .. } | ImageError::WrongKind { .. })
                    ),
                "unexpected error kind: {err:?}"
            );
            assert!(err.to_string().contains(spec), "{err}");
        }
    }
});
