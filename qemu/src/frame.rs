//! The framing codec of the result channel (the guest's second serial port).
//!
//! One message becomes one ASCII frame on its own line:
//!
//! ```text
//! {{PR1|<seq>|<kind>|<crc32>|<escaped payload>}}
//! ```
//!
//! - `seq` counts frames from 0, so a lost frame shows as a gap;
//! - `kind` is `m` for a message, `s` for a line the guest program writes
//!   for the host's stderr, `1` and `2` for bytes a payload program wrote to
//!   its stdout and its stderr (any bytes, as read from the pipe), and `e`
//!   for the end frame, whose payload is the guest's exit code in decimal;
//! - `crc32` (8 lowercase hex digits, CRC-32/ISO-HDLC as computed by the
//!   `crc32fast` crate) covers `<seq>|<kind>|` followed by the raw payload;
//! - the payload is the message's UTF-8 bytes where every byte outside
//!   printable ASCII, and `%`, `|`, `{` and `}`, is written as `%XX`, so a
//!   frame never holds a newline, a separator or its own terminator.
//!
//! The decoder looks for the magic anywhere in the byte stream, so kernel log
//! text before or after a frame, on the same line or between lines, is
//! skipped; text that lands inside a frame breaks its checksum or shape and
//! is reported, never silently accepted.

mod decode;
mod encode;

pub use decode::{Decoded, Decoder, Event, Problem, decode_all};
pub use encode::{encode_end, encode_message, encode_output, encode_stderr};

/// Marks the start of a frame.
const MAGIC: &str = "{{PR1|";
/// Marks the end of a frame.
const TERMINATOR: &str = "}}";
/// Kind field of a message frame.
const KIND_MESSAGE: &str = "m";
/// Kind field of a line for the host's stderr.
const KIND_STDERR: &str = "s";
/// Kind field of bytes a payload wrote to its stdout.
const KIND_PAYLOAD_STDOUT: &str = "1";
/// Kind field of bytes a payload wrote to its stderr.
const KIND_PAYLOAD_STDERR: &str = "2";

/// One of a payload program's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

impl Stream {
    fn kind(self) -> &'static str {
        match self {
            Stream::Stdout => KIND_PAYLOAD_STDOUT,
            Stream::Stderr => KIND_PAYLOAD_STDERR,
        }
    }
}
/// Kind field of the end frame.
const KIND_END: &str = "e";

/// The checksum of one frame: CRC-32 over the header fields and the raw payload.
fn checksum(seq: u64, kind: &str, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(format!("{seq}|{kind}|").as_bytes());
    hasher.update(payload);
    hasher.finalize()
}
