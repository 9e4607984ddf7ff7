//! The initramfs: a newc cpio (written with the `cpio` crate) holding the
//! program as `/init`, its ELF interpreter and shared libraries, an optional
//! [`Payload`] with the host files it needs, kernel modules under
//! `/modules`, and the guest's arguments.

mod archive;
mod elf;
mod kmod;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::BufWriter;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use arch::Arch;

use crate::layout::{
    ARGS_PATH, CHANNEL_PATH, CMDLINE_PATH, MODULES_DIR, MODULES_MANIFEST, ModuleManifest,
    PAYLOAD_SPEC, PayloadSpec, staged,
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
    /// A program for the guest to run as it runs on the host.
    pub payload: Option<Payload>,
    /// The kernel's `lib/modules/<release>` directory, if it has one.
    pub modules_dir: Option<PathBuf>,
    /// Kernel modules to pack by name, with their dependencies.
    pub modules: Vec<String>,
    /// The argument vector the guest reads with [`crate::guest::Guest::args`].
    pub guest_args: Vec<String>,
    /// The kernel command line the host passes, which the guest finds in
    /// `/proc/cmdline` or fails its setup.
    pub command_line: String,
}

/// A program for the guest to run as it runs on the host: at its own
/// path, in its working directory, with the environment given, among the
/// host files it needs ([`crate::guest::Guest::run_payload`] runs it).
///
/// Every host path is absolute. The program, the other executables and
/// the files are packed under their own paths, and the guest binds each
/// top-most of them (the files, the executables' directories) onto the
/// same path read-only, after it mounted its file systems: a path under
/// `/tmp` is there too, and nothing the payload writes can reach the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The host executable, packed with its ELF interpreter and shared
    /// libraries.
    pub program: PathBuf,
    /// More host executables the program runs, packed the same way.
    pub executables: Vec<PathBuf>,
    /// Host files, directories and symbolic links, each listed (a
    /// directory brings none of its entries along).
    pub files: Vec<PathBuf>,
    /// The program's whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// Its working directory.
    pub cwd: PathBuf,
}

impl Payload {
    /// `program` alone, with an empty environment, in `/`.
    pub fn program(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            executables: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/"),
        }
    }
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
    /// A payload path is relative, or would hide the guest's own files.
    #[error(
        "payload path {} is not usable: paths must be absolute, and none may be / or lie under /portrange (the guest's own files)", path.display()
    )]
    BadPath {
        /// The path.
        path: PathBuf,
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
    // Guest path -> (host path, permission bits) of every regular file.
    let mut files = BTreeMap::new();
    files.insert("/init".to_owned(), (contents.init.clone(), EXEC_MODE));
    for (guest, host) in elf::runtime_files(&contents.init, contents.arch)? {
        files.insert(guest, (host, EXEC_MODE));
    }
    let mut tree = Vec::new();
    let spec = match &contents.payload {
        Some(payload) => {
            let spec = spec(payload)?;
            let place = |host: &Path| match spec.roots.iter().any(|root| host.starts_with(root)) {
                true => staged(host),
                false => host.to_path_buf(),
            };
            for program in std::iter::once(&payload.program).chain(&payload.executables) {
                files.insert(text(&place(program)), (program.clone(), EXEC_MODE));
                for (_, host) in elf::runtime_files(program, contents.arch)? {
                    files.insert(text(&place(&host)), (host, EXEC_MODE));
                }
            }
            for host in &payload.files {
                tree.push((text(&place(host)), host));
            }
            Some(spec)
        }
        None => None,
    };
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
    for (guest, (host, mode)) in &files {
        archive
            .file(guest, *mode, &read(host)?)
            .map_err(write_error)?;
    }
    for (guest, host) in tree {
        let metadata = std::fs::symlink_metadata(host).map_err(read_error(host))?;
        let mode = metadata.permissions().mode() & 0o7777;
        if metadata.is_dir() {
            archive.dir(&guest)
        } else if metadata.is_symlink() {
            let target = std::fs::read_link(host).map_err(read_error(host))?;
            archive.symlink(&guest, target.as_os_str().as_bytes())
        } else {
            archive.file(&guest, mode, &read(host)?)
        }
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
    archive
        .file(CMDLINE_PATH, FILE_MODE, contents.command_line.as_bytes())
        .map_err(write_error)?;
    let args_json = serde_json::to_vec(&contents.guest_args).expect("strings serialize");
    archive
        .file(ARGS_PATH, FILE_MODE, &args_json)
        .map_err(write_error)?;
    if let Some(spec) = spec {
        let spec_json = serde_json::to_vec(&spec).expect("payload specs serialize");
        archive
            .file(PAYLOAD_SPEC, FILE_MODE, &spec_json)
            .map_err(write_error)?;
    }
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

/// The guest's instructions for `payload`: its roots are the top-most of
/// its files and its executables' directories.
fn spec(payload: &Payload) -> Result<PayloadSpec, Error> {
    let mut candidates: Vec<PathBuf> = payload.files.clone();
    for program in std::iter::once(&payload.program).chain(&payload.executables) {
        candidates.push(program.parent().unwrap_or(Path::new("/")).to_path_buf());
    }
    // A root is bound over its path in the guest: never over / or the
    // guest's own files.
    let relative = candidates
        .iter()
        .chain([&payload.program, &payload.cwd])
        .find(|path| !path.is_absolute());
    let hiding = candidates
        .iter()
        .find(|path| *path == Path::new("/") || path.starts_with("/portrange"));
    if let Some(bad) = relative.or(hiding) {
        return Err(Error::BadPath { path: bad.clone() });
    }
    candidates.sort();
    let mut roots: Vec<PathBuf> = Vec::new();
    for path in candidates {
        if !roots.iter().any(|root| path.starts_with(root)) {
            roots.push(path);
        }
    }
    Ok(PayloadSpec {
        program: payload.program.clone(),
        env: payload.env.clone(),
        cwd: payload.cwd.clone(),
        roots,
    })
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Read { path, source }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(read_error(path))
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

    /// Every entry of the archive at `path`: name, mode and contents.
    fn entries(path: &Path) -> Vec<(String, u32, Vec<u8>)> {
        let bytes = std::fs::read(path).unwrap();
        let mut rest = &bytes[..];
        let mut found = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                return found;
            }
            let (name, mode) = (reader.entry().name().to_owned(), reader.entry().mode());
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
            found.push((name, mode, data));
            rest = reader.finish().unwrap();
        }
    }

    #[test]
    fn a_payload_is_staged_under_its_host_paths_with_its_instructions() {
        let dir = tempfile::tempdir().unwrap();
        let package = dir.path().join("package");
        std::fs::create_dir_all(package.join("data")).unwrap();
        std::fs::write(package.join("data/fixture.txt"), "fixture").unwrap();
        std::os::unix::fs::symlink("data/fixture.txt", package.join("link")).unwrap();
        let exe = std::env::current_exe().unwrap();
        let payload = Payload {
            files: ["", "data", "data/fixture.txt", "link"]
                .map(|name| package.join(name))
                .to_vec(),
            env: vec![("GREETING".into(), "hello".into())],
            cwd: package.clone(),
            ..Payload::program(&exe)
        };
        let out = dir.path().join("initramfs.cpio");
        let contents = Contents {
            init: exe.clone(),
            payload: Some(payload),
            ..Contents::default()
        };
        write(&contents, &out).unwrap();
        let entries = entries(&out);
        let find = |path: &Path| {
            let name = staged(path)
                .to_string_lossy()
                .trim_start_matches('/')
                .to_owned();
            entries
                .iter()
                .find(|(found, _, _)| *found == name)
                .unwrap_or_else(|| panic!("no {name}"))
                .clone()
        };
        let (_, mode, data) = find(&package.join("data/fixture.txt"));
        assert_eq!(
            (mode & 0o170000, data.as_slice()),
            (0o100000, &b"fixture"[..])
        );
        let (_, mode, data) = find(&package.join("link"));
        assert_eq!(
            (mode, data.as_slice()),
            (0o120777, &b"data/fixture.txt"[..])
        );
        assert_eq!(find(&exe).1, 0o100755);
        let (_, _, spec) = entries
            .iter()
            .find(|(name, _, _)| name == "portrange/payload.json")
            .unwrap();
        let spec: PayloadSpec = serde_json::from_slice(spec).unwrap();
        let mut roots = vec![exe.parent().unwrap().to_path_buf(), package.clone()];
        roots.sort();
        assert_eq!(spec.roots, roots);
        assert_eq!((spec.program, spec.cwd), (exe, package));
        assert_eq!(spec.env, [("GREETING".into(), "hello".into())]);
    }

    #[test]
    fn a_relative_payload_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let contents = Contents {
            init: std::env::current_exe().unwrap(),
            payload: Some(Payload {
                files: vec!["relative/file".into()],
                ..Payload::program(std::env::current_exe().unwrap())
            }),
            ..Contents::default()
        };
        let err = write(&contents, &dir.path().join("out")).unwrap_err();
        assert!(matches!(err, Error::BadPath { .. }), "{err}");
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
