//! Choosing the compiler: the ACK prebuilts when the tree has them, else
//! the system's clang (unversioned on PATH, else the newest of Debian's
//! versioned LLVM packages, whose tools live in `/usr/lib/llvm-<N>/bin`),
//! else gcc, and ccache in front when it is installed.
//! For another architecture than the host's, clang targets ARCH by itself
//! and gcc is the cross compiler CROSS_COMPILE names (by default the one
//! [`crate::per_arch`] gives), which must then exist.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use arch::Arch;

use crate::config::BuildConfig;
use crate::error::BuildError;
use crate::per_arch::kernel_arch;

/// Where ACK checkouts keep their clang prebuilts, under ROOT_DIR.
const ACK_CLANG_DIR: &str = "prebuilts/clang/host/linux-x86";

/// Where Debian's versioned LLVM packages (`clang-16`, `lld-16`, `llvm-16`)
/// keep their unversioned tools (`clang`, `ld.lld`, `llvm-ar`, ...): in
/// `llvm-<N>/bin` under this directory. The kernel's `LLVM=1` wants exactly
/// those names, so that directory goes first on PATH.
pub const DEBIAN_LLVM_ROOT: &str = "/usr/lib";

/// The config's variables that go to make as variables (adjusted to the
/// toolchain found).
pub const MAKE_VARIABLES: [&str; 5] = ["LLVM", "CC", "LD", "CROSS_COMPILE", "KCFLAGS"];

/// The config's variables naming ACK's prebuilt directories, put first on
/// make's PATH when they exist.
pub const PREBUILT_VARIABLES: [&str; 2] = ["CLANG_PREBUILT_BIN", "BUILDTOOLS_PREBUILT_BIN"];

/// The toolchain a build uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// PATH for make and the defconfig commands (prebuilt dirs first).
    pub path: OsString,
    /// Make variables from the config, adjusted (`LLVM=1`, `CC=ccache gcc`, ...).
    pub make_vars: Vec<String>,
    /// One line saying what was chosen, for progress output.
    pub summary: String,
    /// Why the config's toolchain could not be used as asked, if so.
    pub warnings: Vec<String>,
}

/// Looks `program` up in `path` like a shell would.
pub fn find_program(program: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The clang prebuilt bin dir: the config's CLANG_PREBUILT_BIN when it
/// exists under ROOT_DIR, else the newest prebuilts/clang/host/linux-x86/clang-*/bin.
fn clang_prebuilt(config: &BuildConfig) -> Option<PathBuf> {
    let root = &config.location.root_dir;
    if let Some(bin) = config.var("CLANG_PREBUILT_BIN").filter(|b| !b.is_empty()) {
        let dir = root.join(bin);
        return dir.join("clang").is_file().then_some(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(ACK_CLANG_DIR))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| {
            bin.parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().starts_with("clang-"))
                && bin.join("clang").is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

/// The newest `llvm-<N>/bin` under `root` holding both `clang` and
/// `ld.lld`, with its N.
fn versioned_llvm(root: &Path) -> Option<(u32, PathBuf)> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e
                .file_name()
                .to_str()?
                .strip_prefix("llvm-")?
                .parse()
                .ok()?;
            let bin = e.path().join("bin");
            (is_executable(&bin.join("clang")) && is_executable(&bin.join("ld.lld")))
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
}

/// Picks the toolchain for `config`, whose kernel is for `arch`, on
/// `host_path`, with Debian's versioned LLVM looked for under `llvm_root`
/// ([`DEBIAN_LLVM_ROOT`]) when no clang is on the path. Fails only when
/// gcc must cross-compile and its cross compiler is missing.
pub fn select(
    config: &BuildConfig,
    arch: Arch,
    host_path: &OsStr,
    llvm_root: &Path,
) -> Result<Toolchain, BuildError> {
    let mut warnings = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let prebuilt = clang_prebuilt(config);
    if let Some(bin) = &prebuilt {
        dirs.push(bin.clone());
    }
    if let Some(bin) = config
        .var("BUILDTOOLS_PREBUILT_BIN")
        .filter(|b| !b.is_empty())
    {
        let dir = config.location.root_dir.join(bin);
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    let var = |name: &str| config.var(name).filter(|v| !v.is_empty());
    let wants_clang = var("LLVM").is_some() || var("CC").is_some_and(|cc| cc.contains("clang"));
    let versioned =
        (wants_clang && prebuilt.is_none() && find_program("clang", host_path).is_none())
            .then(|| versioned_llvm(llvm_root))
            .flatten();
    if let Some((_, bin)) = &versioned {
        dirs.push(bin.clone());
    }
    let mut entries = dirs;
    entries.extend(std::env::split_paths(host_path));
    let path = std::env::join_paths(entries).unwrap_or_else(|_| host_path.to_owned());
    let have_clang = find_program("clang", &path).is_some();
    let mut vars: Vec<(&str, String)> = MAKE_VARIABLES
        .into_iter()
        .filter_map(|n| var(n).map(|v| (n, v.to_owned())))
        .collect();

    let compiler = if wants_clang && have_clang {
        if prebuilt.is_none() {
            let which = versioned.as_ref().map_or(String::new(), |(version, bin)| {
                format!(" {version} ({})", bin.display())
            });
            warnings.push(format!(
                "no ACK clang prebuilts under {}/{ACK_CLANG_DIR}: using the system's clang{which}",
                config.location.root_dir.display()
            ));
        }
        "clang"
    } else {
        if wants_clang {
            warnings.push(format!(
                "the config asks for clang (LLVM/CC) but neither ACK prebuilts under {}/{ACK_CLANG_DIR} nor a system clang exist: using gcc (apt-get install clang-16 lld-16 llvm-16 to follow the config)",
                config.location.root_dir.display()
            ));
            vars.retain(|(n, v)| {
                *n != "LLVM"
                    && !(matches!(*n, "CC" | "LD") && (v.contains("clang") || v.contains("lld")))
            });
        }
        "gcc"
    };
    if compiler == "gcc" && arch != Arch::host() {
        let cross = kernel_arch(arch);
        let prefix = var("CROSS_COMPILE")
            .unwrap_or(cross.cross_compile)
            .to_owned();
        let gcc = format!("{prefix}gcc");
        if find_program(&gcc, &path).is_none() {
            return Err(BuildError::CrossCompilerMissing {
                arch,
                compiler: gcc,
                package: cross.cross_package,
            });
        }
        vars.retain(|(n, _)| *n != "CROSS_COMPILE");
        vars.push(("CROSS_COMPILE", prefix));
    } else if compiler == "gcc" {
        if let Some(prefix) = var("CROSS_COMPILE") {
            if find_program(&format!("{prefix}gcc"), &path).is_none() {
                warnings.push(format!(
                    "{prefix}gcc not on PATH: building with the host's gcc, without CROSS_COMPILE"
                ));
                vars.retain(|(n, _)| *n != "CROSS_COMPILE");
            }
        }
    }

    let ccache = find_program("ccache", &path).is_some();
    if ccache {
        let cc = match vars.iter().find(|(n, _)| *n == "CC") {
            Some((_, cc)) => Some(cc.clone()),
            None if compiler == "clang" && var("LLVM") == Some("1") => Some("clang".into()),
            None if compiler == "gcc" => Some(format!(
                "{}gcc",
                vars.iter()
                    .find(|(n, _)| *n == "CROSS_COMPILE")
                    .map_or("", |(_, v)| v.as_str())
            )),
            None => None,
        };
        if let Some(cc) = cc {
            vars.retain(|(n, _)| *n != "CC");
            vars.push(("CC", format!("ccache {cc}")));
        }
    }
    let make_vars: Vec<String> = vars.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let compiler = match &versioned {
        Some((version, _)) if compiler == "clang" => format!("clang {version}"),
        _ => compiler.to_owned(),
    };
    let summary = format!(
        "toolchain: {}{compiler}{}; make {}",
        if prebuilt.is_some() && compiler == "clang" {
            "ACK prebuilt "
        } else {
            "system "
        },
        if ccache { " via ccache" } else { "" },
        make_vars.join(" ")
    );
    Ok(Toolchain {
        path,
        make_vars,
        summary,
        warnings,
    })
}
