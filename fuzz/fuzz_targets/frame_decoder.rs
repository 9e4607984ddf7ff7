//! The result-channel decoder (`qemu::frame`) on bytes a guest controls.
//!
//! Every input is used twice:
//!
//! 1. as raw stream bytes: `decode_all` and a `Decoder` fed in chunks whose
//!    sizes come from the input must not panic and must give the same
//!    events (the decoder's split invariance; inputs stay far below the
//!    1 MiB frame limit, the one place where chunking may legitimately
//!    differ);
//! 2. as the description of a stream (through `arbitrary`): messages encoded
//!    with `encode_message`/`encode_end`, with arbitrary garbage between the
//!    frames and after them (raw bytes and well-formed frames with any
//!    sequence number), fed in arbitrary chunks. Every message must come
//!    back, in order and unchanged, with the exit code; the only other
//!    messages are the ones the garbage decodes to on its own. Garbage that
//!    on its own holds an end frame is left out before the real end frame
//!    (it would end the stream). Garbage may add problems (malformed
//!    frames, gaps) but never remove or alter a real message.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use qemu::frame::{Decoded, Decoder, Problem, decode_all, encode_end, encode_message};

/// Noise on the result channel.
#[derive(Debug, Arbitrary)]
enum Noise {
    /// Console text or line noise.
    Bytes(Vec<u8>),
    /// A well-formed message frame with any sequence number (a stale or
    /// replayed frame).
    Message(u64, String),
    /// A well-formed end frame with any sequence number.
    End(u64, i32),
}

/// A stream as the guest would send it, spoiled by noise.
#[derive(Debug, Arbitrary)]
struct Stream {
    /// Each message with the noise that comes before its frame.
    frames: Vec<(Vec<Noise>, String)>,
    /// Noise before the end frame.
    before_end: Vec<Noise>,
    exit_code: i32,
    /// Noise after the end frame.
    trailer: Vec<Noise>,
    /// Chunk sizes for the incremental decoder (0 counts as 1).
    chunks: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    if let Ok(stream) = Stream::arbitrary(&mut Unstructured::new(data)) {
        round_trip(&stream);
    }
});

/// Feeds `bytes` to a fresh decoder in chunks of the given sizes (cycled)
/// and gathers what the events say.
fn chunked(bytes: &[u8], sizes: &[u8]) -> Decoded {
    let mut decoder = Decoder::default();
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().map(|&s| usize::from(s).max(1)).cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        events.extend(decoder.push(chunk));
        rest = tail;
    }
    events.extend(decoder.finish());
    events.into_iter().collect()
}

fn raw(data: &[u8]) {
    let whole = decode_all(data);
    // Problems render without panicking.
    for problem in &whole.problems {
        let _ = problem.to_string();
    }
    // A stream without an end frame always says so, and only then.
    assert_eq!(
        whole.exit_code.is_none(),
        whole.problems.contains(&Problem::MissingEnd),
        "MissingEnd must be reported exactly when no end frame came: {whole:?}"
    );
    // Same events whatever the chunking; the chunk sizes come from the
    // input itself (its bytes, read backwards) and from fixed small sizes.
    let sizes: Vec<u8> = data.iter().rev().take(16).copied().collect();
    for sizes in [&sizes[..], &[1], &[5], &[7, 1, 200]] {
        assert_eq!(
            chunked(data, sizes),
            whole,
            "chunk sizes {sizes:?} changed the events"
        );
    }
}

/// The noise as bytes, and how many messages it decodes to on its own;
/// `None` when it would carry an end frame (that ends the real stream).
fn noise_bytes(noise: &[Noise], after_end: bool) -> Option<(Vec<u8>, usize)> {
    let mut bytes = Vec::new();
    for item in noise {
        match item {
            Noise::Bytes(b) => bytes.extend_from_slice(b),
            Noise::Message(seq, m) => bytes.extend_from_slice(encode_message(*seq, m).as_bytes()),
            Noise::End(seq, code) => bytes.extend_from_slice(encode_end(*seq, *code).as_bytes()),
        }
    }
    let alone = decode_all(&bytes);
    if alone.exit_code.is_some() && !after_end {
        return None;
    }
    Some((bytes, if after_end { 0 } else { alone.messages.len() }))
}

fn is_subsequence(small: &[&str], big: &[String]) -> bool {
    let mut big = big.iter();
    small.iter().all(|s| big.any(|b| b == s))
}

fn round_trip(stream: &Stream) {
    let mut bytes = Vec::new();
    let mut extra = 0;
    let mut seq = 0u64;
    let mut noise = |bytes: &mut Vec<u8>, noise: &[Noise], after_end: bool| {
        if let Some((noise, messages)) = noise_bytes(noise, after_end) {
            bytes.extend_from_slice(&noise);
            extra += messages;
        }
    };
    for (garbage, message) in &stream.frames {
        noise(&mut bytes, garbage, false);
        bytes.extend_from_slice(encode_message(seq, message).as_bytes());
        seq += 1;
    }
    noise(&mut bytes, &stream.before_end, false);
    bytes.extend_from_slice(encode_end(seq, stream.exit_code).as_bytes());
    noise(&mut bytes, &stream.trailer, true);

    let sent: Vec<&str> = stream.frames.iter().map(|(_, m)| m.as_str()).collect();
    let whole = decode_all(&bytes);
    assert!(
        is_subsequence(&sent, &whole.messages),
        "messages lost or altered: sent {sent:?}, got {whole:?}"
    );
    assert_eq!(
        whole.messages.len(),
        sent.len() + extra,
        "messages appeared from nowhere: sent {sent:?}, got {whole:?}"
    );
    assert_eq!(whole.exit_code, Some(stream.exit_code), "{whole:?}");
    assert!(!whole.problems.contains(&Problem::MissingEnd), "{whole:?}");
    assert_eq!(
        chunked(&bytes, &stream.chunks),
        whole,
        "chunks {:?}",
        stream.chunks
    );
}
