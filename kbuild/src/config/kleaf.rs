//! The Kleaf form of a GKI build: what ACK's BUILD.bazel gives
//! `kernel_build` (an architecture, a defconfig and `defconfig_fragments`)
//! as a [`BuildConfig`], with the variables a build.config would set.
//! Kleaf always builds with clang, so `LLVM=1` is set as ACK's
//! build.config.common sets it. A Kleaf `kernel_build` still sources its
//! tree's build config for the environment, so on a tree laid out as ACK's
//! (a `build.config.common` in it) the compiler's variables come from that
//! file: its KCFLAGS (`-D__ANDROID_COMMON_KERNEL__`) and prebuilt paths
//! then match the build.config form's, and one output directory serves
//! both forms without recompiling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arch::Arch;

use super::{BuildConfig, Location, Sourced};
use crate::error::ConfigError;
use crate::toolchain;

/// The file whose compiler variables the Kleaf form takes, in the kernel
/// tree: every ACK branch's build configs source it.
const COMMON_CONFIG: &str = "build.config.common";

/// Whether the Kleaf form keeps `name` from [`COMMON_CONFIG`]: the
/// compiler's make variables and its prebuilt paths, not what chooses the
/// configuration or the goals.
fn compiler_variable(name: &str) -> bool {
    toolchain::MAKE_VARIABLES
        .into_iter()
        .chain(toolchain::PREBUILT_VARIABLES)
        .any(|v| v == name)
}

/// The compiler variables of the tree's [`COMMON_CONFIG`], with what
/// sourcing it printed and skipped; nothing when the tree has none.
fn common_compiler_variables(location: &Location) -> Result<Sourced, ConfigError> {
    let file = location.source_dir().join(COMMON_CONFIG);
    if !file.is_file() {
        return Ok(Sourced::default());
    }
    let mut sourced = super::source(location, &file)?;
    sourced.vars.retain(|name, _| compiler_variable(name));
    Ok(sourced)
}

/// The defconfig's name and file: `name` may be a bare name
/// (`gki_defconfig`, looked up in `arch/<arch>/configs/`) or that file's
/// path, relative to the kernel tree or the current directory.
fn defconfig_file(location: &Location, arch: Arch, name: &Path) -> Result<PathBuf, ConfigError> {
    let configs = location
        .source_dir()
        .join("arch")
        .join(arch.source_dir())
        .join("configs");
    let candidates = [
        configs.join(name),
        location.source_dir().join(name),
        name.to_owned(),
    ];
    let found = candidates
        .iter()
        .find(|c| c.is_file())
        .and_then(|c| c.canonicalize().ok())
        .ok_or_else(|| ConfigError::KleafDefconfig {
            name: name.to_owned(),
            configs: configs.clone(),
            reason: "no such file".into(),
        })?;
    // make takes a defconfig by name from arch/<arch>/configs only.
    let in_tree = configs
        .canonicalize()
        .is_ok_and(|dir| found.parent() == Some(dir.as_path()));
    if !in_tree {
        return Err(ConfigError::KleafDefconfig {
            name: name.to_owned(),
            configs,
            reason: format!(
                "{} is not in that directory, where make looks for defconfigs",
                found.display()
            ),
        });
    }
    Ok(found)
}

/// The architectures whose `arch/<arch>/configs/` hold the defconfig
/// `name` (a bare name or a path, as [`kleaf`] takes it): where no
/// architecture is asked for, the one that holds it is the build's.
pub fn defconfig_arches(location: &Location, name: &Path) -> Vec<Arch> {
    Arch::ALL
        .into_iter()
        .filter(|&arch| defconfig_file(location, arch, name).is_ok())
        .collect()
}

/// Each fragment as given when it exists, else relative to the kernel
/// tree (Kleaf labels name them from there), made absolute.
fn fragment_files(location: &Location, fragments: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    fragments
        .iter()
        .map(|f| {
            [f.clone(), location.source_dir().join(f)]
                .iter()
                .find(|c| c.is_file())
                .and_then(|c| std::path::absolute(c).ok())
                .ok_or_else(|| ConfigError::KleafFragment {
                    fragment: f.clone(),
                    source_dir: location.source_dir(),
                })
        })
        .collect()
}

/// The Kleaf form as a build.config: ARCH from `arch`, DEFCONFIG the
/// defconfig's name, FRAGMENT_CONFIG the fragments (absolute), `LLVM=1`,
/// KERNEL_DIR the tree's, and the compiler variables of the tree's
/// `build.config.common` when it has one. MAKE_GOALS stays unset, so the
/// architecture's image is built.
pub fn kleaf(
    location: &Location,
    arch: Arch,
    defconfig: &Path,
    fragments: &[PathBuf],
) -> Result<BuildConfig, ConfigError> {
    let file = defconfig_file(location, arch, defconfig)?;
    let fragments = fragment_files(location, fragments)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let common = common_compiler_variables(location)?;
    let mut vars: BTreeMap<String, String> = common.vars;
    vars.insert("ARCH".to_owned(), arch.kernel_name().to_owned());
    vars.insert("DEFCONFIG".to_owned(), name);
    let joined: Vec<String> = fragments
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    vars.insert("FRAGMENT_CONFIG".to_owned(), joined.join(" "));
    vars.insert("LLVM".to_owned(), "1".to_owned());
    vars.insert(
        "KERNEL_DIR".to_owned(),
        location.kernel_dir.to_string_lossy().into_owned(),
    );
    Ok(BuildConfig {
        location: location.clone(),
        file,
        kleaf_fragments: fragments,
        vars,
        skipped: common.skipped,
        log: common.log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with only what the Kleaf form looks at.
    fn tree() -> (tempfile::TempDir, Location) {
        let tmp = tempfile::tempdir().unwrap();
        let common = tmp.path().join("common");
        std::fs::create_dir_all(common.join("arch/arm64/configs")).unwrap();
        std::fs::write(
            common.join("arch/arm64/configs/gki_defconfig"),
            "CONFIG_NET=y\n",
        )
        .unwrap();
        std::fs::write(common.join("extra.fragment"), "CONFIG_IP_SCTP=y\n").unwrap();
        let location = Location::from_source(&common).unwrap();
        (tmp, location)
    }

    #[test]
    fn defconfig_and_fragments_become_build_config_variables() {
        let (_tmp, location) = tree();
        let config = kleaf(
            &location,
            Arch::Arm64,
            Path::new("gki_defconfig"),
            &[PathBuf::from("extra.fragment")],
        )
        .unwrap();
        assert_eq!(config.arch(), "arm64");
        assert_eq!(config.defconfig(), Some("gki_defconfig"));
        assert_eq!(config.var("LLVM"), Some("1"));
        assert_eq!(
            config.fragments(),
            [location.source_dir().join("extra.fragment")]
        );
        assert_eq!(config.kleaf_fragments, config.fragments());
        assert!(config.make_goals().is_empty());
        assert!(config.file.ends_with("arch/arm64/configs/gki_defconfig"));
    }

    #[test]
    fn an_ack_trees_build_config_common_gives_the_compiler_variables_only() {
        let (tmp, location) = tree();
        std::fs::write(
            tmp.path().join("common/build.config.constants"),
            "CLANG_VERSION=r487747c\n",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("common/build.config.common"),
            ". ${ROOT_DIR}/${KERNEL_DIR}/build.config.constants\n\
             KCFLAGS=\"${KCFLAGS} -D__ANDROID_COMMON_KERNEL__\"\n\
             CLANG_PREBUILT_BIN=prebuilts/clang/host/linux-x86/clang-${CLANG_VERSION}/bin\n\
             DEFCONFIG=other_defconfig\nMAKE_GOALS=vmlinux\nPOST_DEFCONFIG_CMDS=check_defconfig\n",
        )
        .unwrap();
        let config = kleaf(&location, Arch::Arm64, Path::new("gki_defconfig"), &[]).unwrap();
        assert_eq!(config.var("KCFLAGS"), Some(" -D__ANDROID_COMMON_KERNEL__"));
        assert_eq!(
            config.var("CLANG_PREBUILT_BIN"),
            Some("prebuilts/clang/host/linux-x86/clang-r487747c/bin")
        );
        assert_eq!(config.defconfig(), Some("gki_defconfig"));
        assert!(config.make_goals().is_empty());
        assert_eq!(config.post_defconfig_cmds(), None);
    }

    #[test]
    fn a_tree_without_build_config_common_sets_no_kcflags() {
        let (_tmp, location) = tree();
        let config = kleaf(&location, Arch::Arm64, Path::new("gki_defconfig"), &[]).unwrap();
        assert_eq!(config.var("KCFLAGS"), None);
    }

    #[test]
    fn a_defconfig_path_in_the_configs_directory_is_accepted() {
        let (_tmp, location) = tree();
        let config = kleaf(
            &location,
            Arch::Arm64,
            Path::new("arch/arm64/configs/gki_defconfig"),
            &[],
        )
        .unwrap();
        assert_eq!(config.defconfig(), Some("gki_defconfig"));
    }

    #[test]
    fn a_defconfig_of_another_architecture_or_outside_the_tree_is_refused() {
        let (_tmp, location) = tree();
        let err = kleaf(&location, Arch::X86_64, Path::new("gki_defconfig"), &[]).unwrap_err();
        assert!(err.to_string().contains("arch/x86/configs"), "{err}");
        let err = kleaf(&location, Arch::Arm64, Path::new("extra.fragment"), &[]).unwrap_err();
        assert!(err.to_string().contains("where make looks"), "{err}");
    }

    #[test]
    fn the_architectures_holding_a_defconfig_are_found() {
        let (tmp, location) = tree();
        let name = Path::new("gki_defconfig");
        assert_eq!(defconfig_arches(&location, name), [Arch::Arm64]);
        let x86 = tmp.path().join("common/arch/x86/configs");
        std::fs::create_dir_all(&x86).unwrap();
        std::fs::write(x86.join("gki_defconfig"), "CONFIG_NET=y\n").unwrap();
        assert_eq!(
            defconfig_arches(&location, name),
            [Arch::X86_64, Arch::Arm64]
        );
        assert_eq!(
            defconfig_arches(&location, Path::new("arch/arm64/configs/gki_defconfig")),
            [Arch::Arm64]
        );
        assert!(defconfig_arches(&location, Path::new("nope_defconfig")).is_empty());
    }

    #[test]
    fn a_missing_fragment_is_named() {
        let (_tmp, location) = tree();
        let err = kleaf(
            &location,
            Arch::Arm64,
            Path::new("gki_defconfig"),
            &[PathBuf::from("nope.fragment")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope.fragment"), "{err}");
    }
}
