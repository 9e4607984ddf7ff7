//! Finding the QEMU binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The program this crate runs.
pub const QEMU: &str = "qemu-system-x86_64";

/// QEMU is not installed.
#[derive(Debug, thiserror::Error)]
#[error("{QEMU} not found in PATH ({searched}): apt-get install qemu-system-x86")]
pub struct NotFound {
    /// The PATH that was searched.
    pub searched: String,
}

/// Finds `qemu-system-x86_64` in `PATH`.
pub fn locate() -> Result<PathBuf, NotFound> {
    let path = std::env::var("PATH").unwrap_or_default();
    find_in(&path).ok_or(NotFound { searched: path })
}

fn find_in(path: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(QEMU))
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
        let candidate = dir.path().join(QEMU);
        std::fs::write(&candidate, "").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(find_in(&path), None);
        std::fs::set_permissions(&candidate, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in(&path), Some(candidate));
    }

    #[test]
    fn error_names_the_package() {
        let text = NotFound {
            searched: "/bin".into(),
        }
        .to_string();
        assert!(text.ends_with("apt-get install qemu-system-x86"), "{text}");
    }
}
