//! Finding the QEMU binary for an architecture.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use arch::Arch;

use crate::platform::platform;

/// QEMU for the wanted architecture is not installed.
#[derive(Debug, thiserror::Error)]
#[error("{program} not found in PATH ({searched}): apt-get install {package}")]
pub struct NotFound {
    /// The program looked for.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    /// The PATH that was searched.
    pub searched: String,
}

/// Finds QEMU for the host's architecture in `PATH`.
pub fn locate() -> Result<PathBuf, NotFound> {
    locate_for(Arch::host())
}

/// Finds QEMU for `arch` (`qemu-system-x86_64`, `qemu-system-aarch64`) in `PATH`.
pub fn locate_for(arch: Arch) -> Result<PathBuf, NotFound> {
    let platform = platform(arch);
    let path = std::env::var("PATH").unwrap_or_default();
    find_in(&path, platform.qemu).ok_or(NotFound {
        program: platform.qemu,
        package: platform.qemu_package,
        searched: path,
    })
}

fn find_in(path: &str, program: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_executable_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let candidate = dir.path().join("qemu-system-aarch64");
        std::fs::write(&candidate, "").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(find_in(&path, "qemu-system-aarch64"), None);
        std::fs::set_permissions(&candidate, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in(&path, "qemu-system-aarch64"), Some(candidate));
        assert_eq!(find_in(&path, "qemu-system-x86_64"), None);
    }

    #[test]
    fn error_names_the_program_and_its_package() {
        let text = NotFound {
            program: "qemu-system-aarch64",
            package: "qemu-system-arm",
            searched: "/bin".into(),
        }
        .to_string();
        assert_eq!(
            text,
            "qemu-system-aarch64 not found in PATH (/bin): apt-get install qemu-system-arm"
        );
    }
}
