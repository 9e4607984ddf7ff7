//! The initramfs: a newc cpio (written with the `cpio` crate) holding the
//! program as `/init`, its ELF interpreter and shared libraries, an optional
//! `/payload`, kernel modules under `/modules`, and the guest's arguments.

mod archive;
mod elf;
mod kmod;

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arch::Arch;

use crate::layout::{
    ARGS_PATH, CHANNEL_PATH, MODULES_DIR, MODULES_MANIFEST, ModuleManifest, PAYLOAD_PATH,
};
use archive::Archive;

/// Executable permission bits.
const EXEC_MODE: u32 = 0o755;
/// Plain file permission bits.
const FILE_MODE: u32 = 0o644;
/// Directories the guest mounts file systems on.
const MOUNT_POINTS: &[&str] = &["/proc", "/sys", "/dev", "/tmp", "/run"];

/// What to put into the initramfs.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The guest's architecture: the programs and their libraries must be for it.
    pub arch: Arch,
    /// The result channel's device in the guest (see
    /// [`crate::platform::Platform::channel_device`]).
    pub channel_device: String,
    /// Host executable that becomes `/init`.
    pub init: PathBuf,
    /// Host executable that becomes `/payload`.
    pub payload: Option<PathBuf>,
    /// The kernel's `lib/modules/<release>` directory, if it has one.
    pub modules_dir: Option<PathBuf>,
    /// Kernel modules to pack by name, with their dependencies.
    pub modules: Vec<String>,
    /// The argument vector the guest reads with [`crate::guest::Guest::args`].
    pub guest_args: Vec<String>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The module manifest as packed: load order, built-in and unavailable modules.
    pub modules: ModuleManifest,
    /// Size of the archive in bytes.
    pub size: u64,
}

/// Why an initramfs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be read.
    #[error("reading {path} failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An executable is not an ELF file for the guest's architecture.
    #[error(
        "{path} is not an ELF program for {arch} ({reason}): pass an executable built for {arch} (Rust target {}-unknown-linux-musl or -gnu)", arch.gnu_name()
    )]
    NotElf {
        /// The file.
        path: PathBuf,
        /// The guest's architecture.
        arch: Arch,
        /// What the ELF parser said.
        reason: String,
    },
    /// A shared library (or the ELF interpreter) could not be found.
    #[error("shared library {library} for {arch} needed by {} not found in {searched}: install it, or build the program static (Rust: --target {}-unknown-linux-musl)", needed_by.display(), arch.gnu_name())]
    LibraryMissing {
        /// The guest's architecture.
        arch: Arch,
        /// The DT_NEEDED name.
        library: String,
        /// The object that needs it.
        needed_by: PathBuf,
        /// The directories searched, colon-separated.
        searched: String,
    },
    /// The archive could not be written.
    #[error("writing initramfs {path} failed")]
    Write {
        /// The archive path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the initramfs for `contents` to `out`.
///
/// A requested module that is missing is not an error: it is listed in
/// [`Packed::modules`] and in the archive's manifest for the guest to report.
pub fn write(contents: &Contents, out: &Path) -> Result<Packed, Error> {
    let mut programs = vec![("/init", contents.init.as_path())];
    if let Some(payload) = &contents.payload {
        programs.push((PAYLOAD_PATH, payload.as_path()));
    }
    let mut libraries = std::collections::BTreeMap::new();
    for (_, host) in &programs {
        libraries.extend(elf::runtime_files(host, contents.arch)?);
    }
    let (modules, manifest) = kmod::resolve(contents.modules_dir.as_deref(), &contents.modules);

    let write_error = |source| Error::Write {
        path: out.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(out).map_err(write_error)?;
    let mut archive = Archive::new(BufWriter::new(file));
    for dir in MOUNT_POINTS {
        archive.dir(dir).map_err(write_error)?;
    }
    // The kernel opens /dev/console for /init's standard streams.
    archive
        .char_device("/dev/console", 5, 1)
        .map_err(write_error)?;
    for (guest, host) in programs {
        archive
            .file(guest, EXEC_MODE, &read(host)?)
            .map_err(write_error)?;
    }
    for (guest, host) in &libraries {
        archive
            .file(guest, EXEC_MODE, &read(host)?)
            .map_err(write_error)?;
    }
    archive.dir(MODULES_DIR).map_err(write_error)?;
    for module in &modules {
        let path = format!("{MODULES_DIR}/{}", module.file_name);
        archive
            .file(&path, FILE_MODE, &module.data)
            .map_err(write_error)?;
    }
    let manifest_json = serde_json::to_vec(&manifest).expect("the manifest serializes");
    archive
        .file(MODULES_MANIFEST, FILE_MODE, &manifest_json)
        .map_err(write_error)?;
    archive
        .file(CHANNEL_PATH, FILE_MODE, contents.channel_device.as_bytes())
        .map_err(write_error)?;
    let args_json = serde_json::to_vec(&contents.guest_args).expect("strings serialize");
    archive
        .file(ARGS_PATH, FILE_MODE, &args_json)
        .map_err(write_error)?;
    let writer = archive.finish().map_err(write_error)?;
    let file = writer
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(write_error)?;
    let size = file.metadata().map_err(write_error)?.len();
    Ok(Packed {
        modules: manifest,
        size,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_program_is_packed_with_its_libraries_and_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("initramfs.cpio");
        let contents = Contents {
            init: std::env::current_exe().unwrap(),
            guest_args: vec!["one".into(), "two\nlines".into()],
            modules: vec!["sctp".into()],
            ..Contents::default()
        };
        let packed = write(&contents, &out).unwrap();
        assert_eq!(packed.modules.unavailable[0].name, "sctp");
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(packed.size, bytes.len() as u64);
        let mut rest = &bytes[..];
        let mut names = Vec::new();
        let mut args = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let name = reader.entry().name().to_string();
            if name == "portrange/args" {
                std::io::Read::read_to_end(&mut reader, &mut args).unwrap();
            }
            names.push(name);
            rest = reader.finish().unwrap();
        }
        for wanted in ["init", "dev/console", "proc", "modules/manifest.json"] {
            assert!(
                names.iter().any(|name| name == wanted),
                "{wanted} in {names:?}"
            );
        }
        assert!(
            names.iter().any(|name| name.ends_with("libc.so.6")),
            "{names:?}"
        );
        let args: Vec<String> = serde_json::from_slice(&args).unwrap();
        assert_eq!(args, ["one", "two\nlines"]);
    }

    #[test]
    fn non_elf_init_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("init.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let contents = Contents {
            init: script,
            ..Contents::default()
        };
        let err = write(&contents, &dir.path().join("out")).unwrap_err();
        assert!(matches!(err, Error::NotElf { .. }), "{err}");
    }
}
