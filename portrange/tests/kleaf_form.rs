//! The Kleaf form (`--defconfig NAME --fragment FILE...`) arrives at the
//! same variables as a build.config that says the same, so both take one
//! build path; its problems are named before anything is built.

mod common;

use std::path::Path;

/// A tree laid out as ACK's (`common/` in a root, with a
/// `build.config.common` giving the compiler's KCFLAGS) with a defconfig
/// and a fragment, and a build.config that sources the common file and
/// says what the Kleaf form says.
fn tree(root: &Path) -> std::path::PathBuf {
    let common = root.join("common");
    std::fs::create_dir_all(common.join("arch/x86/configs")).unwrap();
    std::fs::write(
        common.join("arch/x86/configs/gki_defconfig"),
        "CONFIG_NET=y\n",
    )
    .unwrap();
    std::fs::write(common.join("extra.fragment"), "CONFIG_IP_SCTP=y\n").unwrap();
    std::fs::write(
        common.join("build.config.common"),
        "KCFLAGS=\"${KCFLAGS} -D__ANDROID_COMMON_KERNEL__\"\nLLVM=1\nMAKE_GOALS=vmlinux\n",
    )
    .unwrap();
    let fragment = common.join("extra.fragment");
    std::fs::write(
        common.join("build.config.same"),
        format!(
            ". ${{ROOT_DIR}}/${{KERNEL_DIR}}/build.config.common\nunset MAKE_GOALS\n\
             ARCH=x86_64\nDEFCONFIG=gki_defconfig\nFRAGMENT_CONFIG={}\n",
            fragment.display()
        ),
    )
    .unwrap();
    common
}

fn print_config(args: &[&str]) -> String {
    let out = common::portrange(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kleaf_form_resolves_to_the_same_variables_as_the_build_config() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tree(tmp.path());
    let source = source.to_str().unwrap();
    let kleaf = print_config(&[
        "build",
        "--source",
        source,
        "--arch",
        "x86_64",
        "--defconfig",
        "gki_defconfig",
        "--fragment",
        "extra.fragment",
        "--print-config",
    ]);
    let build_config = print_config(&[
        "build",
        "--source",
        source,
        "--build-config",
        "build.config.same",
        "--print-config",
    ]);
    assert_eq!(kleaf, build_config);
    assert!(kleaf.contains("LLVM=1\n"), "{kleaf}");
    assert!(
        kleaf.contains("KCFLAGS= -D__ANDROID_COMMON_KERNEL__\n"),
        "{kleaf}"
    );
}

#[test]
fn kleaf_form_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tree(tmp.path());
    let source = source.to_str().unwrap();
    for (args, expected) in [
        (
            &["--arch", "arm64", "--defconfig", "gki_defconfig"][..],
            "arch/arm64/configs",
        ),
        (
            &[
                "--defconfig",
                "gki_defconfig",
                "--fragment",
                "nope.fragment",
            ][..],
            "nope.fragment not found",
        ),
        (
            &[
                "--defconfig",
                "gki_defconfig",
                "--build-config",
                "build.config.same",
            ][..],
            "cannot be used with",
        ),
        (&["--fragment", "extra.fragment"][..], "--defconfig"),
    ] {
        let mut all = vec!["build", "--source", source];
        all.extend_from_slice(args);
        all.push("--print-config");
        let out = common::portrange(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn without_arch_the_kleaf_form_builds_for_the_architecture_holding_the_defconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tree(tmp.path());
    let arm64 = source.join("arch/arm64/configs");
    std::fs::create_dir_all(&arm64).unwrap();
    std::fs::write(arm64.join("arm64_only_defconfig"), "CONFIG_NET=y\n").unwrap();
    std::fs::write(arm64.join("gki_defconfig"), "CONFIG_NET=y\n").unwrap();
    let source = source.to_str().unwrap();
    let config = print_config(&[
        "build",
        "--source",
        source,
        "--defconfig",
        "arm64_only_defconfig",
        "--print-config",
    ]);
    assert!(config.contains("ARCH=arm64\n"), "{config}");
    // An ACK tree has a gki_defconfig for each architecture: say which.
    let out = common::portrange(&[
        "build",
        "--source",
        source,
        "--defconfig",
        "gki_defconfig",
        "--print-config",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("gki_defconfig is a defconfig of x86_64 and arm64")
            && stderr.contains("pass --arch"),
        "{stderr}"
    );
}
