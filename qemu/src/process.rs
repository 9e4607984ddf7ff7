//! Child processes that die with the tool: killed and reaped when their
//! owner drops them, and killed by the kernel when the thread that started
//! them dies, even under SIGKILL when no destructor runs.

use std::process::{Child, Command, ExitStatus};

/// Starts `command` bound to the calling thread
/// ([`child_lifetime::bind_to_this_thread`]); the returned guard kills and
/// reaps it when dropped. Every QEMU the tool starts goes through here.
pub(crate) fn spawn(command: &mut Command) -> std::io::Result<Guard> {
    child_lifetime::bind_to_this_thread(command)
        .spawn()
        .map(|child| Guard { child })
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
    use std::path::Path;

    #[test]
    fn dropping_kills_and_reaps() {
        let guard = spawn(Command::new("sleep").arg("60")).unwrap();
        let pid = guard.child.id();
        drop(guard);
        // The process is reaped: its /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
