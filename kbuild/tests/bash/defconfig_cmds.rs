//! PRE/POST_DEFCONFIG_CMDS: the config's variables and functions are there,
//! check_defconfig means what Android's does, unknown helpers are skipped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kbuild::cmds::{self, Stage};
use kbuild::{BuildError, Location, config};

use super::support;

/// A fake `make` for these tests only: it understands nothing but
/// `savedefconfig`, for which it writes a fixed defconfig into O=.
const FAKE_MAKE: &str = r#"#!/bin/sh
# fake make (tests only): savedefconfig writes a fixed defconfig
for arg; do
    case $arg in O=*) out=${arg#O=} ;; esac
done
printf 'CONFIG_NET=y\nCONFIG_INET=y\n' >"$out/defconfig"
"#;

struct Tree {
    _tmp: tempfile::TempDir,
    source: PathBuf,
    out: PathBuf,
    path: OsString,
}

/// A tree whose build.config ends with `tail`, an output directory, and a
/// PATH with the fake make first.
fn tree(tail: &str) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let source = root.join("common");
    support::write(
        &source,
        "build.config",
        &format!("ARCH=x86_64\nDEFCONFIG=gki_defconfig\n{tail}"),
    );
    let out = root.join("out");
    std::fs::create_dir(&out).unwrap();
    let fake_bin = root.join("fake-bin");
    support::write_script(&fake_bin, "make", FAKE_MAKE);
    let mut dirs = vec![fake_bin];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    let path = std::env::join_paths(dirs).unwrap();
    Tree {
        _tmp: tmp,
        source,
        out,
        path,
    }
}

fn run(tree: &Tree, stage: Stage) -> Result<Vec<String>, BuildError> {
    let cfg = config::evaluate(
        &Location::from_source(&tree.source).unwrap(),
        Path::new("build.config"),
    )
    .unwrap();
    cmds::run(
        &cfg,
        stage,
        &tree.out,
        &["ARCH=x86_64".to_owned()],
        &tree.path,
    )
}

#[test]
fn unknown_helper_is_skipped_named_and_the_rest_runs() {
    let t = tree("POST_DEFCONFIG_CMDS=\"update_kasan_config && touch ${OUT_DIR}/after\"\n");
    let skipped = run(&t, Stage::PostDefconfig).unwrap();
    assert_eq!(skipped, ["update_kasan_config"]);
    assert!(t.out.join("after").exists());
}

#[test]
fn functions_and_variables_of_the_config_are_available() {
    let t =
        tree("mark() { touch \"${OUT_DIR}/$1-${DEFCONFIG}\"; }\nPRE_DEFCONFIG_CMDS=\"mark pre\"\n");
    assert!(run(&t, Stage::PreDefconfig).unwrap().is_empty());
    assert!(t.out.join("pre-gki_defconfig").exists());
}

#[test]
fn a_failing_command_fails_the_stage() {
    let t = tree("PRE_DEFCONFIG_CMDS=\"false\"\n");
    let err = run(&t, Stage::PreDefconfig).unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Cmds {
                stage: Stage::PreDefconfig,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("PRE_DEFCONFIG_CMDS"), "{err}");
}

#[test]
fn check_defconfig_passes_when_savedefconfig_matches() {
    let t = tree("POST_DEFCONFIG_CMDS=\"check_defconfig\"\n");
    support::write(
        &t.source,
        "arch/x86/configs/gki_defconfig",
        "CONFIG_NET=y\nCONFIG_INET=y\n",
    );
    assert!(run(&t, Stage::PostDefconfig).unwrap().is_empty());
}

#[test]
fn check_defconfig_fails_when_savedefconfig_differs() {
    let t = tree("POST_DEFCONFIG_CMDS=\"check_defconfig\"\n");
    support::write(
        &t.source,
        "arch/x86/configs/gki_defconfig",
        "CONFIG_NET=y\n",
    );
    let err = run(&t, Stage::PostDefconfig).unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Cmds {
                stage: Stage::PostDefconfig,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn check_defconfig_fails_without_a_defconfig_file() {
    let t = tree("POST_DEFCONFIG_CMDS=\"check_defconfig\"\n");
    assert!(run(&t, Stage::PostDefconfig).is_err());
}

#[test]
fn make_sees_the_toolchain_of_kbuild_not_the_config_exports() {
    let t = tree(
        "LLVM=1\nCC=clang\nPRE_DEFCONFIG_CMDS='env >\"${OUT_DIR}/env\"; echo \"$LLVM $CC\" >\"${OUT_DIR}/vars\"'\n",
    );
    run(&t, Stage::PreDefconfig).unwrap();
    let env = std::fs::read_to_string(t.out.join("env")).unwrap();
    assert!(
        !env.lines()
            .any(|l| l.starts_with("LLVM=") || l.starts_with("CC=")),
        "{env}"
    );
    assert!(env.lines().any(|l| l == "DEFCONFIG=gki_defconfig"), "{env}");
    let vars = std::fs::read_to_string(t.out.join("vars")).unwrap();
    assert_eq!(vars, "1 clang\n");
}
