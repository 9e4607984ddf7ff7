//! Turning messages into frames.

use super::{KIND_END, KIND_MESSAGE, KIND_STDERR, MAGIC, Stream, TERMINATOR, checksum};

/// Encodes `message` as frame number `seq`, a single line ending in `\n`.
pub fn encode_message(seq: u64, message: &str) -> String {
    frame(seq, KIND_MESSAGE, message.as_bytes())
}

/// Encodes `line`, which the guest program has for the host's stderr, as
/// frame number `seq`.
pub fn encode_stderr(seq: u64, line: &str) -> String {
    frame(seq, KIND_STDERR, line.as_bytes())
}

/// Encodes `bytes`, which a payload program wrote to `stream`, as frame
/// number `seq`.
pub fn encode_output(seq: u64, stream: Stream, bytes: &[u8]) -> String {
    frame(seq, stream.kind(), bytes)
}

/// Encodes the end frame number `seq`, carrying the guest's exit code.
pub fn encode_end(seq: u64, exit_code: i32) -> String {
    frame(seq, KIND_END, exit_code.to_string().as_bytes())
}

fn frame(seq: u64, kind: &str, payload: &[u8]) -> String {
    let crc = checksum(seq, kind, payload);
    format!(
        "{MAGIC}{seq}|{kind}|{crc:08x}|{}{TERMINATOR}\n",
        escape(payload)
    )
}

/// Whether `byte` may appear literally in an escaped payload.
pub(super) fn is_literal(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte) && !matches!(byte, b'%' | b'|' | b'{' | b'}')
}

fn escape(payload: &[u8]) -> String {
    let mut out = String::with_capacity(payload.len());
    for &byte in payload {
        if is_literal(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_stays_readable() {
        let line = encode_message(0, "ok 1 - bind");
        assert!(line.starts_with("{{PR1|0|m|"));
        assert!(line.ends_with("|ok 1 - bind}}\n"));
    }

    #[test]
    fn special_bytes_are_escaped() {
        let line = encode_message(3, "a|b{c}%d\ne\u{e9}");
        assert!(line.ends_with("|a%7Cb%7Bc%7D%25d%0Ae%C3%A9}}\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn stderr_lines_have_a_kind_of_their_own() {
        let line = encode_stderr(2, "warning: x");
        assert!(line.starts_with("{{PR1|2|s|"), "{line}");
        assert!(line.ends_with("|warning: x}}\n"));
    }

    #[test]
    fn payload_output_is_marked_with_its_stream() {
        let out = encode_output(4, Stream::Stdout, b"ok\n");
        assert!(out.starts_with("{{PR1|4|1|"), "{out}");
        assert!(out.ends_with("|ok%0A}}\n"), "{out}");
        let err = encode_output(5, Stream::Stderr, &[0xff]);
        assert!(err.starts_with("{{PR1|5|2|"), "{err}");
        assert!(err.ends_with("|%FF}}\n"), "{err}");
    }

    #[test]
    fn end_frame_carries_exit_code() {
        let line = encode_end(7, -3);
        assert!(line.starts_with("{{PR1|7|e|"));
        assert!(line.ends_with("|-3}}\n"));
    }
}
