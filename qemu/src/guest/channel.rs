//! The result channel: frames written to the serial port named in
//! [`CHANNEL_PATH`].

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;
use nix::sys::termios::{SetArg, cfmakeraw, tcdrain, tcgetattr, tcsetattr};

use super::Error;
use crate::frame::{Stream, encode_end, encode_message, encode_output, encode_stderr};
use crate::layout::CHANNEL_PATH;

/// The open serial port and the next sequence number.
#[derive(Debug)]
pub(super) struct Channel {
    port: File,
    device: String,
    next_seq: u64,
}

impl Channel {
    /// Opens the port in raw mode, so bytes go out unchanged.
    pub(super) fn open() -> Result<Self, Error> {
        let device = std::fs::read_to_string(CHANNEL_PATH).map_err(|source| Error::Io {
            what: "reading",
            path: CHANNEL_PATH,
            source,
        })?;
        let port = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(OFlag::O_NOCTTY.bits())
            .open(&device)
            .map_err(|source| Error::ChannelDevice {
                what: "opening",
                device: device.clone(),
                source,
            })?;
        let mut settings = tcgetattr(&port).map_err(|source| Error::Channel { source })?;
        cfmakeraw(&mut settings);
        tcsetattr(&port, SetArg::TCSANOW, &settings).map_err(|source| Error::Channel { source })?;
        Ok(Self {
            port,
            device,
            next_seq: 0,
        })
    }

    pub(super) fn send(&mut self, message: &str) -> Result<(), Error> {
        let frame = encode_message(self.next_seq, message);
        self.write(&frame)
    }

    /// Sends `line` as a line of stderr.
    pub(super) fn send_stderr(&mut self, line: &str) -> Result<(), Error> {
        let frame = encode_stderr(self.next_seq, line);
        self.write(&frame)
    }

    /// Sends `bytes` a payload wrote to `stream`.
    pub(super) fn send_output(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), Error> {
        let frame = encode_output(self.next_seq, stream, bytes);
        self.write(&frame)
    }

    /// Sends the end frame.
    pub(super) fn end(&mut self, exit_code: i32) -> Result<(), Error> {
        let frame = encode_end(self.next_seq, exit_code);
        self.write(&frame)
    }

    /// Writes `frame` and waits until the port has sent it (tcdrain), so a
    /// frame written is with QEMU, and so on the host, even if the kernel
    /// dies right after: without the wait, a crash in the next step lost
    /// the frame still in the kernel's tty buffer (seen on arm64 under
    /// load: `qemu/tests/vm.rs::arm64_kernel_crash_is_a_kernel_panic`).
    fn write(&mut self, frame: &str) -> Result<(), Error> {
        self.port
            .write_all(frame.as_bytes())
            .map_err(|source| Error::ChannelDevice {
                what: "writing to",
                device: self.device.clone(),
                source,
            })?;
        tcdrain(&self.port).map_err(|source| Error::Channel { source })?;
        self.next_seq += 1;
        Ok(())
    }
}
