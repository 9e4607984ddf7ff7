//! Build errors found before make runs: each names the config and the fix.

use std::path::Path;

use kbuild::{BuildError, BuildOptions, Location, config};

use super::support;

fn configure(body: &str) -> BuildError {
    configure_in(body, &[])
}

/// Configures `body` in a tree that also has `files` (empty).
fn configure_in(body: &str, files: &[&str]) -> BuildError {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("common");
    support::write(&source, "build.config", body);
    for file in files {
        support::write(&source, file, "");
    }
    let cfg = config::evaluate(
        &Location::from_source(&source).unwrap(),
        Path::new("build.config"),
    )
    .unwrap();
    kbuild::configure(
        &cfg,
        &BuildOptions::new(tmp.path().join("out")),
        &mut |_| {},
    )
    .unwrap_err()
}

#[test]
fn an_arch_without_a_vm_is_refused_with_the_arch_named() {
    let err = configure("ARCH=riscv\nDEFCONFIG=defconfig\n");
    assert!(
        matches!(err, BuildError::UnsupportedArch { ref arch, .. } if arch == "riscv"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("x86_64 and arm64 kernels only"),
        "{err}"
    );
}

#[test]
fn an_arm64_config_needs_a_tree_with_arm64_in_it() {
    let err = configure_in(
        "ARCH=arm64\nDEFCONFIG=gki_defconfig\n",
        &["Makefile", "Kconfig", "arch/x86/Kconfig"],
    );
    assert!(
        matches!(
            err,
            BuildError::NotAKernelTree {
                missing: "arch/arm64/Kconfig",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_defconfig_is_refused() {
    let err = configure("ARCH=x86_64\n");
    assert!(matches!(err, BuildError::NoDefconfig { .. }), "{err:?}");
}
