//! Where a kernel tree sits, in build.sh's terms: ROOT_DIR (the checkout
//! that holds the kernel and, in ACK, prebuilts/ and build/) and KERNEL_DIR
//! (the kernel source, relative to ROOT_DIR, e.g. `common`).

use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// ROOT_DIR and KERNEL_DIR for one kernel tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Absolute ROOT_DIR; build.sh runs from here.
    pub root_dir: PathBuf,
    /// KERNEL_DIR, relative to `root_dir` as in ACK (`common`).
    pub kernel_dir: PathBuf,
}

impl Location {
    /// ROOT_DIR and KERNEL_DIR given explicitly (`kernel_dir` relative to
    /// `root_dir`, as ACK's build.config files expect).
    pub fn new(root_dir: impl Into<PathBuf>, kernel_dir: impl Into<PathBuf>) -> Self {
        Self {
            root_dir: root_dir.into(),
            kernel_dir: kernel_dir.into(),
        }
    }

    /// The layout of an ACK checkout, guessed from the kernel source alone:
    /// ROOT_DIR is its parent, KERNEL_DIR its name (`.../android/common`
    /// gives ROOT_DIR `.../android`, KERNEL_DIR `common`).
    pub fn from_source(source: &Path) -> Result<Self, ConfigError> {
        let unusable = |reason: String| ConfigError::SourceDir {
            path: source.to_owned(),
            reason,
        };
        if !source.is_dir() {
            return Err(unusable("it is not a directory".into()));
        }
        // Symlinks are kept (an ACK checkout may link `common` elsewhere;
        // ROOT_DIR is still the checkout); a `..` ending is resolved.
        let absolute = std::path::absolute(source).map_err(|e| unusable(e.to_string()))?;
        let absolute = if absolute.file_name().is_some() {
            absolute
        } else {
            absolute
                .canonicalize()
                .map_err(|e| unusable(e.to_string()))?
        };
        match (absolute.parent(), absolute.file_name()) {
            (Some(root), Some(name)) => Ok(Self::new(root, name)),
            _ => Err(unusable(
                "it has no parent directory to serve as ROOT_DIR".into(),
            )),
        }
    }

    /// The kernel source directory, ROOT_DIR/KERNEL_DIR.
    pub fn source_dir(&self) -> PathBuf {
        self.root_dir.join(&self.kernel_dir)
    }
}
