//! The KVM probe: boot the kernel under KVM until it prints its banner.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process;

/// How long a KVM boot may take to print the kernel banner.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// What a kernel prints first on the console.
const BANNER: &str = "Linux version";
/// What QEMU prints on stderr when KVM cannot run this guest. With the
/// first, QEMU may go on running (hung) rather than exit.
const KVM_FAILURES: [&str; 3] = ["KVM internal error", "emulation failure", "error:"];

/// Boots `kernel_image` under KVM; `Err` says why KVM is unusable. QEMU is
/// killed as soon as the verdict is known, and dies with this thread.
pub(super) fn boot(qemu: &Path, kernel_image: &Path) -> Result<(), String> {
    let kvm = Path::new("/dev/kvm");
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(kvm) {
        return Err(format!("opening /dev/kvm failed: {e}"));
    }
    let mut command = Command::new(qemu);
    command
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
        .stderr(Stdio::piped());
    let mut guard = process::spawn(&mut command)
        .map_err(|e| format!("starting {} failed: {e}", qemu.display()))?;
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
        if let Some(verdict) = judge(&console, &errors) {
            return verdict;
        }
    }
}

/// The verdict from what QEMU has printed so far, if there is one yet: the
/// banner on the console is success, a KVM failure line on stderr is not.
fn judge(console: &str, errors: &str) -> Option<Result<(), String>> {
    if console.contains(BANNER) {
        return Some(Ok(()));
    }
    // Only whole lines: a failure line may arrive in pieces.
    let complete = &errors[..errors.rfind('\n').map_or(0, |end| end + 1)];
    complete
        .lines()
        .find(|line| KVM_FAILURES.iter().any(|failure| line.contains(failure)))
        .map(|line| Err(line.trim().to_string()))
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
    fn first_meaningful_line_skips_warnings() {
        let text = "qemu: warning: host doesn't support pni\nqemu: error: failed to set MSR 0x10a to 0x69\n";
        assert_eq!(
            first_line(text),
            "qemu: error: failed to set MSR 0x10a to 0x69"
        );
    }

    #[test]
    fn banner_is_success() {
        let console = "[    0.000000] Linux version 6.12.57+deb13-cloud-amd64 (...)\n";
        assert_eq!(judge(console, ""), Some(Ok(())));
    }

    #[test]
    fn kvm_internal_error_fails_at_once_though_qemu_keeps_running() {
        // As QEMU 7.2 prints it on a machine where it then hangs.
        let errors = "KVM internal error. Suberror: 1\n\
                      extra data[0]: 0x0000000000000000\n\
                      emulation failure\n";
        assert_eq!(
            judge("", errors),
            Some(Err("KVM internal error. Suberror: 1".into()))
        );
    }

    #[test]
    fn msr_error_fails_at_once() {
        let errors = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x2000000001\n";
        assert_eq!(
            judge("", errors),
            Some(Err(
                "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x2000000001".into()
            ))
        );
    }

    #[test]
    fn warnings_and_partial_lines_are_not_a_verdict() {
        assert_eq!(
            judge("SeaBIOS", "qemu: warning: host doesn't support pni\n"),
            None
        );
        assert_eq!(judge("", "KVM internal err"), None);
    }
}
