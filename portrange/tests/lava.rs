//! The shipped LAVA job (ci/lava/job-qemu.yaml) run for real by LAVA's own
//! dispatcher, `lava-run` from Debian 12's lava-dispatcher 2023.01, on the
//! shipped QEMU device (ci/lava/device-qemu.yaml), with only the job's four
//! URLs swapped for local files: Debian's 6.12 cloud kernel, a ramdisk
//! holding only busybox-static and an `/init` that starts a shell on the
//! console, the static `portrange` (`ci/scripts/static.sh x86_64`), and a
//! git repository holding ci/lava/ as committed here. LAVA appends its test
//! shell and the binary to the ramdisk, boots it, logs in at the prompt and
//! runs the test definition (ci/lava/portrange.yaml, run-portrange.sh).
//!
//! Checked in what LAVA itself recorded (its log's `results` entries, what
//! a lava-server stores): the job passed, and the definition's results hold
//! `portrange-setup` and every case of the catalogue exactly once, each
//! with the verdict of portrange's own KTAP from that run (on the console
//! in LAVA's log), pass, skip and fail counted as its totals line says.
//!
//! Requirement `ci-engines`: lava-run (`.ci/install-deps` installs
//! lava-dispatcher) and git; `vm`: QEMU, the Rust musl target; `root`:
//! lava-run works under /var/lib/lava and runs here in PID and mount
//! namespaces of its own (`unshare`), so that everything it starts (QEMU
//! among it) dies with it, and its working files live in a tmpfs that
//! vanishes with it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arch::Arch;
use common::rootfs::{self, Rootfs};
use yaml_rust2::{Yaml, YamlLoader};

/// The URLs of the shipped job, each swapped for a local file.
const KERNEL_URL: &str = "https://example.org/portrange/bzImage";
const RAMDISK_URL: &str = "https://example.org/portrange/rootfs.cpio";
const PORTRANGE_URL: &str = "https://example.org/portrange/portrange-x86_64";
const REPOSITORY_URL: &str = "https://example.org/portrange.git";

/// Longest the job may take: 16 s at load 3-5 here, 225 s at load 10.
const JOB_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The name LAVA gives the test definition's results (`<index>_<name>`).
const DEFINITION: &str = "0_portrange";

fn ci_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci")
}

/// Why the `ci-engines` requirement is not met, if it is not.
fn missing_engine() -> Option<String> {
    for (program, package) in [("lava-run", "lava-dispatcher"), ("git", "git")] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join(program).is_file());
        if !found {
            return Some(format!(
                "{program} not found: apt-get install {package} (.ci/install-deps installs it)"
            ));
        }
    }
    None
}

/// A git repository holding ci/lava/ as it is in the working tree, one
/// commit, for LAVA's `from: git` test definition.
fn definition_repository(at: &Path) {
    let lava = at.join("ci/lava");
    fs::create_dir_all(&lava).unwrap();
    for entry in fs::read_dir(ci_dir().join("lava")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), lava.join(entry.file_name())).unwrap();
    }
    for args in [
        &["init", "--quiet"][..],
        &["add", "--all"],
        &[
            "-c",
            "user.name=portrange test",
            "-c",
            "user.email=portrange@localhost",
            "commit",
            "--quiet",
            "-m",
            "ci/lava",
        ],
    ] {
        let output = Command::new("git")
            .current_dir(at)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The shipped job with its URLs swapped for `local` ones (each shipped URL
/// must be there exactly once).
fn local_job(local: [(&str, String); 4]) -> String {
    let path = ci_dir().join("lava/job-qemu.yaml");
    let mut job = fs::read_to_string(&path).unwrap();
    for (shipped, replacement) in local {
        assert_eq!(job.matches(shipped).count(), 1, "{shipped} in {job}");
        job = job.replace(shipped, &replacement);
    }
    job
}

/// Kills `unshare` (and so lava-run, the PID namespace's init, and so
/// everything in the namespace) however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs lava-run on `job` and `device` in PID and mount namespaces of its
/// own, with a tmpfs over its working directory; gives its exit success
/// and its log (what it writes to stderr: one entry a line).
fn lava_run(job: &Path, device: &Path, output_dir: &Path) -> (bool, String) {
    let mut command = Command::new("unshare");
    command
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .arg(
            "mount -t tmpfs lava /var/lib/lava/dispatcher/tmp && \
             exec lava-run --job-id \"$1\" --output-dir \"$2\" --device \"$3\" \"$4\"",
        )
        .arg("sh")
        .arg(std::process::id().to_string())
        .arg(output_dir)
        .arg(device)
        .arg(job)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    fs::create_dir_all("/var/lib/lava/dispatcher/tmp").unwrap();
    let started = Instant::now();
    let mut child = Killed(
        child_lifetime::bind_to_this_thread(&mut command)
            .spawn()
            .expect("start unshare lava-run"),
    );
    let mut stderr = child.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > JOB_TIMEOUT {
            drop(child);
            panic!(
                "lava-run still running after {JOB_TIMEOUT:?}: killed\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "lava-run ran the job in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    (status.success(), reader.join().unwrap())
}

/// One entry of LAVA's log: its level and message.
fn entries(log: &str) -> Vec<(String, Yaml)> {
    log.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let mut docs = YamlLoader::load_from_str(line)
                .unwrap_or_else(|e| panic!("LAVA log line is not YAML ({e}): {line}"));
            let entry = docs.remove(0);
            let level = entry["lvl"].as_str().unwrap_or_default().to_owned();
            (level, entry["msg"].clone())
        })
        .collect()
}

#[test]
fn lava_run_records_every_case_with_portranges_verdict() {
    if let Some(reason) = missing_engine() {
        return require::skip_or_fail(require::Requirement::CiEngines, &reason);
    }
    if common::qemu_missing() || common::not_root() {
        return;
    }
    let portrange = match rootfs::static_portrange(Arch::X86_64) {
        Ok(path) => path,
        Err(reason) => return require::skip_or_fail(require::Requirement::Vm, &reason),
    };
    let cache = qemu::kernel::default_cache_dir();
    let kernel =
        qemu::kernel::resolve_for("debian-6.12", Some(Arch::X86_64), &cache, &mut |line| {
            eprintln!("{line}")
        })
        .unwrap_or_else(|e| panic!("fetching debian-6.12: {e}"));

    let scratch = tempfile::tempdir().unwrap();
    let ramdisk = scratch.path().join("rootfs.cpio");
    let init = format!(
        "{}echo 'rootfs ready'\nexec setsid cttyhack sh -l\n",
        rootfs::INIT_PREAMBLE
    );
    Rootfs::new(&rootfs::busybox(Arch::X86_64), &init).write(&ramdisk);
    let repository = scratch.path().join("repository");
    definition_repository(&repository);
    let file_url = |path: &Path| format!("file://{}", path.display());
    let job = local_job([
        (KERNEL_URL, file_url(&kernel.image)),
        (RAMDISK_URL, file_url(&ramdisk)),
        (PORTRANGE_URL, file_url(&portrange)),
        (REPOSITORY_URL, repository.display().to_string()),
    ]);
    let job_path = scratch.path().join("job.yaml");
    fs::write(&job_path, job).unwrap();

    let (success, log) = lava_run(
        &job_path,
        &ci_dir().join("lava/device-qemu.yaml"),
        &scratch.path().join("out"),
    );
    let entries = entries(&log);
    let results: Vec<&Yaml> = entries
        .iter()
        .filter(|(level, _)| level == "results")
        .map(|(_, message)| message)
        .collect();
    let lava_result = |case: &str| {
        results
            .iter()
            .find(|r| r["definition"].as_str() == Some("lava") && r["case"].as_str() == Some(case))
            .and_then(|r| r["result"].as_str())
    };
    assert!(
        success && lava_result("job") == Some("pass"),
        "lava-run failed or the job did not pass:\n{log}"
    );
    assert_eq!(lava_result(DEFINITION), Some("pass"), "{log}");

    // LAVA's record of the definition's cases, each exactly once.
    let mut recorded = BTreeMap::new();
    for result in results
        .iter()
        .filter(|r| r["definition"].as_str() == Some(DEFINITION))
    {
        let case = result["case"].as_str().unwrap().to_owned();
        let verdict = result["result"].as_str().unwrap().to_owned();
        assert!(
            recorded.insert(case.clone(), verdict).is_none(),
            "{case} recorded twice"
        );
    }
    assert_eq!(
        recorded.remove("portrange-setup").as_deref(),
        Some("pass"),
        "{log}"
    );

    // portrange's own KTAP, as it went to the console.
    let console: Vec<&str> = entries
        .iter()
        .filter(|(level, _)| level == "target")
        .filter_map(|(_, message)| message.as_str())
        .collect();
    let ktap: Vec<&str> = console
        .iter()
        .copied()
        .skip_while(|line| *line != "KTAP version 1")
        .take_while(|line| !line.starts_with("<LAVA_SIGNAL"))
        .filter(|line| !line.starts_with('['))
        .collect();
    let lines = common::validate_ktap(&(ktap.join("\n") + "\n"));
    let mut expected = BTreeMap::new();
    for line in &lines {
        let verdict = if line.starts_with("not ok ") {
            "fail"
        } else if line.contains(" # SKIP ") {
            "skip"
        } else {
            "pass"
        };
        let name = line.split(' ').nth(if verdict == "fail" { 3 } else { 2 });
        expected.insert(name.unwrap().replace('/', "."), verdict.to_owned());
    }
    let catalogue: Vec<String> = cases::catalogue()
        .iter()
        .map(|case| case.name.replace('/', "."))
        .collect();
    assert_eq!(
        expected.keys().cloned().collect::<Vec<_>>(),
        {
            let mut sorted = catalogue.clone();
            sorted.sort();
            sorted
        },
        "the KTAP holds every case of the catalogue"
    );
    assert_eq!(
        recorded, expected,
        "LAVA's results against portrange's KTAP"
    );

    let totals = common::ktap_totals(&ktap);
    let count = |verdict: &str| recorded.values().filter(|v| *v == verdict).count();
    assert_eq!(
        (count("pass"), count("skip"), count("fail")),
        (
            totals["pass"],
            totals["skip"],
            totals["fail"] + totals["error"]
        ),
        "LAVA's counts against portrange's totals"
    );
    assert!(
        console.contains(&"portrange exit status: 0"),
        "run-portrange.sh's last line"
    );
    eprintln!(
        "LAVA recorded {} cases: {} pass, {} skip, {} fail",
        recorded.len(),
        count("pass"),
        count("skip"),
        count("fail")
    );
}
