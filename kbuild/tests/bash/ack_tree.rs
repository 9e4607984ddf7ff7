//! A tree laid out like ACK's: the resolved values are those bash gives.

use std::path::Path;
use std::process::Command;

use kbuild::{Location, config};

use super::support;

/// What bash itself says `name` is after sourcing the config, asked
/// directly (not through kbuild), or None when unset.
fn bash_value(root: &Path, file: &str, name: &str) -> Option<String> {
    let out = Command::new("bash")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("ROOT_DIR", root)
        .env("KERNEL_DIR", "common")
        .arg("-c")
        .arg(r#"cd "$ROOT_DIR" && . "$1" && if [[ -v $2 ]]; then printf 'set:%s' "${!2}"; fi"#)
        .arg("direct")
        .arg(root.join("common").join(file))
        .arg(name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.strip_prefix("set:").map(str::to_owned)
}

#[test]
fn gki_x86_64_resolves_to_what_bash_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let source = support::ack_like_tree(&root);
    let location = Location::from_source(&source).unwrap();
    assert_eq!(location, Location::new(&root, "common"));

    let cfg = config::evaluate(&location, Path::new("build.config.gki.x86_64")).unwrap();
    for name in config::VARIABLES {
        assert_eq!(
            cfg.var(name).map(str::to_owned),
            bash_value(&root, "build.config.gki.x86_64", name),
            "{name}"
        );
    }
    assert_eq!(cfg.arch(), "x86_64");
    assert_eq!(cfg.defconfig(), Some("gki_defconfig"));
    assert_eq!(cfg.var("LLVM"), Some("1"));
    assert_eq!(cfg.var("MAKE_GOALS"), Some("\nbzImage\nmodules\n"));
    assert_eq!(cfg.make_goals(), ["bzImage", "modules"]);
    assert_eq!(cfg.var("KCFLAGS"), Some(" -D__ANDROID_COMMON_KERNEL__"));
    assert_eq!(
        cfg.var("CLANG_PREBUILT_BIN"),
        Some("prebuilts/clang/host/linux-x86/clang-r536225/bin")
    );
    assert_eq!(cfg.post_defconfig_cmds(), Some("check_defconfig"));
    assert_eq!(cfg.var("KERNEL_DIR"), Some("common"));
    assert!(cfg.skipped.is_empty());
}

#[test]
fn print_shows_every_variable_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let source = support::ack_like_tree(tmp.path());
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        &source.join("build.config.gki.x86_64"),
    )
    .unwrap();
    assert_eq!(
        config::print(&cfg),
        "ARCH=x86_64
DEFCONFIG=gki_defconfig
FRAGMENT_CONFIG is not set
MAKE_GOALS=
bzImage
modules

LLVM=1
CC is not set
LD is not set
CROSS_COMPILE=x86_64-linux-gnu-
KCFLAGS= -D__ANDROID_COMMON_KERNEL__
BUILDTOOLS_PREBUILT_BIN=build/kernel/build-tools/path/linux-x86
CLANG_PREBUILT_BIN=prebuilts/clang/host/linux-x86/clang-r536225/bin
PRE_DEFCONFIG_CMDS is not set
POST_DEFCONFIG_CMDS=check_defconfig
KERNEL_DIR=common
"
    );
}

#[test]
fn the_config_sees_a_clean_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("common");
    support::write(
        &source,
        "build.config",
        "ARCH=x86_64\nKCFLAGS=\"${HOME:-no-home} ${CARGO:-no-cargo}\"\n",
    );
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        &source.join("build.config"),
    )
    .unwrap();
    assert_eq!(cfg.var("KCFLAGS"), Some("no-home no-cargo"));
}

#[test]
fn shipped_minimal_config_resolves_against_any_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("linux-source-6.12");
    std::fs::create_dir(&source).unwrap();
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        &kbuild::shipped::config(kbuild::shipped::MINIMAL),
    )
    .unwrap();
    assert_eq!(cfg.arch(), "x86_64");
    assert_eq!(cfg.defconfig(), Some("tinyconfig"));
    assert_eq!(cfg.make_goals(), ["bzImage"]);
    assert_eq!(cfg.var("KERNEL_DIR"), Some("linux-source-6.12"));
    assert_eq!(
        cfg.fragments(),
        [kbuild::shipped::configs_dir().join("portrange.minimal.fragment")]
    );
}

#[test]
fn shipped_minimal_aarch64_config_layers_common_arch_and_top_like_ack() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("linux-source-6.12");
    std::fs::create_dir(&source).unwrap();
    let name = kbuild::shipped::minimal(arch::Arch::Arm64);
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        std::path::Path::new(name),
    )
    .unwrap();
    assert_eq!(cfg.arch(), "arm64");
    assert_eq!(cfg.arch().parse(), Ok(arch::Arch::Arm64));
    assert_eq!(cfg.var("CROSS_COMPILE"), Some("aarch64-linux-gnu-"));
    assert_eq!(cfg.var("LLVM"), None);
    assert_eq!(cfg.defconfig(), Some("tinyconfig"));
    assert_eq!(cfg.make_goals(), ["Image"]);
    assert_eq!(
        cfg.fragments(),
        [kbuild::shipped::configs_dir().join("portrange.minimal.fragment")]
    );
    assert!(
        kbuild::print(&cfg).starts_with("ARCH=arm64\nDEFCONFIG=tinyconfig\n"),
        "{}",
        kbuild::print(&cfg)
    );
}

#[test]
fn shipped_peers_config_is_found_by_bare_name_and_adds_its_fragment() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("linux-source-6.12");
    std::fs::create_dir(&source).unwrap();
    let name = kbuild::shipped::MINIMAL_PEERS;
    let cfg = config::evaluate(&Location::from_source(&source).unwrap(), Path::new(name)).unwrap();
    assert_eq!(
        cfg.file,
        kbuild::shipped::config(name).canonicalize().unwrap()
    );
    assert_eq!(cfg.arch(), "x86_64");
    assert_eq!(cfg.defconfig(), Some("tinyconfig"));
    assert_eq!(cfg.make_goals(), ["bzImage"]);
    let dir = kbuild::shipped::configs_dir();
    assert_eq!(
        cfg.fragments(),
        [
            dir.join("portrange.minimal.fragment"),
            dir.join("portrange.peers.fragment")
        ]
    );
}

/// The GKI-traits config of `arch`: the minimal one of the arch with clang,
/// the common GKI-traits fragment and the arch's layer of it.
fn assert_gki_traits_config_layers(arch: arch::Arch, layer: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("linux-source-6.12");
    std::fs::create_dir(&source).unwrap();
    let name = kbuild::shipped::gki_traits(arch);
    let cfg = config::evaluate(&Location::from_source(&source).unwrap(), Path::new(name)).unwrap();
    assert_eq!(cfg.arch().parse(), Ok(arch));
    assert_eq!(cfg.defconfig(), Some("tinyconfig"));
    assert_eq!(cfg.var("LLVM"), Some("1"));
    let dir = kbuild::shipped::configs_dir();
    assert_eq!(
        cfg.fragments(),
        [
            dir.join("portrange.minimal.fragment"),
            dir.join("portrange.gki-traits.fragment"),
            dir.join(layer)
        ]
    );
}

#[test]
fn shipped_gki_traits_config_is_the_minimal_one_with_clang_and_its_fragments() {
    assert_gki_traits_config_layers(arch::Arch::X86_64, "portrange.gki-traits.x86_64.fragment");
}

#[test]
fn shipped_gki_traits_aarch64_config_is_the_minimal_one_with_clang_and_its_fragments() {
    assert_gki_traits_config_layers(arch::Arch::Arm64, "portrange.gki-traits.arm64.fragment");
}

#[test]
fn a_config_in_the_tree_wins_over_a_shipped_one_of_the_same_name() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("common");
    let name = kbuild::shipped::MINIMAL_PEERS;
    support::write(&source, name, "ARCH=x86_64\nDEFCONFIG=gki_defconfig\n");
    let cfg = config::evaluate(&Location::from_source(&source).unwrap(), Path::new(name)).unwrap();
    assert_eq!(cfg.defconfig(), Some("gki_defconfig"));
}

#[test]
fn a_symlinked_kernel_dir_keeps_the_checkout_as_root_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("elsewhere/kernel")).unwrap();
    std::fs::create_dir(root.join("checkout")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere/kernel"), root.join("checkout/common"))
        .unwrap();
    let location = Location::from_source(&root.join("checkout/common")).unwrap();
    assert_eq!(location, Location::new(root.join("checkout"), "common"));
    let parent = Location::from_source(&root.join("elsewhere/kernel/..")).unwrap();
    assert_eq!(parent, Location::new(&root, "elsewhere"));
}
