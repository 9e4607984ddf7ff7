//! Helpers shared by the `portrange` end-to-end tests. Each test binary
//! uses a subset, hence the allow.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

pub mod rootfs;
pub mod seccomp;

/// The `portrange` binary under test.
pub const PORTRANGE: &str = env!("CARGO_BIN_EXE_portrange");

/// The target directory the test binaries were built in
/// (`<target>/<profile>/portrange`).
pub fn target_dir() -> PathBuf {
    Path::new(PORTRANGE)
        .ancestors()
        .nth(2)
        .expect("the binary lies in <target>/<profile>/")
        .to_path_buf()
}

/// A command that runs the binary with `args` (more can be added).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(PORTRANGE);
    command.args(args);
    command
}

/// Runs the binary with `args` to its end.
pub fn portrange(args: &[&str]) -> Output {
    command(args).output().expect("run portrange")
}

/// Each case's name and outcome kind from a `--format json` run
/// (`run` or `vm`), and the report's notes.
pub fn verdicts(args: &[&str]) -> (Vec<(String, String)>, Vec<String>) {
    let output = portrange(args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&output.stderr)));
    let results = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let outcome = match &r["outcome"] {
                serde_json::Value::String(kind) => kind.clone(),
                other => other.as_object().unwrap().keys().next().unwrap().clone(),
            };
            (r["name"].as_str().unwrap().to_owned(), outcome)
        })
        .collect();
    let notes = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    (results, notes)
}

/// The kselftest install directory with portrange dropped in: the kernel's
/// runner files copied from the source tree as `make install` lays them
/// out, then `ci/kselftest/install.sh` with the static binary.
pub fn kselftest_install(tree: &Path, portrange: &Path) -> tempfile::TempDir {
    let selftests = tree.join("tools/testing/selftests");
    let install = tempfile::tempdir().unwrap();
    fs::copy(
        selftests.join("run_kselftest.sh"),
        install.path().join("run_kselftest.sh"),
    )
    .unwrap();
    fs::create_dir(install.path().join("kselftest")).unwrap();
    for file in ["runner.sh", "ktap_helpers.sh", "prefix.pl"] {
        fs::copy(
            selftests.join("kselftest").join(file),
            install.path().join("kselftest").join(file),
        )
        .unwrap();
    }
    fs::write(install.path().join("kselftest-list.txt"), "").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/kselftest/install.sh");
    let status = Command::new(script)
        .arg(portrange)
        .arg(install.path())
        .status()
        .unwrap();
    assert!(status.success(), "ci/kselftest/install.sh failed");
    install
}

/// Whether QEMU is missing; says so (the test then returns early) when it
/// is, or fails the test when PORTRANGE_REQUIRE includes `vm`.
pub fn qemu_missing() -> bool {
    let missing = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err();
    if missing {
        require::skip_or_fail(
            require::Requirement::Vm,
            "qemu-system-x86_64 not found (apt-get install qemu-system-x86)",
        );
    }
    missing
}

/// Whether a kernel build tool is missing (make, gcc, flex, bison, bc, and
/// apt-get for the source package); says so (the test then returns early),
/// or fails the test when PORTRANGE_REQUIRE includes `kbuild`.
pub fn kbuild_missing() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing = ["make", "gcc", "flex", "bison", "bc", "apt-get"]
        .into_iter()
        .find(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if let Some(tool) = missing {
        let reason = format!("{tool} not found: .ci/install-deps installs the kernel build tools");
        require::skip_or_fail(require::Requirement::Kbuild, &reason);
    }
    missing.is_some()
}

/// Holds the lock that keeps kernel builds one at a time, across the test
/// binaries and the threads of one: a `flock` on a file in the cache,
/// released when the guard drops. A build uses every core, and two builds
/// of one configuration share an output directory.
pub fn one_build() -> Flock<File> {
    let dir = qemu::kernel::default_cache_dir().join("build");
    std::fs::create_dir_all(&dir).expect("create the build cache directory");
    let path = dir.join("portrange-tests.lock");
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", path.display()))
}

/// The kernel of the shipped GKI-traits configuration for `arch`
/// (`kbuild::shipped::gki_traits` on Debian's linux-source-6.12: the
/// minimal kernel with GKI's built-in command line, panic on oops, lockdep,
/// UBSAN traps and LKDTM, built with clang), built by `portrange build`
/// once per test binary and architecture under [`one_build`]: an
/// incremental rebuild, seconds of make, when check.rs's test of the
/// architecture built it already (same output directory under the cache).
/// `None` when QEMU (for arm64 also the cross-built guest portrange) or the
/// build tools are missing (said as [`qemu_missing`], [`vm_missing_for`]
/// and [`kbuild_missing`] say it).
pub fn gki_traits_kernel(arch: arch::Arch) -> Option<PathBuf> {
    static X86_64: OnceLock<PathBuf> = OnceLock::new();
    static ARM64: OnceLock<PathBuf> = OnceLock::new();
    let (vm_missing, built) = match arch {
        arch::Arch::X86_64 => (qemu_missing(), &X86_64),
        arch::Arch::Arm64 => (vm_missing_for(arch), &ARM64),
    };
    if vm_missing || kbuild_missing() {
        return None;
    }
    let config = kbuild::shipped::gki_traits(arch);
    let image = built.get_or_init(|| {
        let _one = one_build();
        let output = portrange(&["build", "--debian", "6.12", "--build-config", config]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "portrange build --build-config {config} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(stdout.trim())
    });
    Some(image.clone())
}

/// Says why no case could run (no root, no user namespaces): the test then
/// returns early, or fails when PORTRANGE_REQUIRE includes `root`.
pub fn unprivileged(reason: &str) {
    require::skip_or_fail(require::Requirement::Root, reason);
}

/// Checks KTAP v1 structure: version line, plan before any result, results
/// numbered 1..=N in order, every other line a diagnostic. Returns the
/// result lines.
pub fn validate_ktap(text: &str) -> Vec<String> {
    let (planned, results) = validate_ktap_head(text);
    assert_eq!(planned, results.len(), "plan does not match the results");
    results
}

/// Checks what a run that may have died midway left: KTAP v1 structure up
/// to where it stops, the plan before any result, results numbered in
/// order, no more of them than planned. Returns the plan's count and the
/// result lines.
pub fn validate_ktap_head(text: &str) -> (usize, Vec<String>) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("KTAP version 1"));
    let mut planned = None;
    let mut results = Vec::new();
    for line in lines {
        if let Some(count) = line.strip_prefix("1..") {
            assert!(planned.is_none(), "second plan line: {line}");
            assert!(results.is_empty(), "plan after results");
            planned = Some(count.split(' ').next().unwrap().parse::<usize>().unwrap());
        } else if line.starts_with("ok ") || line.starts_with("not ok ") {
            assert!(planned.is_some(), "result before the plan: {line}");
            let rest = line.trim_start_matches("not ").trim_start_matches("ok ");
            let (number, description) = rest.split_once(' ').expect("number and name");
            assert_eq!(
                number.parse::<usize>().unwrap(),
                results.len() + 1,
                "{line}"
            );
            let name = description.split(" # ").next().unwrap();
            assert!(
                !name.is_empty() && !name.contains(' '),
                "bad name in {line}"
            );
            if let Some(directive) = description.split_once(" # ").map(|(_, d)| d) {
                assert!(
                    directive.starts_with("SKIP "),
                    "unknown directive in {line}"
                );
            }
            results.push(line.to_owned());
        } else {
            assert!(
                line.starts_with('#'),
                "neither result, plan nor diagnostic: {line:?}"
            );
        }
    }
    let planned = planned.expect("no plan line");
    assert!(results.len() <= planned, "more results than planned");
    (planned, results)
}

/// Portrange's totals line in `ktap` (`# Totals: pass:P fail:F xfail:0
/// xpass:0 skip:S error:E`) as counts by name.
pub fn ktap_totals(ktap: &[&str]) -> std::collections::BTreeMap<String, usize> {
    let line = ktap
        .iter()
        .find_map(|l| l.strip_prefix("# Totals: "))
        .unwrap_or_else(|| panic!("no totals line:\n{}", ktap.join("\n")));
    line.split_whitespace()
        .map(|pair| {
            let (name, count) = pair.split_once(':').unwrap();
            (name.to_owned(), count.parse().unwrap())
        })
        .collect()
}

/// The kernel's KTAP parser, `tools/testing/kunit/kunit.py` from Debian's
/// linux-source-6.12 as kbuild unpacks it into the cache, if it and
/// python3 are there; says why not (the caller then skips) otherwise.
pub fn kunit_py() -> Option<PathBuf> {
    let script = qemu::kernel::default_cache_dir()
        .join("debian/linux-source-6.12/tools/testing/kunit/kunit.py");
    if !script.is_file() {
        eprintln!(
            "skipped: no {} (fetch the tree: cargo test -p portrange --test ci_templates kselftest)",
            script.display()
        );
        return None;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 not found, which kunit.py needs (apt-get install python3)");
        return None;
    }
    Some(script)
}

/// What `kunit.py parse` says of `ktap`: its stdout and stderr.
pub fn kunit_parse(script: &Path, ktap: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(script)
        .arg("parse")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kunit.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ktap.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether the test runs without root; says so as [`unprivileged`] does.
pub fn not_root() -> bool {
    let not_root = !nix::unistd::geteuid().is_root();
    if not_root {
        unprivileged("needs root");
    }
    not_root
}

/// Whether a VM of `arch` cannot run here: QEMU for it missing, or (for
/// another architecture than the host's) the Rust target to cross-build
/// portrange for it. Says so (the test then returns early), or fails the
/// test when PORTRANGE_REQUIRE includes `vm`. Cross-builds portrange for
/// `arch` otherwise ([`guest_portrange`]).
pub fn vm_missing_for(arch: arch::Arch) -> bool {
    let missing = qemu::binary::locate_for(arch)
        .map_err(|e| e.to_string())
        .and_then(|_| guest_portrange(arch));
    if let Err(reason) = &missing {
        require::skip_or_fail(require::Requirement::Vm, reason);
    }
    missing.is_err()
}

/// Cross-builds `portrange` for `arch` (the static musl build `portrange
/// vm --arch` packs as `/init`) where it looks for it, once per test
/// binary (cargo's incremental build: seconds when nothing changed), so it
/// is never older than the source. `Err` is the reason to skip: the Rust
/// target is not installed.
fn guest_portrange(arch: arch::Arch) -> Result<(), String> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let program = qemu::guest_program::Program {
                package: "portrange",
                artifact: qemu::guest_program::Artifact::Bin("portrange"),
            };
            let args = qemu::guest_program::build_args(arch, &program);
            let output = Command::new(env!("CARGO"))
                .args(&args)
                .output()
                .expect("run cargo");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                return Ok(());
            }
            let target = qemu::guest_program::rust_target(arch);
            assert!(
                stderr.contains("target may not be installed"),
                "cargo {} failed:\n{stderr}",
                args.join(" ")
            );
            Err(format!(
                "the Rust target {target} is not installed (rustup target add {target})"
            ))
        })
        .clone()
}
