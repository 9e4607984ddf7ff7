//! Evaluating a build.config the way Android's build.sh does: bash sources
//! it (and whatever it sources) in a clean environment with ROOT_DIR and
//! KERNEL_DIR set, and the variables are read back from bash itself.
//!
//! Kleaf-era ACK branches (android14 and later) configure `kernel_build`
//! with a defconfig and `defconfig_fragments` instead; [`kleaf`] turns that
//! form into the same [`BuildConfig`], so both take one build path.

mod kleaf;
pub mod readback;

pub use kleaf::{defconfig_arches, kleaf};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use crate::location::Location;

use crate::error::ConfigError;
use crate::session::{self, Action};

/// The variables kbuild reads back, in the order `print` shows them.
pub const VARIABLES: [&str; 14] = [
    "ARCH",
    "DEFCONFIG",
    "FRAGMENT_CONFIG",
    "MAKE_GOALS",
    "LLVM",
    "CC",
    "LD",
    "CROSS_COMPILE",
    "KCFLAGS",
    "BUILDTOOLS_PREBUILT_BIN",
    "CLANG_PREBUILT_BIN",
    "PRE_DEFCONFIG_CMDS",
    "POST_DEFCONFIG_CMDS",
    "KERNEL_DIR",
];

/// A build.config after bash has sourced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// The tree it was evaluated for; `kernel_dir` is the config's own
    /// KERNEL_DIR when it sets one.
    pub location: Location,
    /// The build.config file, absolute; for the Kleaf form ([`kleaf`]),
    /// the defconfig file in the tree.
    pub file: PathBuf,
    /// Fragments given on their own (the Kleaf form's
    /// `defconfig_fragments`), also listed in FRAGMENT_CONFIG; empty for a
    /// build.config.
    pub kleaf_fragments: Vec<PathBuf>,
    /// Every variable of [`VARIABLES`] that bash has set, value exactly as
    /// bash has it (an empty value is set; an absent key is unset).
    pub vars: BTreeMap<String, String>,
    /// Commands the config ran while being sourced that exist nowhere
    /// (Android build/ helpers kbuild does not provide): skipped.
    pub skipped: Vec<String>,
    /// What bash printed on stderr while sourcing: the config's own output
    /// and the warnings for skipped commands.
    pub log: String,
}

impl BuildConfig {
    /// A variable's value as bash has it, `None` when unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A variable's value, `None` when unset or empty.
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.var(name).filter(|v| !v.is_empty())
    }

    /// ARCH (always set: [`evaluate`] refuses a config without it).
    pub fn arch(&self) -> &str {
        self.var("ARCH").unwrap_or_default()
    }

    /// DEFCONFIG, a defconfig file name or a make target such as `tinyconfig`.
    pub fn defconfig(&self) -> Option<&str> {
        self.non_empty("DEFCONFIG")
    }

    /// FRAGMENT_CONFIG split on whitespace, each relative to ROOT_DIR
    /// unless absolute (build.sh works from ROOT_DIR).
    pub fn fragments(&self) -> Vec<PathBuf> {
        self.var("FRAGMENT_CONFIG")
            .unwrap_or_default()
            .split_whitespace()
            .map(|f| self.location.root_dir.join(f))
            .collect()
    }

    /// MAKE_GOALS split on whitespace (newlines included), as build.sh
    /// hands them to make.
    pub fn make_goals(&self) -> Vec<&str> {
        self.var("MAKE_GOALS")
            .unwrap_or_default()
            .split_whitespace()
            .collect()
    }

    /// PRE_DEFCONFIG_CMDS, when set and not empty.
    pub fn pre_defconfig_cmds(&self) -> Option<&str> {
        self.non_empty("PRE_DEFCONFIG_CMDS")
    }

    /// POST_DEFCONFIG_CMDS, when set and not empty.
    pub fn post_defconfig_cmds(&self) -> Option<&str> {
        self.non_empty("POST_DEFCONFIG_CMDS")
    }

    /// The kernel source directory, ROOT_DIR/KERNEL_DIR.
    pub fn source_dir(&self) -> PathBuf {
        self.location.source_dir()
    }
}

/// Finds the build.config: `file` as given when it exists, else relative to
/// the kernel source (so `build.config.gki.x86_64` works from anywhere),
/// else, for a bare file name, among the shipped ones
/// ([`crate::shipped::configs_dir`]).
pub fn locate(location: &Location, file: &Path) -> Result<PathBuf, ConfigError> {
    let mut candidates = vec![file.to_owned(), location.source_dir().join(file)];
    if file.components().count() == 1 {
        candidates.push(crate::shipped::config(&file.to_string_lossy()));
    }
    candidates
        .iter()
        .find(|c| c.is_file())
        .and_then(|c| c.canonicalize().ok())
        .ok_or_else(|| ConfigError::Missing {
            file: file.to_owned(),
            source_dir: location.source_dir(),
            shipped_dir: crate::shipped::configs_dir(),
        })
}

/// Sources `file` (see [`locate`]) with bash the way build.sh does and
/// reads [`VARIABLES`] back.
pub fn evaluate(location: &Location, file: &Path) -> Result<BuildConfig, ConfigError> {
    let file = locate(location, file)?;
    let sourced = source(location, &file)?;
    if sourced.vars.get("ARCH").is_none_or(String::is_empty) {
        return Err(ConfigError::ArchUnset { file });
    }
    let kernel_dir = sourced
        .vars
        .get("KERNEL_DIR")
        .filter(|k| !k.is_empty())
        .map_or_else(|| location.kernel_dir.clone(), PathBuf::from);
    Ok(BuildConfig {
        location: Location::new(location.root_dir.clone(), kernel_dir),
        file,
        kleaf_fragments: Vec::new(),
        vars: sourced.vars,
        skipped: sourced.skipped,
        log: sourced.log,
    })
}

/// What sourcing one file with bash gave: [`BuildConfig`]'s `vars`,
/// `skipped` and `log`.
#[derive(Default)]
struct Sourced {
    vars: BTreeMap<String, String>,
    skipped: Vec<String>,
    log: String,
}

/// Sources `file` (absolute) with bash in build.sh's clean environment for
/// `location` and reads [`VARIABLES`] back, whatever they are.
fn source(location: &Location, file: &Path) -> Result<Sourced, ConfigError> {
    let warnings = tempfile::NamedTempFile::new().map_err(|e| ConfigError::Io {
        what: "create a temporary file for skipped commands".into(),
        source: e,
    })?;
    let mut bash = session::command(
        location,
        file,
        &Action::Print(&VARIABLES),
        &session::host_path(),
        warnings.path(),
    );
    let output = child_lifetime::bind_to_this_thread(&mut bash)
        .output()
        .map_err(|e| ConfigError::Spawn { source: e })?;
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(ConfigError::Bash {
            file: file.to_owned(),
            status: output.status,
            stderr: log,
        });
    }
    let vars = readback::parse(&output.stdout)?;
    let skipped = session::skipped(warnings.path()).map_err(|e| ConfigError::Io {
        what: format!(
            "read the skipped-commands file {}",
            warnings.path().display()
        ),
        source: e,
    })?;
    Ok(Sourced { vars, skipped, log })
}

/// The `--print-config` text: one `NAME=value` per variable of
/// [`VARIABLES`], the value exactly as bash has it (newlines included), and
/// `NAME is not set` for the unset ones.
pub fn print(config: &BuildConfig) -> String {
    let mut text = String::new();
    for name in VARIABLES {
        // Writing to a String cannot fail.
        let _ = match config.var(name) {
            Some(value) => writeln!(text, "{name}={value}"),
            None => writeln!(text, "{name} is not set"),
        };
    }
    text
}
