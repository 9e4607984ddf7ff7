//! PORTRANGE_REQUIRE turns a skip for a missing prerequisite into a
//! failure. Shown by running this test binary's own helper tests again with
//! a prerequisite really taken away: QEMU (an empty PATH) and the right to
//! make namespaces (root without capabilities, through `setpriv`).

mod common;

use std::process::{Command, Output};

/// Helper: needs QEMU, does nothing more.
#[test]
fn helper_needs_qemu() {
    common::qemu_missing();
}

/// Helper: needs to make a network namespace, does nothing more.
#[test]
fn helper_needs_a_namespace() {
    match netns_util::Netns::new() {
        Ok(_) => {}
        Err(e) if e.is_no_privileges() => common::unprivileged(&e.to_string()),
        Err(e) => panic!("creating a namespace: {e}"),
    }
}

/// Runs one helper of this binary (`wrapper` before it, if any) with the
/// given environment changes; gives its output.
fn helper(name: &str, wrapper: &[&str], env: &[(&str, &str)]) -> Output {
    let me = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&me);
            command
        }
        None => Command::new(&me),
    };
    command
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env_remove(require::ENV)
        .envs(env.iter().copied())
        .output()
        .expect("run the helper test")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn missing_qemu_skips_and_fails_under_require_vm() {
    let no_qemu = [("PATH", "")];
    let skipped = helper("helper_needs_qemu", &[], &no_qemu);
    assert!(skipped.status.success(), "{}", text(&skipped));
    assert!(
        text(&skipped).contains("skipped: qemu-system-x86_64 not found"),
        "{}",
        text(&skipped)
    );
    for value in ["vm", "root,vm,kbuild", "all"] {
        let failed = helper(
            "helper_needs_qemu",
            &[],
            &[no_qemu[0], (require::ENV, value)],
        );
        assert!(!failed.status.success(), "{value}: {}", text(&failed));
        assert!(
            text(&failed).contains(
                "PORTRANGE_REQUIRE includes vm, but it is missing here: qemu-system-x86_64 not found"
            ),
            "{}",
            text(&failed)
        );
    }
    let other = helper(
        "helper_needs_qemu",
        &[],
        &[no_qemu[0], (require::ENV, "root")],
    );
    assert!(other.status.success(), "{}", text(&other));
}

#[test]
fn missing_privileges_skip_and_fail_under_require_root() {
    if common::not_root() {
        return;
    }
    let no_caps = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"];
    let skipped = helper("helper_needs_a_namespace", &no_caps, &[]);
    assert!(skipped.status.success(), "{}", text(&skipped));
    assert!(
        text(&skipped).contains("skipped: no privilege to create network namespaces"),
        "{}",
        text(&skipped)
    );
    let failed = helper(
        "helper_needs_a_namespace",
        &no_caps,
        &[(require::ENV, "root")],
    );
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("PORTRANGE_REQUIRE includes root, but it is missing here: no privilege to create network namespaces"),
        "{}",
        text(&failed)
    );
}

#[test]
fn a_bad_value_fails_naming_the_word() {
    let failed = helper(
        "helper_needs_qemu",
        &[],
        &[("PATH", ""), (require::ENV, "qemu")],
    );
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        text(&failed).contains("unknown requirement \"qemu\""),
        "{}",
        text(&failed)
    );
}
