//! Evaluation errors: each names the file and says what to do.

use std::path::Path;

use kbuild::{ConfigError, Location, config};

use super::support;

fn tree() -> (tempfile::TempDir, Location) {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("common");
    std::fs::create_dir(&source).unwrap();
    let location = Location::from_source(&source).unwrap();
    (tmp, location)
}

#[test]
fn missing_file_is_reported_with_where_it_was_looked_for() {
    let (_tmp, location) = tree();
    let err = config::evaluate(&location, Path::new("build.config.nope")).unwrap_err();
    assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("build.config.nope")
            && text.contains("common")
            && text.contains(&kbuild::shipped::configs_dir().display().to_string()),
        "{text}"
    );
}

#[test]
fn bash_failure_carries_its_stderr() {
    let (_tmp, location) = tree();
    support::write(
        &location.source_dir(),
        "build.config",
        ". ${ROOT_DIR}/${KERNEL_DIR}/build.config.missing\nARCH=x86_64\n",
    );
    let err = config::evaluate(&location, Path::new("build.config")).unwrap_err();
    let ConfigError::Bash { stderr, .. } = &err else {
        panic!("expected a bash error, got {err:?}");
    };
    assert!(stderr.contains("build.config.missing"), "{stderr}");
    assert!(err.to_string().contains("fix the build config"), "{err}");
}

#[test]
fn a_failing_command_stops_the_config_as_under_build_sh() {
    let (_tmp, location) = tree();
    support::write(
        &location.source_dir(),
        "build.config",
        "false\nARCH=x86_64\n",
    );
    let err = config::evaluate(&location, Path::new("build.config")).unwrap_err();
    assert!(matches!(err, ConfigError::Bash { .. }), "{err:?}");
}

#[test]
fn arch_unset_is_an_error() {
    let (_tmp, location) = tree();
    support::write(
        &location.source_dir(),
        "build.config",
        "DEFCONFIG=gki_defconfig\n",
    );
    let err = config::evaluate(&location, Path::new("build.config")).unwrap_err();
    assert!(matches!(err, ConfigError::ArchUnset { .. }), "{err:?}");
    assert!(err.to_string().contains("left ARCH unset"), "{err}");
}

#[test]
fn output_of_the_config_does_not_disturb_the_read_back() {
    let (_tmp, location) = tree();
    support::write(
        &location.source_dir(),
        "build.config",
        "printf 'ARCH\\0arm64\\0'\necho hello\nARCH=x86_64\n",
    );
    let cfg = config::evaluate(&location, Path::new("build.config")).unwrap();
    assert_eq!(cfg.arch(), "x86_64");
    assert!(cfg.log.contains("hello"), "{}", cfg.log);
}

#[test]
fn unknown_helper_called_while_sourcing_is_skipped_and_named() {
    let (_tmp, location) = tree();
    support::write(
        &location.source_dir(),
        "build.config",
        "ARCH=x86_64\nandroid_only_helper --flag\nDEFCONFIG=after_the_helper\n",
    );
    let cfg = config::evaluate(&location, Path::new("build.config")).unwrap();
    assert_eq!(cfg.skipped, ["android_only_helper"]);
    assert!(
        cfg.log.contains("skipped `android_only_helper --flag`"),
        "{}",
        cfg.log
    );
    assert_eq!(cfg.defconfig(), Some("after_the_helper"));
}
