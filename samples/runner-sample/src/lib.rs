//! A sample crate for the cargo runner (`portrange vm --kernel K --`): its
//! integration tests (`tests/runner.rs`) read a fixture through
//! `CARGO_MANIFEST_DIR`, read an environment variable set on the host,
//! write to the temporary directory, run a helper binary through
//! `CARGO_BIN_EXE_runner-sample-helper` and panic with a backtrace.
//! `portrange/tests/cargo_runner.rs` runs them natively and in VMs and
//! compares.

/// The greeting the tests expect from the helper binary for `name`.
pub fn greeting(name: &str) -> String {
    format!("hello, {name}")
}
