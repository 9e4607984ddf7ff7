//! Choosing the accelerator: KVM when it really works, else TCG.
//!
//! `/dev/kvm` existing proves little: under nested virtualisation `-cpu host`
//! can fail at start ("failed to set MSR 0x10a") and other CPU models stop
//! with "KVM internal error" once the kernel runs. So the probe boots the
//! kernel that is about to be used, under KVM, until it prints its banner.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::Guard;

/// How long a KVM boot may take to print the kernel banner.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// What a kernel prints first on the console.
const BANNER: &str = "Linux version";
/// The probe result for this process: `Err` holds why KVM is unusable.
static PROBED: Mutex<Option<Result<(), String>>> = Mutex::new(None);

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm, with `-cpu host`.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM, or an error if it does not work.
    Kvm,
    /// TCG without probing.
    Tcg,
    /// KVM if the probe shows it works, else TCG.
    #[default]
    Auto,
}

/// KVM was asked for explicitly and does not work.
#[derive(Debug, thiserror::Error)]
#[error("KVM was asked for but does not work here ({reason}): use --accel tcg or --accel auto")]
pub struct KvmUnusable {
    /// What the probe saw.
    pub reason: String,
}

/// Decides the accelerator. `Auto` and `Kvm` probe KVM for real by booting
/// `kernel_image` with `qemu`; the probe runs once per process.
pub fn decide(choice: AccelChoice, qemu: &Path, kernel_image: &Path) -> Result<Accel, KvmUnusable> {
    if choice == AccelChoice::Tcg {
        return Ok(Accel::Tcg);
    }
    let verdict = {
        let mut probed = PROBED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        probed
            .get_or_insert_with(|| probe(qemu, kernel_image))
            .clone()
    };
    match (verdict, choice) {
        (Ok(()), _) => Ok(Accel::Kvm),
        (Err(_), AccelChoice::Auto) => Ok(Accel::Tcg),
        (Err(reason), _) => Err(KvmUnusable { reason }),
    }
}

/// Boots `kernel_image` under KVM until the banner shows; `Err` says why not.
fn probe(qemu: &Path, kernel_image: &Path) -> Result<(), String> {
    let kvm = Path::new("/dev/kvm");
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(kvm) {
        return Err(format!("opening /dev/kvm failed: {e}"));
    }
    let child = Command::new(qemu)
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1"])
        .args([
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(kernel_image)
        .args(["-append", "console=ttyS0 panic=-1 loglevel=8"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {} failed: {e}", qemu.display()))?;
    let mut guard = Guard::new(child);
    let (sender, output) = mpsc::channel();
    let stdout = guard
        .child()
        .stdout
        .take()
        .map(|s| (false, Box::new(s) as Box<dyn Read + Send>));
    let stderr = guard
        .child()
        .stderr
        .take()
        .map(|s| (true, Box::new(s) as Box<dyn Read + Send>));
    for (is_stderr, mut stream) in stdout.into_iter().chain(stderr) {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                if sender.send((is_stderr, text)).is_err() {
                    break;
                }
            }
        });
    }
    drop(sender);
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let (mut console, mut errors) = (String::new(), String::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(left) {
            Ok((false, text)) => console.push_str(&text),
            Ok((true, text)) => errors.push_str(&text),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "no kernel banner within {PROBE_TIMEOUT:?} under KVM"
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "QEMU ended before the kernel banner: {}",
                    first_line(&errors)
                ));
            }
        }
        if console.contains(BANNER) {
            return Ok(());
        }
        if errors.contains("KVM internal error") || errors.contains("error:") {
            return Err(first_line(&errors));
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|line| !line.contains("warning:"))
        .unwrap_or("no message")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcg_needs_no_probe() {
        let accel = decide(
            AccelChoice::Tcg,
            Path::new("/nonexistent"),
            Path::new("/nonexistent"),
        );
        assert_eq!(accel.unwrap(), Accel::Tcg);
    }

    #[test]
    fn first_meaningful_line_skips_warnings() {
        let text = "qemu: warning: host doesn't support pni\nqemu: error: failed to set MSR 0x10a to 0x69\n";
        assert_eq!(
            first_line(text),
            "qemu: error: failed to set MSR 0x10a to 0x69"
        );
    }
}
