//! Build errors found before make runs: each names the config and the fix.

use std::path::Path;

use kbuild::{BuildError, BuildOptions, Location, config};

use super::support;

fn configure(body: &str) -> BuildError {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("common");
    support::write(&source, "build.config", body);
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
fn arm64_is_refused_with_the_arch_named() {
    let err = configure("ARCH=arm64\nDEFCONFIG=gki_defconfig\n");
    assert!(
        matches!(err, BuildError::UnsupportedArch { ref arch, .. } if arch == "arm64"),
        "{err:?}"
    );
    assert!(err.to_string().contains("x86_64 build config"), "{err}");
}

#[test]
fn missing_defconfig_is_refused() {
    let err = configure("ARCH=x86_64\n");
    assert!(matches!(err, BuildError::NoDefconfig { .. }), "{err:?}");
}
