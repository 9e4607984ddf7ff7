//! Builds the minimal kernel, and the minimal one for other VM runners, from
//! Debian's linux-source-6.12 with the shipped build.configs: fetches the
//! package (apt-get), needs the build packages listed in kbuild/README.md and
//! takes minutes, so it is ignored by default:
//! `cargo test -p kbuild --test debian_build -- --ignored`.
//! Configuring the minimal arm64 kernel (seconds, with the cross compiler)
//! is ignored the same way, as it downloads the tree too. Configuring the
//! Kleaf form (seconds) runs by default: CI fetches the tree anyway.

use arch::Arch;
use kbuild::{BuildOptions, Location, kconfig, progress, shipped, source};

/// The first build tool missing from PATH, if any.
fn missing_build_tool() -> Option<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["make", "gcc", "flex", "bison", "bc", "apt-get"]
        .into_iter()
        .find(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// Whether a build tool is missing; says so (the test then returns early),
/// or fails the test when PORTRANGE_REQUIRE includes `kbuild`.
fn kbuild_missing() -> bool {
    let missing = missing_build_tool();
    if let Some(tool) = missing {
        let reason = format!("{tool} not found: .ci/install-deps installs the kernel build tools");
        require::skip_or_fail(require::Requirement::Kbuild, &reason);
    }
    missing.is_some()
}

/// Builds the shipped build.config `name` from linux-source-6.12 into its
/// default out dir and returns the resulting `.config` options.
fn build_shipped(name: &str) -> std::collections::BTreeMap<String, String> {
    let cache = qemu::kernel::default_cache_dir();
    let tree = source::fetch_debian("6.12", &cache, &mut progress::stderr).unwrap();
    let config = kbuild::evaluate(
        &Location::from_source(&tree).unwrap(),
        std::path::Path::new(name),
    )
    .unwrap();
    let built = kbuild::build(
        &config,
        &BuildOptions::new(source::out_dir(&cache, &config)),
        &mut progress::stderr,
    )
    .unwrap();
    assert!(built.image.is_file());
    let dot_config = std::fs::read_to_string(built.out_dir.join(".config")).unwrap();
    kconfig::parse(&dot_config)
}

#[test]
#[ignore = "downloads linux-source-6.12 and builds a kernel (minutes): run with --ignored"]
fn minimal_kernel_builds_from_debian_6_12() {
    if kbuild_missing() {
        return;
    }
    let options = build_shipped(shipped::MINIMAL);
    assert_eq!(options["CONFIG_SERIAL_8250_CONSOLE"], "y");
    assert_eq!(options["CONFIG_MPTCP_IPV6"], "y");
}

#[test]
#[ignore = "downloads linux-source-6.12 and builds a kernel (minutes): run with --ignored"]
fn minimal_peers_kernel_builds_from_debian_6_12() {
    if kbuild_missing() {
        return;
    }
    let options = build_shipped(shipped::MINIMAL_PEERS);
    for option in [
        "CONFIG_VIRTIO_PCI",
        "CONFIG_VIRTIO_CONSOLE",
        "CONFIG_NET_9P_VIRTIO",
        "CONFIG_9P_FS",
        "CONFIG_VIRTIO_FS",
        "CONFIG_OVERLAY_FS",
        "CONFIG_MPTCP_IPV6",
    ] {
        assert_eq!(options[option], "y", "{option}");
    }
}

#[test]
#[ignore = "downloads linux-source-6.12 (then seconds): run with --ignored"]
fn minimal_arm64_kernel_configures_from_debian_6_12() {
    let cache = qemu::kernel::default_cache_dir();
    let tree = source::fetch_debian("6.12", &cache, &mut progress::stderr).unwrap();
    let config = kbuild::evaluate(
        &Location::from_source(&tree).unwrap(),
        std::path::Path::new(shipped::minimal(Arch::Arm64)),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let configured = kbuild::configure(
        &config,
        &BuildOptions::new(out.path()),
        &mut progress::stderr,
    )
    .unwrap();
    assert_eq!(configured.arch, Arch::Arm64);
    let dot_config = std::fs::read_to_string(configured.out_dir.join(".config")).unwrap();
    let options = kconfig::parse(&dot_config);
    for option in [
        "CONFIG_ARM64",
        "CONFIG_SERIAL_AMBA_PL011_CONSOLE",
        "CONFIG_SERIAL_8250_PCI",
        "CONFIG_MPTCP_IPV6",
        "CONFIG_IP_SCTP",
    ] {
        assert_eq!(options[option], "y", "{option}");
    }
    assert_eq!(options.get("CONFIG_ACPI").map(String::as_str), None);
}

/// The Kleaf form on a real tree: a defconfig and a fragment that turns off
/// what the cases need, configured (seconds once the tree is cached); the
/// portrange fragment turns those back on and says which it changed, and
/// the fragment's Android-only option, which Debian's tree has no symbol
/// for, is reported as dropped by Kconfig.
#[test]
fn kleaf_form_configures_and_reports_what_the_portrange_fragment_turned_back_on() {
    if kbuild_missing() {
        return;
    }
    let cache = qemu::kernel::default_cache_dir();
    let tree = source::fetch_debian("6.12", &cache, &mut progress::stderr).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let fragment = scratch.path().join("gki-like.fragment");
    std::fs::write(
        &fragment,
        "# CONFIG_IP_SCTP is not set\nCONFIG_SERIAL_8250_RUNTIME_UARTS=0\nCONFIG_ANDROID_VENDOR_HOOKS=y\n",
    )
    .unwrap();
    let config = kbuild::config::kleaf(
        &Location::from_source(&tree).unwrap(),
        Arch::X86_64,
        std::path::Path::new("x86_64_defconfig"),
        &[fragment],
    )
    .unwrap();
    let mut lines = Vec::new();
    let configured = kbuild::configure(
        &config,
        &BuildOptions::new(scratch.path().join("out")),
        &mut |line: &str| lines.push(line.to_owned()),
    )
    .unwrap();
    for changed in [
        "CONFIG_IP_SCTP=y (was n)",
        "CONFIG_SERIAL_8250_RUNTIME_UARTS=4 (was 0)",
    ] {
        assert!(
            configured.overridden.iter().any(|o| o == changed),
            "{changed} not in {:?}",
            configured.overridden
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the portrange fragment changes")
                && l.contains("x86_64_defconfig and its fragments")),
        "{lines:#?}"
    );
    let options =
        kconfig::parse(&std::fs::read_to_string(configured.out_dir.join(".config")).unwrap());
    assert_eq!(options["CONFIG_IP_SCTP"], "y");
    assert!(
        configured
            .dropped
            .iter()
            .any(|d| d == "CONFIG_ANDROID_VENDOR_HOOKS=y (got n)"),
        "{:?}",
        configured.dropped
    );
    let listed =
        std::fs::read_to_string(configured.out_dir.join(kbuild::build::DROPPED_NAME)).unwrap();
    assert!(
        listed.contains("\nCONFIG_ANDROID_VENDOR_HOOKS=y (got n)\n"),
        "{listed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("came out otherwise in the final .config")
                && l.contains("ANDROID_VENDOR_HOOKS")),
        "{lines:#?}"
    );
}
