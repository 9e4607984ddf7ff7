//! Child processes that die with the tool.
//!
//! Every process the tool starts (QEMU, the KVM probe's QEMU, a case run in
//! a process of its own) must end when the tool does, even when the tool is
//! killed with SIGKILL and no destructor runs. The kernel's parent-death
//! signal does that; [`bind_to_this_thread`] is the one place it is set.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// Makes the child `command` starts receive SIGKILL when the calling thread
/// ends (prctl `PR_SET_PDEATHSIG`, which follows the thread that forked,
/// not the process), and die at once if that already happened between fork
/// and the prctl call. Spawn from a thread that lives as long as the child
/// should.
pub fn bind_to_this_thread(command: &mut Command) -> &mut Command {
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// Set in the re-executed test binary: it starts `sleep` bound to its
    /// thread, prints the sleeper's pid and waits to be killed.
    const CHILD_ROLE: &str = "CHILD_LIFETIME_TEST_OWNER";

    #[test]
    fn a_bound_child_dies_with_its_sigkilled_owner() {
        if std::env::var_os(CHILD_ROLE).is_some() {
            let mut sleeper = bind_to_this_thread(Command::new("sleep").arg("600"))
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            // libtest may have begun the test's own line: start a new one.
            println!("\nsleeper {}", sleeper.id());
            std::thread::sleep(Duration::from_secs(600));
            // Only reached if nobody killed this owner.
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            return;
        }
        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::a_bound_child_dies_with_its_sigkilled_owner",
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
            let stat = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
            // A zombie re-parented to init is dead, only not yet reaped.
            if stat
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
