//! A root file system as kernel CI boots it: an initramfs holding only
//! Debian's `busybox-static`, the fully static `portrange` that
//! `ci/scripts/static.sh` builds, and whatever files a test adds, with a
//! shell script as `/init`; and QEMU booting a kernel with it, the console
//! captured. Nothing of the project's own VM code (`qemu::launch`, its
//! `/init`, its result channel) is involved: the console is all there is,
//! as on a kernel CI board.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arch::Arch;
use cpio::newc::{Builder, ModeFileType, trailer};

/// The first lines of every `/init` here, as a busybox rootfs's init
/// does it: the kernel's messages kept off the console but for
/// emergencies (the programs write KTAP and LAVA's signals there, and a
/// kernel message can land in the middle of a line: seen here, the
/// warning the cases' sysctl writes raise spliced into a KTAP result
/// line), the applets as commands, the kernel's file systems mounted, and
/// the `/dev/fd` and `/dev/std*` links udev or mdev would make (the
/// kselftest runner writes to `/dev/stdout`).
pub const INIT_PREAMBLE: &str = "\
#!/bin/busybox sh
/bin/busybox dmesg -n 1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
";

/// The fully static `portrange` for `arch`, built by the documented
/// command (`ci/scripts/static.sh ARCH`, a release build for the musl
/// target) into the test's target directory, once per test binary and
/// architecture. `Err` is the reason to skip: the Rust target is not
/// installed.
pub fn static_portrange(arch: Arch) -> Result<PathBuf, String> {
    static BUILT: Mutex<BTreeMap<Arch, Result<PathBuf, String>>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(arch)
        .or_insert_with(|| {
            let bin_dir = super::target_dir().join("static-bin");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/scripts/static.sh");
            let output = Command::new(&script)
                .arg(arch.to_string())
                .env("CARGO_TARGET_DIR", super::target_dir())
                .env("PORTRANGE_BIN_DIR", &bin_dir)
                .output()
                .expect("run ci/scripts/static.sh");
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                return Ok(bin_dir.join(format!("portrange-{arch}")));
            }
            let target = qemu::guest_program::rust_target(arch);
            assert!(
                stderr.contains("target may not be installed"),
                "{} {arch} failed:\n{stderr}",
                script.display()
            );
            Err(format!(
                "the Rust target {target} is not installed (rustup target add {target})"
            ))
        })
        .clone()
}

/// Debian's `busybox-static` for `arch` (its `/bin/busybox`), fetched with
/// apt-get download through the project's own package lists on first use
/// and kept under the cache.
pub fn busybox(arch: Arch) -> PathBuf {
    let cache = qemu::kernel::default_cache_dir();
    let dir = cache.join(format!("busybox-static-{}", arch.debian_name()));
    let program = dir.join("root/bin/busybox");
    if program.is_file() {
        return program;
    }
    fs::create_dir_all(&dir).unwrap();
    let archive = debian_archive::Archive::new(&cache, arch);
    let deb = archive
        .download("busybox-static", &dir, &mut |line| eprintln!("{line}"))
        .unwrap_or_else(|e| panic!("fetching busybox-static: {e}"));
    debian_archive::unpack(&deb, &dir.join("root"))
        .unwrap_or_else(|e| panic!("unpacking {}: {e}", deb.display()));
    assert!(program.is_file(), "{} has no /bin/busybox", deb.display());
    program
}

/// An initramfs being assembled: busybox, `/init` and the files added.
pub struct Rootfs {
    files: Vec<(String, u32, Vec<u8>)>,
}

impl Rootfs {
    /// A root file system with `busybox` as `/bin/busybox` and `init` (a
    /// shell script) as `/init`.
    pub fn new(busybox: &Path, init: &str) -> Rootfs {
        let mut rootfs = Rootfs { files: Vec::new() };
        rootfs.add_file("/bin/busybox", busybox);
        rootfs
            .files
            .push(("/init".to_owned(), 0o755, init.as_bytes().to_vec()));
        rootfs
    }

    /// Adds the host file `from` as `to`, with its permission bits.
    pub fn add_file(&mut self, to: &str, from: &Path) -> &mut Rootfs {
        let data = fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let mode = fs::metadata(from).unwrap().permissions();
        let mode = std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777;
        self.files.push((to.to_owned(), mode, data));
        self
    }

    /// Adds every file under the host directory `from` below `to`.
    pub fn add_tree(&mut self, to: &str, from: &Path) -> &mut Rootfs {
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let guest = format!("{}/{name}", to.trim_end_matches('/'));
            if entry.file_type().unwrap().is_dir() {
                self.add_tree(&guest, &entry.path());
            } else {
                self.add_file(&guest, &entry.path());
            }
        }
        self
    }

    /// Writes the newc archive to `out`: the mount points, `/dev/console`
    /// (the kernel opens it for `/init`), every file and its parents.
    pub fn write(&self, out: &Path) {
        let mut writer = Newc {
            out: io::BufWriter::new(fs::File::create(out).unwrap()),
            dirs: BTreeSet::new(),
            ino: 0,
        };
        for dir in ["/proc", "/sys", "/dev", "/tmp", "/root"] {
            writer.dir(dir).unwrap();
        }
        writer
            .entry(
                "/dev/console",
                Builder::new("dev/console")
                    .mode(0o600)
                    .set_mode_file_type(ModeFileType::Char)
                    .rdev_major(5)
                    .rdev_minor(1),
                &[],
            )
            .unwrap();
        for (path, mode, data) in &self.files {
            let entry = Builder::new(path.trim_start_matches('/'))
                .mode(*mode)
                .set_mode_file_type(ModeFileType::Regular);
            writer.entry(path, entry, data).unwrap();
        }
        let out = trailer(writer.out).unwrap();
        out.into_inner().unwrap().sync_all().unwrap();
    }
}

/// A newc writer that adds parent directories once each.
struct Newc<W: Write> {
    out: W,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl<W: Write> Newc<W> {
    fn dir(&mut self, path: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        self.dirs.insert(path.to_owned());
        let entry = Builder::new(path)
            .mode(0o755)
            .set_mode_file_type(ModeFileType::Directory)
            .nlink(2);
        self.entry(path, entry, &[])
    }

    /// Writes `entry` (for `path`) with `data`, its parents first.
    fn entry(&mut self, path: &str, entry: Builder, data: &[u8]) -> io::Result<()> {
        if let Some((parent, _)) = path.trim_matches('/').rsplit_once('/') {
            self.dir(parent)?;
        }
        self.ino += 1;
        let mut writer = entry.ino(self.ino).write(&mut self.out, data.len() as u32);
        writer.write_all(data)?;
        writer.finish()?;
        Ok(())
    }
}

/// Kills and reaps QEMU however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots `kernel` with `initramfs` in QEMU for `arch` under TCG (threaded
/// as the project's VMs: `qemu::tcg::decide`, with as many vCPUs), the
/// console on QEMU's stdout, until the guest reboots or powers off
/// (`-no-reboot`: either ends QEMU); gives the console with line ends as
/// `\n`. Panics with the console so far after `timeout`. QEMU dies with the
/// calling thread and is killed on every way out.
pub fn boot(arch: Arch, kernel: &Path, initramfs: &Path, timeout: Duration) -> String {
    let platform = qemu::platform::platform(arch);
    let binary = qemu::binary::locate_for(arch).unwrap_or_else(|e| panic!("{e}"));
    let tcg = qemu::tcg::decide(&binary, arch).unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(&binary);
    command.args(platform.machine);
    if let Some(cpu) = platform.tcg_cpu {
        command.args(["-cpu", cpu]);
    }
    command
        .args(["-accel", tcg.threading.accel_option(), "-m", "1024"])
        .arg("-smp")
        .arg(qemu::launch::guest_cpus().to_string())
        .args(["-nic", "none", "-display", "none", "-monitor", "none"])
        .args(["-serial", "stdio", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(format!(
            "console={} quiet panic=-1 {}",
            platform.console,
            platform.cmdline.join(" ")
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut qemu = Killed(
        child_lifetime::bind_to_this_thread(&mut command)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display())),
    );
    let mut stdout = qemu.0.stdout.take().unwrap();
    let mut stderr = qemu.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let status = loop {
        if let Some(status) = qemu.0.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = qemu.0.kill();
            let console = String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "");
            panic!("the guest did not reboot within {timeout:?} (QEMU killed):\n{console}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "");
    let mut errors = String::new();
    let _ = stderr.read_to_string(&mut errors);
    assert!(
        status.success(),
        "{} exited with {status}: {errors}\n{console}",
        platform.qemu
    );
    eprintln!(
        "{} booted {} to its reboot in {:.1} s",
        platform.qemu,
        kernel.display(),
        started.elapsed().as_secs_f64()
    );
    console
}

/// The console lines between `==> {name}` and `<== {name} exit status N`
/// (what a `/init` here prints around each program) and N.
pub fn section<'a>(console: &'a str, name: &str) -> (Vec<&'a str>, i32) {
    let start = format!("==> {name}");
    let end = format!("<== {name} exit status ");
    let mut lines = console.lines().skip_while(|line| *line != start).skip(1);
    let mut section = Vec::new();
    for line in lines.by_ref() {
        if let Some(status) = line.strip_prefix(&end) {
            return (section, status.trim().parse().unwrap());
        }
        section.push(line);
    }
    panic!("no complete `{name}` section on the console:\n{console}");
}
