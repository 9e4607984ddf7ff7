//! Bad input gets one clear line saying what is wrong and what to do, and
//! a non-zero exit; nothing is half-written. No VM boots here: every case
//! fails before QEMU would start.

mod common;

use std::process::{Command, Output};

use common::{PORTRANGE, command};

/// Runs the binary with `args`, with `path` as PATH if given.
fn portrange(args: &[&str], path: Option<&str>) -> Output {
    let mut command = command(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    command.output().expect("run portrange")
}

/// Runs `args`, expects exit 2 and a first stderr line holding every
/// fragment and saying each thing once, and returns that line.
fn refused(args: &[&str], path: Option<&str>, fragments: &[&str]) -> String {
    let output = portrange(args, path);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    let line = stderr.lines().next().unwrap_or_default().to_owned();
    for fragment in fragments {
        assert!(
            line.contains(fragment),
            "{args:?}: {fragment:?} not in {line:?}"
        );
    }
    assert_each_part_once(&line);
    line
}

/// An error line's `: `-separated parts (each layer's message, then the
/// causes) are all different: no cause printed by a layer and again by
/// the source chain.
fn assert_each_part_once(line: &str) {
    let parts: Vec<&str> = line.split(": ").collect();
    for (index, part) in parts.iter().enumerate() {
        assert!(
            !parts[index + 1..].contains(part),
            "{part:?} appears twice in {line:?}"
        );
    }
}

#[test]
fn missing_kernel_image() {
    let line = refused(
        &["vm", "--kernel", "/nonexistent/bzImage"],
        None,
        &["does not exist", "pass the path of a bzImage"],
    );
    assert_eq!(
        line,
        "portrange: error: kernel /nonexistent/bzImage: kernel image /nonexistent/bzImage does not exist: pass the path of a bzImage (arch/x86/boot/bzImage, /boot/vmlinuz-*) or an arm64 Image (arch/arm64/boot/Image)"
    );
}

/// An error with an OS error under it: the layers' messages, then the OS
/// error, once.
#[test]
fn unreadable_kernel_image_names_the_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().to_str().unwrap();
    let line = refused(&["vm", "--kernel", image], None, &[]);
    assert_eq!(
        line,
        format!(
            "portrange: error: kernel {image}: reading kernel image {image} failed: Is a directory (os error 21)"
        )
    );
}

#[test]
fn unusable_cache_directory_names_the_os_error_once() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let cache = file.path().to_str().unwrap();
    let line = refused(&["check", "--debian", "6.12", "--cache", cache], None, &[]);
    assert_eq!(
        line,
        format!("portrange: error: could not create {cache}/debian: Not a directory (os error 20)")
    );
}

#[test]
fn corrupt_kernel_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("bzImage");
    std::fs::write(&image, vec![0x5a; 64 * 1024]).unwrap();
    refused(
        &["vm", "--kernel", image.to_str().unwrap()],
        None,
        &["no x86 boot header", "corrupt or not a kernel"],
    );
}

#[test]
fn kernel_image_of_another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("Image");
    let mut bytes = vec![0u8; 64 * 1024];
    bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
    std::fs::write(&image, bytes).unwrap();
    refused(
        &[
            "vm",
            "--arch",
            "x86_64",
            "--kernel",
            image.to_str().unwrap(),
        ],
        None,
        &[
            "arm64 Image",
            "x86_64 kernels only",
            "ask for arm64 (--arch arm64)",
        ],
    );
}

#[test]
fn unknown_prebuilt_kernel_lists_the_known_ones() {
    refused(
        &["vm", "--kernel", "debian-4.19"],
        None,
        &[
            "neither a file nor a known prebuilt",
            "debian-5.10, debian-6.1, debian-6.12",
        ],
    );
}

#[test]
fn missing_qemu_names_the_package() {
    let image = qemu_free_image();
    refused(
        &["vm", "--kernel", image.path().to_str().unwrap()],
        Some("/nonexistent"),
        &[
            "qemu-system-x86_64 not found",
            "apt-get install qemu-system-x86",
        ],
    );
}

/// A file that passes the bzImage header check, so the next step (finding
/// QEMU) is the one that fails.
fn qemu_free_image() -> tempfile::NamedTempFile {
    let mut bytes = vec![0u8; 64 * 1024];
    bytes[0x202..0x206].copy_from_slice(b"HdrS");
    bytes[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    bytes[0x20e..0x210].copy_from_slice(&0x0200u16.to_le_bytes());
    bytes[0x400..0x40a].copy_from_slice(b"6.12.0-x \0");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

#[test]
fn unknown_and_conflicting_options_are_usage_errors() {
    for (args, fragment) in [
        (&["run", "--format", "xml"][..], "invalid value 'xml'"),
        (&["run", "--shard", "3/2"], "expected I/N"),
        (
            &["vm", "--format", "ktap", "--", "/bin/true"],
            "cannot be used with",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["scenario", "nope"], "no scenario \"nope\""),
    ] {
        let output = portrange(args, None);
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(fragment),
            "{args:?}: {fragment:?} not in {stderr}"
        );
    }
}

/// An output file that cannot be written is refused before any case runs
/// (no progress line, nothing left in the directory), naming the path and
/// the OS error.
#[test]
fn output_in_a_missing_directory_is_refused_before_any_case_runs() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no/such/dir/report.ktap");
    let output = portrange(
        &[
            "run",
            "--format",
            "ktap",
            "--output",
            target.to_str().unwrap(),
            "sockopt/",
        ],
        None,
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "", "cases ran before the output was refused");
    assert_eq!(
        stderr,
        format!(
            "portrange: error: cannot write {}: No such file or directory (os error 2)\n",
            target.display()
        )
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `vm` and `check` refuse an unwritable output or console log before QEMU is looked for
/// or a kernel tree is read.
#[test]
fn vm_and_check_refuse_an_unwritable_output_before_booting_or_building() {
    let image = qemu_free_image();
    let tree = tempfile::tempdir().unwrap();
    let output_dir = tempfile::tempdir().unwrap();
    for (args, target) in [
        (
            vec!["vm", "--kernel", image.path().to_str().unwrap()],
            "/nonexistent/dir/r.xml".to_owned(),
        ),
        (
            vec!["check", "--source", tree.path().to_str().unwrap()],
            "/nonexistent/dir/r.xml".to_owned(),
        ),
        (
            vec!["vm", "--kernel", image.path().to_str().unwrap()],
            output_dir.path().to_str().unwrap().to_owned(),
        ),
    ] {
        let mut args = args.clone();
        args.extend(["--format", "junit", "--output", &target]);
        refused(
            &args,
            Some("/nonexistent"),
            &[&format!("portrange: error: cannot write {target}: ")],
        );
    }
    for args in [
        vec!["vm", "--kernel", image.path().to_str().unwrap()],
        vec!["check", "--source", tree.path().to_str().unwrap()],
    ] {
        let target = "/nonexistent/dir/console.log";
        let mut args = args.clone();
        args.extend(["--console-log", target]);
        refused(
            &args,
            Some("/nonexistent"),
            &[&format!("portrange: error: cannot write {target}: ")],
        );
    }
}

/// Filters and shards that select no case are refused with the nearest
/// names, in every command that takes a selection, before anything runs.
#[test]
fn selections_of_nothing_are_refused_with_the_nearest_names() {
    let image = qemu_free_image();
    let image = image.path().to_str().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let typo = "tcp4/sockopt/round_trp";
    let nearest = "the nearest names are tcp4/sockopt/round_trip";
    for command in [
        vec!["run"],
        vec!["list"],
        vec!["vm", "--kernel", image],
        vec!["check", "--source", tree.path().to_str().unwrap()],
        vec![
            "matrix",
            "--kernel",
            "running",
            "--out-dir",
            out_dir.path().to_str().unwrap(),
        ],
    ] {
        let mut args = command.clone();
        args.push(typo);
        refused(
            &args,
            Some("/nonexistent"),
            &[&format!("no case name contains \"{typo}\""), nearest],
        );
    }
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
    refused(
        &["run", "--exact", "udp6/clamp/one_port_rnge"],
        None,
        &[
            "no case is named \"udp6/clamp/one_port_rnge\"",
            "the nearest names are udp6/clamp/one_port_range",
        ],
    );
    refused(
        &["list", "round_trp"],
        None,
        &["the nearest names are round_trip;"],
    );
    refused(
        &[
            "run",
            "--shard",
            "3/3",
            "--exact",
            "tcp4/sockopt/round_trip",
        ],
        None,
        &[
            "--shard 3/3 selects no case",
            "the filters select 1 case(s)",
            "N at most 1",
        ],
    );
    refused(
        &["run", "harness_fault/"],
        None,
        &["add --include-harness-faults"],
    );
    refused(
        &["list", "--selftest-equivalent", "4in6/"],
        None,
        &["none of the selected cases answers the kernel's selftest"],
    );
}

/// `--threads 0` would start no worker and wait forever: it is refused
/// when the command line is parsed (under `timeout`, so the old hang fails
/// the test instead of hanging it).
#[test]
fn zero_threads_are_refused_at_parse_time() {
    for command in ["run", "vm", "matrix"] {
        let output = Command::new("timeout")
            .args(["60", PORTRANGE, command, "--threads", "0"])
            .output()
            .expect("timeout");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.starts_with(
                "error: invalid value '0' for '--threads <THREADS>': 0 threads would run no case"
            ),
            "{command}: {stderr}"
        );
    }
}

/// Without root the tool moves itself into a user namespace and runs (the
/// kernel here allows unprivileged user namespaces; where it does not,
/// every case is skipped with that reason and the exit is 4).
#[test]
fn runs_as_an_unprivileged_user_through_a_user_namespace() {
    if !nix::unistd::geteuid().is_root() {
        common::unprivileged("needs root to switch to an unprivileged user");
        return;
    }
    let output = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(PORTRANGE)
        .args([
            "run",
            "--format",
            "ktap",
            "--exact",
            "tcp4/sockopt/round_trip",
            "udp6/clamp/one_port_range",
        ])
        .output()
        .expect("setpriv");
    let ktap = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    match output.status.code() {
        Some(0) => assert!(ktap.contains("ok 2 udp6/clamp/one_port_range"), "{ktap}"),
        Some(4) => assert!(stderr.contains("needs root or user namespaces"), "{stderr}"),
        other => panic!("exit {other:?}:\n{ktap}\n{stderr}"),
    }
}

#[test]
fn build_config_problems_are_named() {
    let tree = tempfile::tempdir().unwrap();
    let source = tree.path().to_str().unwrap();
    let file = |name: &str, text: &str| {
        let path = tree.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let failing = file("build.config.fails", "false\n");
    let line = refused(
        &[
            "build",
            "--source",
            source,
            "--build-config",
            &failing,
            "--print-config",
        ],
        None,
        &[],
    );
    assert_eq!(
        line,
        format!("portrange: error: bash failed sourcing {failing} (exit status: 1); its stderr:")
    );
    let no_arch = file("build.config.noarch", "DEFCONFIG=tinyconfig\n");
    for (config, fragments) in [
        (
            "build.config.missing",
            &["not found", "pass an existing build.config"][..],
        ),
        (failing.as_str(), &["bash failed sourcing"][..]),
        (no_arch.as_str(), &["left ARCH unset", "set ARCH"][..]),
    ] {
        refused(
            &[
                "build",
                "--source",
                source,
                "--build-config",
                config,
                "--print-config",
            ],
            None,
            fragments,
        );
    }
}

#[test]
fn a_tree_that_is_not_a_kernel_is_refused_before_make() {
    let tree = tempfile::tempdir().unwrap();
    let out = tree.path().join("out");
    refused(
        &[
            "build",
            "--source",
            tree.path().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        &[
            "is not a Linux source tree",
            "pass the kernel's top directory",
        ],
    );
    assert!(
        !out.exists(),
        "an output directory was made for a non-kernel tree"
    );
}

#[test]
fn check_fetches_and_builds_under_the_cache_it_was_given() {
    let cache = tempfile::tempdir().unwrap();
    let tree = cache.path().join("debian/linux-source-6.12");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("Makefile"), "").unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let output = portrange(&["check", "--debian", "6.12", "--cache", cache_arg], None);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("portrange: using {}", tree.display())),
        "the tree was not looked for under --cache: {stderr}"
    );
    assert!(stderr.contains("is not a Linux source tree"), "{stderr}");
}
