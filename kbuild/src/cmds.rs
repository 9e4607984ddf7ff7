//! Running a config's PRE_DEFCONFIG_CMDS / POST_DEFCONFIG_CMDS: in a bash
//! that has sourced the config again (so its variables and functions are
//! there, as in build.sh), with kbuild's stand-ins for Android's build/
//! helpers, and with every unknown command skipped and named.

use std::path::Path;
use std::process::Stdio;

use crate::config::BuildConfig;
use crate::error::BuildError;
use crate::session::{self, Action};
pub use crate::stage::Stage;

/// Runs `stage`'s commands with `OUT_DIR` = `out_dir` (absolute) and
/// `make_args` (ARCH=.., toolchain, -j) for the helpers that call make, on
/// `path`. Their stdout and stderr go to this process's stderr. Returns the
/// names of the commands that were skipped because nothing defines them.
pub fn run(
    config: &BuildConfig,
    stage: Stage,
    out_dir: &Path,
    make_args: &[String],
    path: &std::ffi::OsStr,
) -> Result<Vec<String>, BuildError> {
    let warnings = tempfile::NamedTempFile::new().map_err(|e| BuildError::Io {
        what: "create a temporary file for skipped commands".into(),
        source: e,
    })?;
    let action = Action::Run {
        name: stage.variable(),
        out_dir,
        make_args,
    };
    let mut command = session::command(
        &config.location,
        &config.file,
        &action,
        path,
        warnings.path(),
    );
    let status = child_lifetime::bind_to_this_thread(&mut command)
        .stdout(stdout_to_stderr()?)
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| BuildError::Spawn {
            program: "bash".into(),
            source: e,
        })?;
    if !status.success() {
        return Err(BuildError::Cmds {
            stage,
            status,
            file: config.file.clone(),
        });
    }
    session::skipped(warnings.path()).map_err(|e| BuildError::Io {
        what: format!(
            "read the skipped-commands file {}",
            warnings.path().display()
        ),
        source: e,
    })
}

/// A handle on this process's stderr, for a child's stdout: progress and
/// tool output go to stderr, stdout stays for the caller's results.
pub(crate) fn stdout_to_stderr() -> Result<Stdio, BuildError> {
    use std::os::fd::AsFd;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .map_err(|e| BuildError::Io {
            what: "duplicate stderr for a child's output".into(),
            source: e,
        })
}
