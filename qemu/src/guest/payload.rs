//! Running `/payload` and forwarding its output as messages.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use super::Error;
use super::channel::Channel;
use crate::layout::PAYLOAD_PATH;

/// Which of the payload's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Runs the payload to its end and returns its exit code.
pub(super) fn run(channel: &mut Channel, args: &[String]) -> Result<i32, Error> {
    let spawn_error = |source| Error::Io {
        what: "running",
        path: PAYLOAD_PATH,
        source,
    };
    let mut child = Command::new(PAYLOAD_PATH)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let (sender, lines) = mpsc::channel();
    let streams: [(Option<Box<dyn Read + Send>>, Stream); 2] = [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            Stream::Stdout,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            Stream::Stderr,
        ),
    ];
    for (stream, kind) in streams {
        let Some(stream) = stream else { continue };
        let sender = sender.clone();
        std::thread::spawn(move || forward_lines(stream, kind, &sender));
    }
    drop(sender);
    for (kind, line) in lines {
        match kind {
            Stream::Stdout => channel.send(&line)?,
            Stream::Stderr => channel.send_stderr(&line)?,
        }
    }
    let status = child.wait().map_err(spawn_error)?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1))
}

/// Sends each line of `stream` (without its newline), marked as `kind`.
fn forward_lines(
    stream: Box<dyn Read + Send>,
    kind: Stream,
    sender: &mpsc::Sender<(Stream, String)>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while let Ok(1..) = reader.read_until(b'\n', &mut line) {
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n');
        if sender.send((kind, text.to_owned())).is_err() {
            return;
        }
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_forwarded_with_their_stream() {
        let (sender, receiver) = mpsc::channel();
        forward_lines(
            Box::new(&b"one\ntwo\nlast without newline"[..]),
            Stream::Stderr,
            &sender,
        );
        drop(sender);
        let lines: Vec<(Stream, String)> = receiver.iter().collect();
        let stderr = |text: &str| (Stream::Stderr, text.to_owned());
        assert_eq!(
            lines,
            [stderr("one"), stderr("two"), stderr("last without newline")]
        );
    }
}
