//! Kernel sources and the cache they live in: Debian's linux-source
//! packages, fetched through [`debian_archive`] and unpacked once.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use arch::Arch;
use debian_archive::{Archive, newest_deb};

use crate::config::BuildConfig;
use crate::error::SourceError;

/// The output directory for `config` under `cache`: `build/<kernel dir
/// name>-<config file name>`, so each tree and config keeps its own
/// incremental state.
pub fn out_dir(cache: &Path, config: &BuildConfig) -> PathBuf {
    let kernel = config
        .location
        .kernel_dir
        .file_name()
        .unwrap_or(OsStr::new("kernel"))
        .to_string_lossy();
    let file = config
        .file
        .file_name()
        .unwrap_or(OsStr::new("build.config"))
        .to_string_lossy();
    let fragments: String = config
        .kleaf_fragments
        .iter()
        .filter_map(|f| f.file_name())
        .map(|f| format!("+{}", f.to_string_lossy()))
        .collect();
    cache
        .join("build")
        .join(format!("{kernel}-{file}{fragments}"))
}

/// Debian's linux-source-`version` (`"6.12"`, `"6.1"`) unpacked under
/// `cache/debian/linux-source-<version>`: `apt-get download` (with the
/// project's own package lists, see [`debian_archive`]), `dpkg-deb -x`,
/// then the tarball in /usr/src untarred. A tree already there is reused;
/// a downloaded .deb already there is not fetched again. The package is the
/// same for every architecture (Architecture: all): the host's lists serve.
pub fn fetch_debian(
    version: &str,
    cache: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, SourceError> {
    let package = format!("linux-source-{version}");
    let dir = cache.join("debian");
    let tree = dir.join(&package);
    if tree.join("Makefile").is_file() {
        progress(&format!("using {}", tree.display()));
        return Ok(tree);
    }
    fs::create_dir_all(&dir).map_err(|e| SourceError::Io {
        what: format!("create {}", dir.display()),
        source: e,
    })?;
    let deb = match newest_deb(&dir, &package)? {
        Some(deb) => deb,
        None => Archive::new(cache, Arch::host()).download(&package, &dir, progress)?,
    };
    let staging = dir.join(format!(".unpack-{package}"));
    remove(&staging)?;
    fs::create_dir_all(&staging).map_err(|e| SourceError::Io {
        what: format!("create {}", staging.display()),
        source: e,
    })?;
    progress(&format!("unpacking {}", deb.display()));
    debian_archive::unpack(&deb, &staging.join("pkg"))?;
    let tarball = staging.join(format!("pkg/usr/src/{package}.tar.xz"));
    progress(&format!("untarring {}", tarball.display()));
    run(
        child_lifetime::bind_to_this_thread(&mut Command::new("tar"))
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&staging),
        "tar -xf",
        "install tar and xz-utils",
    )?;
    fs::rename(staging.join(&package), &tree).map_err(|e| SourceError::Io {
        what: format!("move the unpacked tree to {}", tree.display()),
        source: e,
    })?;
    remove(&staging)?;
    progress(&format!("kernel source: {}", tree.display()));
    Ok(tree)
}

fn remove(dir: &Path) -> Result<(), SourceError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SourceError::Io {
            what: format!("remove {}", dir.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn run(cmd: &mut Command, what: &str, hint: &str) -> Result<(), SourceError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd.output().map_err(|e| SourceError::Spawn {
        program: program.clone(),
        source: e,
        hint: hint.to_owned(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Err(SourceError::Failed {
        command: format!("{program} {}", args.join(" ")),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        hint: format!("{what}: {hint}"),
    })
}
