//! Child processes that die with the tool: killed and reaped when their
//! owner drops them, and killed by the kernel when the thread that started
//! them dies, even under SIGKILL when no destructor runs.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// Starts `command` bound to the calling thread: the kernel sends the child
/// SIGKILL when that thread ends, and the returned guard kills and reaps it
/// when dropped. Every QEMU the tool starts goes through here.
pub(crate) fn spawn(command: &mut Command) -> std::io::Result<Guard> {
    let parent = Pid::this();
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls prctl(2), getppid(2) and raise(3), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl, in which
            // case the death signal will never come: die now instead.
            if getppid() != parent {
                nix::sys::signal::raise(Signal::SIGKILL).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    command.spawn().map(|child| Guard { child })
}

/// Owns a child process: dropping it (return, error or panic) kills and
/// reaps it.
#[derive(Debug)]
pub(crate) struct Guard {
    child: Child,
}

impl Guard {
    pub(crate) fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status if the process has ended.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Killing can only fail if the process is already gone; reaping
            // below covers both cases.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Set in the re-executed test binary: it starts `sleep` through
    /// [`spawn`], prints the sleeper's pid and waits to be killed.
    const CHILD_ROLE: &str = "PORTRANGE_PROCESS_TEST_CHILD";

    #[test]
    fn dropping_kills_and_reaps() {
        let guard = spawn(Command::new("sleep").arg("60")).unwrap();
        let pid = guard.child.id();
        drop(guard);
        // The process is reaped: its /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn spawned_process_dies_with_a_sigkilled_owner() {
        if std::env::var_os(CHILD_ROLE).is_some() {
            let guard = spawn(Command::new("sleep").arg("600").stdout(Stdio::null())).unwrap();
            // libtest may have begun the test's own line: start a new one.
            println!("\nsleeper {}", guard.child.id());
            std::thread::sleep(Duration::from_secs(600));
            return;
        }
        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tests::spawned_process_dies_with_a_sigkilled_owner",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ROLE, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let sleeper = BufReader::new(owner.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split("sleeper ").nth(1)?.trim().parse::<u32>().ok())
            .expect("the owner never reported its child");
        // SIGKILL: no destructor runs, only the kernel's parent-death signal.
        owner.kill().unwrap();
        owner.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{sleeper}")).exists() {
            let state =
                std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            // A zombie re-parented to init is dead, only not yet reaped.
            if state
                .split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sleep {sleeper} outlived its SIGKILLed owner"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
