//! The KVM probe's verdict, remembered across runs.
//!
//! Whether KVM works depends on the host (its nested virtualisation) and on
//! the QEMU binary, not on the run: on a machine where a KVM boot hangs the
//! probe costs its whole timeout, so its verdict is kept in a file per QEMU
//! binary under the cache directory, valid for as long as the host stays up
//! (same `/proc/sys/kernel/random/boot_id`) and the binary is unchanged.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Verdict;

/// Where the host's boot id is read from; it changes at every boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Remembered probe verdicts in one directory, or none at all.
#[derive(Debug, Clone)]
pub struct Memo {
    dir: Option<PathBuf>,
}

impl Memo {
    /// Verdicts kept under `cache/kvm-probe/`.
    pub fn in_cache(cache: &Path) -> Self {
        Self {
            dir: Some(cache.join("kvm-probe")),
        }
    }

    /// Nothing remembered, nothing stored: every decision probes.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// The verdict stored for `qemu` on this boot of the host, if any.
    pub(super) fn recall(&self, qemu: &Path) -> Option<Verdict> {
        let path = self.file(qemu)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let (identity, verdict) = text.split_once("\nverdict ")?;
        if identity != self::identity(qemu)? {
            return None;
        }
        let kvm = match verdict.trim_end_matches('\n') {
            "ok" => Ok(()),
            other => Err(other.strip_prefix("unusable: ")?.to_string()),
        };
        Some(Verdict {
            kvm,
            remembered_from: Some(path),
        })
    }

    /// Stores `kvm` for `qemu`. Failing to store only costs a later run
    /// its own probe, so errors are not reported.
    pub(super) fn store(&self, qemu: &Path, kvm: &Result<(), String>) {
        let (Some(path), Some(identity)) = (self.file(qemu), identity(qemu)) else {
            return;
        };
        let verdict = match kvm {
            Ok(()) => "ok".to_string(),
            Err(reason) => format!("unusable: {}", reason.replace('\n', " ")),
        };
        let Some(dir) = path.parent() else { return };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            write!(file, "{identity}\nverdict {verdict}\n")?;
            file.persist(&path)?;
            Ok(())
        };
        let _ = write();
    }

    fn file(&self, qemu: &Path) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(qemu.file_name()?))
    }
}

/// This boot of the host and this build of `qemu`, as text.
fn identity(qemu: &Path) -> Option<String> {
    let boot = std::fs::read_to_string(BOOT_ID).ok()?;
    let binary = std::fs::canonicalize(qemu).ok()?;
    let meta = std::fs::metadata(&binary).ok()?;
    Some(format!(
        "boot {}\nqemu {} dev {} inode {} size {} mtime {}.{:09}",
        boot.trim(),
        binary.display(),
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any existing executable stands in for QEMU: only its identity matters.
    fn stand_in_binary(dir: &Path) -> PathBuf {
        let path = dir.join("qemu-system-test");
        std::fs::write(&path, b"binary").unwrap();
        path
    }

    #[test]
    fn a_stored_verdict_is_recalled_with_its_file() {
        let cache = tempfile::tempdir().unwrap();
        let qemu = stand_in_binary(cache.path());
        let memo = Memo::in_cache(cache.path());
        assert_eq!(memo.recall(&qemu), None);
        memo.store(&qemu, &Err("KVM internal error. Suberror: 1".into()));
        let verdict = memo.recall(&qemu).unwrap();
        assert_eq!(verdict.kvm, Err("KVM internal error. Suberror: 1".into()));
        assert_eq!(
            verdict.remembered_from,
            Some(cache.path().join("kvm-probe/qemu-system-test"))
        );
        memo.store(&qemu, &Ok(()));
        assert_eq!(memo.recall(&qemu).unwrap().kvm, Ok(()));
    }

    #[test]
    fn a_changed_binary_is_probed_again() {
        let cache = tempfile::tempdir().unwrap();
        let qemu = stand_in_binary(cache.path());
        let memo = Memo::in_cache(cache.path());
        memo.store(&qemu, &Ok(()));
        std::fs::write(&qemu, b"an upgraded binary").unwrap();
        assert_eq!(memo.recall(&qemu), None);
    }

    #[test]
    fn a_verdict_from_another_boot_is_not_recalled() {
        let cache = tempfile::tempdir().unwrap();
        let qemu = stand_in_binary(cache.path());
        let memo = Memo::in_cache(cache.path());
        memo.store(&qemu, &Ok(()));
        let file = cache.path().join("kvm-probe/qemu-system-test");
        let text = std::fs::read_to_string(&file).unwrap();
        let other_boot = text.replacen("boot ", "boot 00000000-", 1);
        std::fs::write(&file, other_boot).unwrap();
        assert_eq!(memo.recall(&qemu), None);
    }

    #[test]
    fn disabled_memo_remembers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let qemu = stand_in_binary(dir.path());
        let memo = Memo::disabled();
        memo.store(&qemu, &Ok(()));
        assert_eq!(memo.recall(&qemu), None);
    }
}
