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
/// incremental state. Trees are told apart by their directory's name, and
/// two ACK checkouts both have `common`: when the directory was made for
/// another tree (the tree its `Makefile`, written by the kernel's make,
/// includes), this tree gets the same name with `-<CRC-32 of the tree's
/// path>` after it, and the other tree's state is left alone.
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
    let name = format!("{kernel}-{file}{fragments}");
    let tree = canonical(&config.location.root_dir.join(&config.location.kernel_dir));
    let shared = cache.join("build").join(&name);
    match configured_from(&shared) {
        Some(other) if canonical(&other) != tree => {
            let crc = crc32fast::hash(tree.as_os_str().as_encoded_bytes());
            cache.join("build").join(format!("{name}-{crc:08x}"))
        }
        _ => shared,
    }
}

/// The source tree make's output directory `out` was configured from: the
/// directory of the Makefile that `out/Makefile` includes (the kernel's
/// make writes `include <tree>/Makefile` there). `None` for a directory
/// make has not used.
fn configured_from(out: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(out.join("Makefile")).ok()?;
    let included = text.lines().find_map(|l| l.strip_prefix("include "))?;
    Path::new(included.trim()).parent().map(Path::to_owned)
}

/// `path` with symlinks resolved, or as given when it cannot be.
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    /// A build.config as evaluation leaves it, for the tree `root/common`
    /// (its variables do not matter for the output directory).
    fn config_for(root: &Path) -> BuildConfig {
        BuildConfig {
            location: Location::new(root, "common"),
            file: root.join("common/build.config.gki.aarch64"),
            kleaf_fragments: Vec::new(),
            vars: Default::default(),
            skipped: Vec::new(),
            log: String::new(),
        }
    }

    /// Writes `out/Makefile` as the kernel's make does for `tree`.
    fn configure(out: &Path, tree: &Path) {
        fs::create_dir_all(out).unwrap();
        fs::write(
            out.join("Makefile"),
            format!(
                "# Automatically generated by {0}/Makefile: don't edit\ninclude {0}/Makefile\n",
                tree.display()
            ),
        )
        .unwrap();
    }

    #[test]
    fn a_second_checkout_with_the_same_kernel_dir_name_gets_its_own_out_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let (first, second) = (dir.path().join("ack-6.1"), dir.path().join("ack-6.12"));
        for root in [&first, &second] {
            fs::create_dir_all(root.join("common")).unwrap();
        }
        let shared = out_dir(&cache, &config_for(&first));
        assert_eq!(shared, cache.join("build/common-build.config.gki.aarch64"));
        assert_eq!(
            out_dir(&cache, &config_for(&second)),
            shared,
            "no tree has used it yet"
        );

        configure(&shared, &first.join("common"));
        assert_eq!(out_dir(&cache, &config_for(&first)), shared);
        let own = out_dir(&cache, &config_for(&second));
        assert_ne!(own, shared);
        assert!(
            own.to_string_lossy()
                .starts_with(&*shared.to_string_lossy()),
            "{}",
            own.display()
        );
        assert_eq!(
            out_dir(&cache, &config_for(&second)),
            own,
            "the same every time"
        );
    }
}
