//! What a real test suite needs from `cargo test`, one test each. They
//! pass natively (`cargo test -p runner-sample`) and through the cargo
//! runner (`portrange vm --kernel K --`), which
//! `portrange/tests/cargo_runner.rs` checks on two kernels.

use std::path::Path;
use std::process::Command;

/// The value `portrange/tests/cargo_runner.rs` sets on the host.
const GREETING_VARIABLE: &str = "RUNNER_SAMPLE_GREETING";

#[test]
fn fixture_is_read_through_the_manifest_dir() {
    let at_build = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixture.txt");
    let text = std::fs::read_to_string(at_build).expect("the fixture, by its absolute path");
    assert_eq!(text, "fixture line one\nfixture line two\n");
    let at_run = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    assert_eq!(Path::new(&at_run), Path::new(env!("CARGO_MANIFEST_DIR")));
    let relative = std::fs::read_to_string("tests/data/fixture.txt")
        .expect("the fixture, relative to the package root, the working directory");
    assert_eq!(relative, text);
}

#[test]
fn host_variable_reaches_the_test() {
    let Ok(greeting) = std::env::var(GREETING_VARIABLE) else {
        println!("skipped: {GREETING_VARIABLE} is not set (the cargo runner test sets it)");
        return;
    };
    assert_eq!(greeting, runner_sample::greeting("runner"));
    assert_eq!(
        std::env::var("CARGO_PKG_NAME").as_deref(),
        Ok("runner-sample")
    );
}

#[test]
fn temp_dir_is_writable() {
    let dir = std::env::temp_dir().join(format!("runner-sample-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory in the temporary directory");
    let file = dir.join("written.txt");
    std::fs::write(&file, "written in a test\n").expect("a file in it");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "written in a test\n"
    );
    std::fs::remove_dir_all(&dir).expect("removing it");
}

#[test]
fn helper_binary_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_runner-sample-helper"))
        .arg("runner")
        .output()
        .expect("the helper binary cargo built");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let here = std::env::current_dir().unwrap();
    assert_eq!(
        stdout,
        format!(
            "{}\n{}\n",
            runner_sample::greeting("runner"),
            here.display()
        )
    );
}

#[test]
#[should_panic(expected = "the expected panic")]
fn panic_is_expected() {
    panic!("the expected panic");
}

/// Fails on purpose, with a backtrace under RUST_BACKTRACE=1: run it with
/// `--ignored --exact panics_with_a_backtrace --nocapture`.
#[test]
#[ignore = "fails on purpose: the cargo runner test runs it to compare panics"]
fn panics_with_a_backtrace() {
    inner_frame_of_the_panic();
}

#[inline(never)]
fn inner_frame_of_the_panic() {
    panic!("a panic with a backtrace");
}
