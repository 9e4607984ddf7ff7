//! Toolchain choice: ACK prebuilts first, else system clang, else gcc.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use arch::Arch;
use kbuild::{BuildError, Location, config, shipped, toolchain};

use super::support;

/// A PATH holding only fake stand-ins (tests only) for the named programs.
fn fake_path(dir: &Path, programs: &[&str]) -> OsString {
    for p in programs {
        support::write_script(dir, p, "#!/bin/sh\n# fake (tests only)\nexit 0\n");
    }
    dir.as_os_str().to_owned()
}

/// A directory with no versioned LLVM under it.
fn no_llvm() -> PathBuf {
    PathBuf::from("/nonexistent/portrange-no-llvm")
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
    let tc = toolchain::select(&ack_config(&root), Arch::X86_64, &host, &no_llvm()).unwrap();
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
    let tc = toolchain::select(&ack_config(&root), Arch::X86_64, &host, &no_llvm()).unwrap();
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
fn debians_newest_complete_versioned_llvm_is_used_when_no_clang_is_on_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let llvm_root = root.join("usr-lib");
    fake_path(&llvm_root.join("llvm-14/bin"), &["clang", "ld.lld"]);
    fake_path(
        &llvm_root.join("llvm-16/bin"),
        &["clang", "ld.lld", "llvm-ar"],
    );
    // Newer, but without its linker: not a toolchain LLVM=1 can use.
    fake_path(&llvm_root.join("llvm-17/bin"), &["clang"]);
    let host = fake_path(&root.join("host"), &["gcc"]);
    let tc = toolchain::select(&ack_config(&root), Arch::X86_64, &host, &llvm_root).unwrap();
    assert_eq!(
        std::env::split_paths(&tc.path).next().unwrap(),
        llvm_root.join("llvm-16/bin")
    );
    assert!(tc.summary.contains("system clang 16"), "{}", tc.summary);
    assert!(
        tc.make_vars.contains(&"LLVM=1".to_owned()),
        "{:?}",
        tc.make_vars
    );
    assert!(tc.warnings[0].contains("llvm-16/bin"), "{:?}", tc.warnings);
}

#[test]
fn gcc_is_the_last_resort_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let host = fake_path(&root.join("host"), &["gcc"]);
    let tc = toolchain::select(&ack_config(&root), Arch::X86_64, &host, &no_llvm()).unwrap();
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

/// The shipped minimal arm64 config (gcc, CROSS_COMPILE=aarch64-linux-gnu-)
/// evaluated for an empty tree.
fn arm64_config(root: &Path) -> config::BuildConfig {
    let source = root.join("linux-source-6.12");
    std::fs::create_dir_all(&source).unwrap();
    config::evaluate(
        &Location::from_source(&source).unwrap(),
        Path::new(shipped::minimal(Arch::Arm64)),
    )
    .unwrap()
}

#[test]
fn arm64_with_gcc_needs_the_cross_compiler_and_names_its_package() {
    if Arch::host() == Arch::Arm64 {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let host = fake_path(&root.join("host"), &["gcc"]);
    let err = toolchain::select(&arm64_config(&root), Arch::Arm64, &host, &no_llvm()).unwrap_err();
    assert!(
        matches!(err, BuildError::CrossCompilerMissing { ref compiler, .. } if compiler == "aarch64-linux-gnu-gcc"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("apt-get install gcc-aarch64-linux-gnu"),
        "{err}"
    );
}

#[test]
fn arm64_with_gcc_cross_compiles_through_ccache() {
    if Arch::host() == Arch::Arm64 {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let host = fake_path(
        &root.join("host"),
        &["gcc", "aarch64-linux-gnu-gcc", "ccache"],
    );
    let tc = toolchain::select(&arm64_config(&root), Arch::Arm64, &host, &no_llvm()).unwrap();
    assert_eq!(
        tc.make_vars,
        [
            "CROSS_COMPILE=aarch64-linux-gnu-",
            "CC=ccache aarch64-linux-gnu-gcc"
        ]
    );
    assert!(tc.warnings.is_empty(), "{:?}", tc.warnings);
}

#[test]
fn arm64_with_clang_needs_no_cross_gcc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let source = root.join("linux-source-6.12");
    support::write(
        &source,
        "build.config.arm64-clang",
        "ARCH=arm64\nLLVM=1\nDEFCONFIG=tinyconfig\n",
    );
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        Path::new("build.config.arm64-clang"),
    )
    .unwrap();
    let host = fake_path(&root.join("host"), &["clang", "gcc"]);
    let tc = toolchain::select(&cfg, Arch::Arm64, &host, &no_llvm()).unwrap();
    assert_eq!(tc.make_vars, ["LLVM=1"]);
    assert!(tc.summary.contains("system clang"), "{}", tc.summary);
}
