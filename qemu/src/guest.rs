//! The guest side: what the program calls when it runs as `/init` (PID 1)
//! inside a VM started by [`crate::launch::run`].
//!
//! [`init`] mounts the basic file systems, loads the packed kernel modules and
//! opens the result channel; [`Guest::send`] sends messages;
//! [`Guest::finish`] sends the end frame and powers the VM off. If setting up
//! fails, [`init`] reports the error on the channel (or the console) and
//! powers off itself: PID 1 never hangs and never returns an error it could
//! not report.

mod channel;
mod cmdline;
mod modules;
mod mounts;
mod payload;

use std::path::Path;

use nix::sys::reboot::{RebootMode, reboot};

use crate::layout::ARGS_PATH;
use channel::Channel;
pub use modules::ModuleReport;

/// Exit code in the end frame when the guest's own setup failed.
pub const SETUP_FAILED_EXIT_CODE: i32 = 125;

/// Starts the message the guest sends before [`SETUP_FAILED_EXIT_CODE`]:
/// the reason follows it ([`setup_failure`]).
const SETUP_FAILED: &str = "portrange guest: setup failed: ";

/// The reason in a message the guest sent when its setup failed, if
/// `message` is one.
pub fn setup_failure(message: &str) -> Option<&str> {
    message.strip_prefix(SETUP_FAILED)
}

/// Why the guest side failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`init`] was called outside a VM.
    #[error(
        "not running as /init of a portrange VM (PID 1 with {ARGS_PATH}): start the program with qemu::launch::run"
    )]
    NotGuest,
    /// A file system could not be mounted.
    #[error("mounting {fstype} on {target} failed")]
    Mount {
        /// File system type.
        fstype: &'static str,
        /// Mount point.
        target: &'static str,
        /// The error from mount(2).
        source: nix::Error,
    },
    /// A guest file could not be used.
    #[error("{what} {path} failed")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file.
        path: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file the host packed is not what it should be.
    #[error(
        "{path} is unreadable (the initramfs was not written by this version of qemu::initramfs)"
    )]
    Layout {
        /// The file.
        path: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The result channel's device could not be used.
    #[error("{what} the result channel {device} failed")]
    ChannelDevice {
        /// What was attempted.
        what: &'static str,
        /// The device, as the host named it.
        device: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The result channel could not be configured.
    #[error("configuring the result channel failed")]
    Channel {
        /// The termios error.
        source: nix::Error,
    },
    /// The kernel booted without the command line the host passed: its
    /// built-in one replaced it.
    #[error(
        "the kernel did not get the command line portrange passed ({passed:?}): it booted with \
         {booted:?}, its built-in command line in place of the boot loader's \
         (CONFIG_CMDLINE_OVERRIDE on x86, CONFIG_CMDLINE_FORCE on arm64), so the console \
         portrange reads for faults is not the kernel's: build the kernel without that option"
    )]
    CommandLineIgnored {
        /// What the host passed.
        passed: String,
        /// `/proc/cmdline`.
        booted: String,
    },
}

/// The running guest: its arguments, its modules and its result channel.
#[derive(Debug)]
pub struct Guest {
    args: Vec<String>,
    command_line: String,
    modules: ModuleReport,
    channel: Channel,
}

/// Whether this process is the `/init` of a VM started by [`crate::launch::run`].
pub fn is_guest() -> bool {
    nix::unistd::getpid().as_raw() == 1 && Path::new(ARGS_PATH).exists()
}

/// Sets the guest up. Outside a VM this returns [`Error::NotGuest`]; inside,
/// a failure is reported on the result channel and the VM powers off, so
/// this returns only on success.
pub fn init() -> Result<Guest, Error> {
    if !is_guest() {
        return Err(Error::NotGuest);
    }
    match set_up() {
        Ok(guest) => Ok(guest),
        Err(error) => report_and_power_off(error),
    }
}

fn set_up() -> Result<Guest, Error> {
    mounts::mount_all()?;
    let channel = Channel::open()?;
    let command_line = cmdline::check()?;
    let text = std::fs::read_to_string(ARGS_PATH).map_err(|source| Error::Io {
        what: "reading",
        path: ARGS_PATH,
        source,
    })?;
    let args = serde_json::from_str(&text).map_err(|source| Error::Layout {
        path: ARGS_PATH,
        source,
    })?;
    let modules = modules::load_all()?;
    Ok(Guest {
        args,
        command_line,
        modules,
        channel,
    })
}

impl Guest {
    /// The argument vector the host gave in `VmConfig::guest_args`.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The kernel command line the guest booted with (`/proc/cmdline`):
    /// the host's, with the kernel's built-in one if it has one.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Which requested modules are loaded, built in, or unavailable and why.
    pub fn module_report(&self) -> &ModuleReport {
        &self.modules
    }

    /// Sends one message to the host.
    pub fn send(&mut self, message: &str) -> Result<(), Error> {
        self.channel.send(message)
    }

    /// Sends one line for the host's stderr (the guest program's own
    /// complaints).
    pub fn send_stderr(&mut self, line: &str) -> Result<(), Error> {
        self.channel.send_stderr(line)
    }

    /// Runs the payload the host packed ([`crate::initramfs::Payload`])
    /// with `args`: binds its host paths into place read-only, starts it
    /// with its environment in its working directory, and sends what it
    /// writes on stdout and stderr, byte for byte as it comes. Returns its
    /// exit code (128 + signal number if a signal ended it).
    pub fn run_payload(&mut self, args: &[String]) -> Result<i32, Error> {
        payload::run(&mut self.channel, args)
    }

    /// Sends the end frame with `exit_code`, waits until it is out, and
    /// powers the VM off.
    pub fn finish(mut self, exit_code: i32) -> ! {
        if let Err(error) = self.channel.end(exit_code) {
            eprintln!(
                "portrange guest: sending the end frame failed: {}",
                chain(error)
            );
        }
        power_off()
    }
}

/// Reports a setup failure wherever possible, then powers off.
fn report_and_power_off(error: Error) -> ! {
    let text = format!("{SETUP_FAILED}{}", chain(error));
    eprintln!("{text}");
    if let Ok(mut channel) = Channel::open() {
        let sent = channel
            .send(&text)
            .and_then(|()| channel.end(SETUP_FAILED_EXIT_CODE));
        if let Err(error) = sent {
            eprintln!(
                "portrange guest: reporting on the result channel failed: {}",
                chain(error)
            );
        }
    }
    power_off()
}

/// `error` and its causes, `: `-separated: messages here describe their own
/// step only and leave the cause to the source chain, which anyhow's
/// alternate form prints.
fn chain(error: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(error))
}

/// Flushes file systems and stops the VM by rebooting: QEMU runs with
/// `-no-reboot`, so a reboot ends it at once on every kernel, where a power
/// off needs ACPI (a minimal kernel without it would only halt and wait
/// for the host's grace period). If even that fails, PID 1 exits, the
/// kernel panics and QEMU (`panic=-1`) stops.
fn power_off() -> ! {
    nix::unistd::sync();
    let Err(error) = reboot(RebootMode::RB_AUTOBOOT);
    eprintln!("portrange guest: reboot failed: {error}");
    std::process::exit(SETUP_FAILED_EXIT_CODE)
}
