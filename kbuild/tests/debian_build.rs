//! Builds the minimal kernel from Debian's linux-source-6.12 with the
//! shipped build.config: fetches the package (apt-get), needs the build
//! packages listed in kbuild/README.md and takes minutes, so it is ignored
//! by default: `cargo test -p kbuild --test debian_build -- --ignored`.

use kbuild::{BuildOptions, Location, kconfig, progress, shipped, source};

#[test]
#[ignore = "downloads linux-source-6.12 and builds a kernel (minutes): run with --ignored"]
fn minimal_kernel_builds_from_debian_6_12() {
    let cache = source::cache_dir().unwrap();
    let tree = source::fetch_debian("6.12", &cache, &mut progress::stderr).unwrap();
    let config = kbuild::evaluate(
        &Location::from_source(&tree).unwrap(),
        &shipped::config(shipped::MINIMAL),
    )
    .unwrap();
    let built = kbuild::build(
        &config,
        &BuildOptions::new(source::out_dir(&cache, &config)),
        &mut progress::stderr,
    )
    .unwrap();
    assert!(built.bzimage.is_file());
    let dot_config = std::fs::read_to_string(built.out_dir.join(".config")).unwrap();
    let options = kconfig::parse(&dot_config);
    assert_eq!(options["CONFIG_SERIAL_8250_CONSOLE"], "y");
    assert_eq!(options["CONFIG_MPTCP_IPV6"], "y");
}
