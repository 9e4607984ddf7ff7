//! Finding frames in a byte stream that also carries other text.

use super::encode::is_literal;
use super::{
    KIND_END, KIND_MESSAGE, KIND_PAYLOAD_STDERR, KIND_PAYLOAD_STDOUT, KIND_STDERR, MAGIC, Stream,
    TERMINATOR, checksum,
};

/// Longest frame text accepted before it counts as broken (1 MiB).
const MAX_FRAME: usize = 1 << 20;

/// Something the decoder found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message, in order.
    Message(String),
    /// A line the guest program has for the host's stderr, in order.
    Stderr(String),
    /// Bytes a payload program wrote to one of its output streams, in order.
    Output {
        /// Which stream.
        stream: Stream,
        /// The bytes, as read from the stream.
        bytes: Vec<u8>,
    },
    /// The end frame with the guest's exit code.
    End {
        /// Exit code the guest reported.
        exit_code: i32,
    },
    /// A defect of the stream; the results cannot be trusted as complete.
    Problem(Problem),
}

/// A defect of the result stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A frame's checksum did not match its contents.
    BadChecksum {
        /// The (unverified) sequence number the frame claimed.
        seq: String,
    },
    /// Frames were lost or came out of order.
    Gap {
        /// The sequence number that was due.
        expected: u64,
        /// The sequence number that came.
        found: u64,
    },
    /// A frame started but did not have the expected shape.
    Malformed {
        /// The frame text, cut to a readable length.
        text: String,
    },
    /// The stream ended in the middle of a frame.
    Truncated {
        /// The partial frame text, cut to a readable length.
        text: String,
    },
    /// The stream ended without an end frame.
    MissingEnd,
    /// A frame came after the end frame.
    AfterEnd,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadChecksum { seq } => write!(f, "frame {seq}: checksum mismatch"),
            Problem::Gap { expected, found } => {
                write!(f, "frame {expected} expected, frame {found} came")
            }
            Problem::Malformed { text } => write!(f, "malformed frame: {text}"),
            Problem::Truncated { text } => write!(f, "stream ended inside a frame: {text}"),
            Problem::MissingEnd => write!(f, "stream ended without an end frame"),
            Problem::AfterEnd => write!(f, "frame after the end frame"),
        }
    }
}

/// Everything decoded from a complete stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Messages in the order they were sent.
    pub messages: Vec<String>,
    /// The guest program's lines for the host's stderr, in the order they
    /// were sent.
    pub stderr: Vec<String>,
    /// A payload's output, chunk by chunk in the order it was sent.
    pub output: Vec<(Stream, Vec<u8>)>,
    /// The exit code from the end frame, if one arrived.
    pub exit_code: Option<i32>,
    /// Defects found; empty for a clean stream.
    pub problems: Vec<Problem>,
}

/// Decodes a complete stream at once.
pub fn decode_all(bytes: &[u8]) -> Decoded {
    let mut decoder = Decoder::default();
    let events = decoder.push(bytes);
    events.into_iter().chain(decoder.finish()).collect()
}

impl FromIterator<Event> for Decoded {
    /// Everything a stream's events say, in their order.
    fn from_iter<I: IntoIterator<Item = Event>>(events: I) -> Self {
        let mut decoded = Decoded::default();
        for event in events {
            match event {
                Event::Message(message) => decoded.messages.push(message),
                Event::Stderr(line) => decoded.stderr.push(line),
                Event::Output { stream, bytes } => decoded.output.push((stream, bytes)),
                Event::End { exit_code } => decoded.exit_code = Some(exit_code),
                Event::Problem(problem) => decoded.problems.push(problem),
            }
        }
        decoded
    }
}

/// Incremental decoder: feed it chunks as they arrive, then call
/// [`Decoder::finish`] once the stream is over.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    next_seq: u64,
    ended: bool,
}

impl Decoder {
    /// Adds bytes from the stream and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        loop {
            let Some(start) = find(&self.pending, MAGIC.as_bytes()) else {
                // Keep a tail that may be the beginning of a split magic.
                let keep = self.pending.len().min(MAGIC.len() - 1);
                self.pending.drain(..self.pending.len() - keep);
                break;
            };
            self.pending.drain(..start);
            let body = &self.pending[MAGIC.len()..];
            let end = find(body, TERMINATOR.as_bytes());
            let broken_at = body
                .iter()
                .position(|&b| b == b'\n')
                .into_iter()
                .chain(find(body, MAGIC.as_bytes()))
                .min();
            match (end, broken_at) {
                (Some(end), broken) if broken.is_none_or(|b| end < b) => {
                    let text = String::from_utf8_lossy(&body[..end]).into_owned();
                    self.pending.drain(..MAGIC.len() + end + TERMINATOR.len());
                    events.extend(self.check(&text));
                }
                (_, Some(broken)) => {
                    let text = String::from_utf8_lossy(&body[..broken]).into_owned();
                    self.pending.drain(..MAGIC.len() + broken);
                    events.push(Event::Problem(Problem::Malformed {
                        text: shorten(&text),
                    }));
                }
                (_, None) if body.len() > MAX_FRAME => {
                    let text = String::from_utf8_lossy(&body[..80]).into_owned();
                    self.pending.drain(..MAGIC.len());
                    events.push(Event::Problem(Problem::Malformed {
                        text: shorten(&text),
                    }));
                }
                (_, None) => break,
            }
        }
        events
    }

    /// Ends the stream: reports a partial frame and a missing end frame.
    pub fn finish(self) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(start) = find(&self.pending, MAGIC.as_bytes()) {
            let text = String::from_utf8_lossy(&self.pending[start..]).into_owned();
            events.push(Event::Problem(Problem::Truncated {
                text: shorten(&text),
            }));
        }
        if !self.ended {
            events.push(Event::Problem(Problem::MissingEnd));
        }
        events
    }

    /// Checks one frame's text (between magic and terminator); a frame after
    /// a gap is still delivered, after the gap.
    fn check(&mut self, text: &str) -> Vec<Event> {
        let malformed = || {
            vec![Event::Problem(Problem::Malformed {
                text: shorten(text),
            })]
        };
        let fields: Vec<&str> = text.splitn(4, '|').collect();
        let [seq_text, kind, crc_text, escaped] = fields[..] else {
            return malformed();
        };
        let (Ok(seq), Ok(crc), Some(payload)) = (
            seq_text.parse::<u64>(),
            u32::from_str_radix(crc_text, 16),
            unescape(escaped),
        ) else {
            return malformed();
        };
        // No stream reaches the last sequence number; a frame claiming it
        // would leave no successor to expect.
        let Some(next_seq) = seq.checked_add(1) else {
            return malformed();
        };
        if checksum(seq, kind, &payload) != crc {
            return vec![Event::Problem(Problem::BadChecksum {
                seq: seq_text.to_string(),
            })];
        }
        if self.ended {
            return vec![Event::Problem(Problem::AfterEnd)];
        }
        let mut events = Vec::new();
        if seq != self.next_seq {
            events.push(Event::Problem(Problem::Gap {
                expected: self.next_seq,
                found: seq,
            }));
        }
        self.next_seq = next_seq;
        let stream = match kind {
            KIND_PAYLOAD_STDOUT => Some(Stream::Stdout),
            KIND_PAYLOAD_STDERR => Some(Stream::Stderr),
            _ => None,
        };
        if let Some(stream) = stream {
            events.push(Event::Output {
                stream,
                bytes: payload,
            });
            return events;
        }
        let Ok(payload) = String::from_utf8(payload) else {
            return malformed();
        };
        let event = match (kind, payload.parse()) {
            (KIND_MESSAGE, _) => Event::Message(payload),
            (KIND_STDERR, _) => Event::Stderr(payload),
            (KIND_END, Ok(exit_code)) => {
                self.ended = true;
                Event::End { exit_code }
            }
            _ => return malformed(),
        };
        events.push(event);
        events
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn unescape(escaped: &str) -> Option<Vec<u8>> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if is_literal(bytes[i]) {
            out.push(bytes[i]);
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 120;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sequence_number_is_refused_not_an_overflow() {
        let decoded = decode_all(crate::frame::encode_message(u64::MAX, "x").as_bytes());
        assert!(decoded.messages.is_empty());
        assert!(matches!(decoded.problems[0], Problem::Malformed { .. }));
    }
    use crate::frame::{encode_end, encode_message, encode_output, encode_stderr};

    fn stream(messages: &[&str], exit_code: i32) -> String {
        let mut out = String::new();
        for (seq, message) in messages.iter().enumerate() {
            out.push_str(&encode_message(seq as u64, message));
        }
        out.push_str(&encode_end(messages.len() as u64, exit_code));
        out
    }

    #[test]
    fn round_trip_of_awkward_messages() {
        let messages = [
            "",
            "plain",
            "with\nnewline\r\n",
            "{{PR1|fake}}",
            "100% | pipes",
            "\u{0}\u{7f}é漢",
        ];
        let decoded = decode_all(stream(&messages, 4).as_bytes());
        assert_eq!(decoded.messages, messages);
        assert_eq!(decoded.exit_code, Some(4));
        assert!(decoded.problems.is_empty(), "{:?}", decoded.problems);
    }

    #[test]
    fn stderr_lines_stay_apart_from_messages() {
        let text = encode_message(0, "out") + &encode_stderr(1, "err") + &encode_end(2, 0);
        let decoded = decode_all(text.as_bytes());
        assert_eq!(decoded.messages, ["out"]);
        assert_eq!(decoded.stderr, ["err"]);
        assert!(decoded.problems.is_empty(), "{:?}", decoded.problems);
    }

    #[test]
    fn payload_output_keeps_its_bytes_and_its_interleaving() {
        let text = encode_output(0, Stream::Stdout, b"test a ... ")
            + &encode_output(1, Stream::Stderr, b"\xffpanicked\r\n")
            + &encode_output(2, Stream::Stdout, b"ok\n")
            + &encode_end(3, 101);
        let decoded = decode_all(text.as_bytes());
        assert_eq!(
            decoded.output,
            [
                (Stream::Stdout, b"test a ... ".to_vec()),
                (Stream::Stderr, b"\xffpanicked\r\n".to_vec()),
                (Stream::Stdout, b"ok\n".to_vec()),
            ]
        );
        assert!(decoded.messages.is_empty() && decoded.stderr.is_empty());
        assert_eq!(decoded.exit_code, Some(101));
        assert!(decoded.problems.is_empty(), "{:?}", decoded.problems);
    }

    #[test]
    fn kernel_text_between_and_around_frames_is_skipped() {
        let text = format!(
            "[    1.234567] random: crng init done\r\n[    1.3] sd 0:0:0:0: x{}\
             [    1.5] another line\n{}trailing kernel text\n",
            encode_message(0, "one").trim_end(),
            encode_message(1, "two") + &encode_end(2, 0),
        );
        let decoded = decode_all(text.as_bytes());
        assert_eq!(decoded.messages, ["one", "two"]);
        assert_eq!(decoded.exit_code, Some(0));
        assert!(decoded.problems.is_empty(), "{:?}", decoded.problems);
    }

    #[test]
    fn kernel_line_inside_a_frame_is_reported() {
        let frame = encode_message(0, "a long enough message");
        let broken = format!(
            "{}\n[   2.0] kernel says hi\n{}",
            &frame[..20],
            &frame[20..]
        );
        let text = broken + &encode_end(1, 0);
        let decoded = decode_all(text.as_bytes());
        assert!(decoded.messages.is_empty());
        assert!(matches!(decoded.problems[0], Problem::Malformed { .. }));
        assert!(decoded.problems.contains(&Problem::Gap {
            expected: 0,
            found: 1
        }));
    }

    #[test]
    fn kernel_text_spliced_without_newline_breaks_the_checksum() {
        let frame = encode_message(0, "payload text");
        let spliced = format!(
            "{}[ 2.0] oops{}",
            &frame[..frame.len() - 8],
            &frame[frame.len() - 8..]
        );
        let decoded = decode_all(spliced.as_bytes());
        assert!(matches!(
            decoded.problems[0],
            Problem::Malformed { .. } | Problem::BadChecksum { .. }
        ));
    }

    #[test]
    fn flipped_byte_is_a_bad_checksum() {
        let text = stream(&["hello"], 0).replacen("hello", "hellp", 1);
        let decoded = decode_all(text.as_bytes());
        assert_eq!(
            decoded.problems,
            [
                Problem::BadChecksum { seq: "0".into() },
                Problem::Gap {
                    expected: 0,
                    found: 1
                }
            ]
        );
    }

    #[test]
    fn lost_frame_is_a_gap() {
        let text = encode_message(0, "a") + &encode_message(2, "c") + &encode_end(3, 0);
        let decoded = decode_all(text.as_bytes());
        assert_eq!(decoded.messages, ["a", "c"]);
        assert_eq!(
            decoded.problems,
            [Problem::Gap {
                expected: 1,
                found: 2
            }]
        );
    }

    #[test]
    fn truncation_mid_frame_is_reported() {
        let text = stream(&["first", "second"], 0);
        let cut = text.find("second").unwrap();
        let decoded = decode_all(&text.as_bytes()[..cut]);
        assert_eq!(decoded.messages, ["first"]);
        assert_eq!(decoded.exit_code, None);
        assert!(matches!(decoded.problems[0], Problem::Truncated { .. }));
        assert_eq!(decoded.problems[1], Problem::MissingEnd);
    }

    #[test]
    fn missing_end_frame_is_reported() {
        let decoded = decode_all(encode_message(0, "only").as_bytes());
        assert_eq!(decoded.messages, ["only"]);
        assert_eq!(decoded.problems, [Problem::MissingEnd]);
    }

    #[test]
    fn chunks_split_anywhere_give_the_same_events() {
        let text = format!("noise {}", stream(&["x", "y|z"], 1));
        let bytes = text.as_bytes();
        for size in 1..8 {
            let mut decoder = Decoder::default();
            let mut events: Vec<Event> = bytes.chunks(size).flat_map(|c| decoder.push(c)).collect();
            events.extend(decoder.finish());
            assert_eq!(
                events,
                [
                    Event::Message("x".into()),
                    Event::Message("y|z".into()),
                    Event::End { exit_code: 1 }
                ],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn frame_after_end_is_reported() {
        let text = stream(&[], 0) + &encode_message(1, "late");
        assert_eq!(decode_all(text.as_bytes()).problems, [Problem::AfterEnd]);
    }

    #[test]
    fn garbage_never_panics() {
        let garbage: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let mut text = garbage.clone();
        text.extend_from_slice(b"{{PR1|x|m|zz|%G}}{{PR1|{{PR1|1|e|0|");
        let decoded = decode_all(&text);
        assert!(decoded.messages.is_empty());
        assert!(decoded.problems.contains(&Problem::MissingEnd));
    }
}
