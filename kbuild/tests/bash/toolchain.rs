//! Toolchain choice: ACK prebuilts first, else system clang, else gcc.

use std::ffi::OsString;
use std::path::Path;

use kbuild::{Location, config, toolchain};

use super::support;

/// A PATH holding only fake stand-ins (tests only) for the named programs.
fn fake_path(dir: &Path, programs: &[&str]) -> OsString {
    for p in programs {
        support::write_script(dir, p, "#!/bin/sh\n# fake (tests only)\nexit 0\n");
    }
    dir.as_os_str().to_owned()
}

fn ack_config(root: &Path) -> config::BuildConfig {
    let source = support::ack_like_tree(root);
    config::evaluate(
        &Location::from_source(&source).unwrap(),
        Path::new("build.config.gki.x86_64"),
    )
    .unwrap()
}

#[test]
fn ack_prebuilt_clang_is_used_and_put_first_on_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let bin = root.join("prebuilts/clang/host/linux-x86/clang-r536225/bin");
    fake_path(&bin, &["clang"]);
    let host = fake_path(&root.join("host"), &["gcc"]);
    let tc = toolchain::select(&ack_config(&root), &host);
    assert!(tc.summary.contains("ACK prebuilt clang"), "{}", tc.summary);
    assert_eq!(std::env::split_paths(&tc.path).next().unwrap(), bin);
    assert!(
        tc.make_vars.contains(&"LLVM=1".to_owned()),
        "{:?}",
        tc.make_vars
    );
    assert!(tc.warnings.is_empty(), "{:?}", tc.warnings);
}

#[test]
fn system_clang_is_used_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let host = fake_path(&root.join("host"), &["clang", "gcc", "ccache"]);
    let tc = toolchain::select(&ack_config(&root), &host);
    assert!(
        tc.summary.contains("system clang via ccache"),
        "{}",
        tc.summary
    );
    assert!(
        tc.make_vars.contains(&"CC=ccache clang".to_owned()),
        "{:?}",
        tc.make_vars
    );
    assert!(
        tc.warnings[0].contains("system's clang"),
        "{:?}",
        tc.warnings
    );
}

#[test]
fn gcc_is_the_last_resort_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let host = fake_path(&root.join("host"), &["gcc"]);
    let tc = toolchain::select(&ack_config(&root), &host);
    assert!(tc.summary.contains("system gcc"), "{}", tc.summary);
    assert!(
        !tc.make_vars.iter().any(|v| v.starts_with("LLVM")),
        "{:?}",
        tc.make_vars
    );
    // x86_64-linux-gnu-gcc is not on this PATH, so CROSS_COMPILE goes too.
    assert!(
        !tc.make_vars.iter().any(|v| v.starts_with("CROSS_COMPILE")),
        "{:?}",
        tc.make_vars
    );
    assert_eq!(tc.warnings.len(), 2, "{:?}", tc.warnings);
    assert!(tc.warnings[0].contains("using gcc"), "{:?}", tc.warnings);
}
