//! The bash process that sources a build.config: one script, every input
//! passed through the environment or the argument list, never spliced into
//! shell text.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use crate::location::Location;

/// The script, a real bash file kept next to this module.
const SCRIPT: &str = include_str!("session.bash");

/// What the session does after sourcing the config.
pub(crate) enum Action<'a> {
    /// Print the named variables back, NUL-separated, on stdout.
    Print(&'a [&'a str]),
    /// Eval the variable `name` (a *_DEFCONFIG_CMDS), with `OUT_DIR` set and
    /// `make_args` handed to the helpers that run make.
    Run {
        /// The variable holding the commands.
        name: &'a str,
        /// Absolute output directory.
        out_dir: &'a Path,
        /// ARCH=.., toolchain variables, -j.
        make_args: &'a [String],
    },
}

/// A bash command in a clean environment (only `PATH`, as `env -i` would
/// leave it plus PATH) that sources `file` from `location` and does `action`.
/// Skipped commands are appended, one per line, to `warnings`.
pub(crate) fn command(
    location: &Location,
    file: &Path,
    action: &Action<'_>,
    path: &OsStr,
    warnings: &Path,
) -> Command {
    let mut cmd = Command::new("bash");
    cmd.env_clear()
        .env("PATH", path)
        .env("ROOT_DIR", &location.root_dir)
        .env("KERNEL_DIR", &location.kernel_dir)
        .env("KBUILD_CONFIG_FILE", file)
        .env("KBUILD_WARNINGS", warnings)
        .arg("-c")
        .arg(SCRIPT)
        .arg("kbuild-session");
    match action {
        Action::Print(names) => {
            cmd.env("KBUILD_ACTION", "print").args(names.iter());
        }
        Action::Run {
            name,
            out_dir,
            make_args,
        } => {
            cmd.env("KBUILD_ACTION", "run")
                .env("KBUILD_RUN", name)
                .env("OUT_DIR", out_dir)
                .args(make_args.iter());
        }
    }
    cmd
}

/// Names of the commands the session skipped, in order, from its warnings file.
pub(crate) fn skipped(warnings: &Path) -> io::Result<Vec<String>> {
    Ok(fs::read_to_string(warnings)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The PATH handed to bash and make: the caller's, or the usual system one.
pub(crate) fn host_path() -> std::ffi::OsString {
    std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}
