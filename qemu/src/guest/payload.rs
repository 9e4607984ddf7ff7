//! Running the payload as it runs on the host and forwarding its output.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use nix::mount::{MsFlags, mount};

use super::Error;
use super::channel::Channel;
use crate::frame::Stream;
use crate::layout::{PAYLOAD_SPEC, PayloadSpec, staged};

/// The most bytes one output frame carries.
const CHUNK: usize = 16 * 1024;

/// Binds the payload's host paths into place, runs it to its end and
/// returns its exit code.
pub(super) fn run(channel: &mut Channel, args: &[String]) -> Result<i32, Error> {
    let text = std::fs::read_to_string(PAYLOAD_SPEC).map_err(|source| Error::Io {
        what: "reading",
        path: PAYLOAD_SPEC,
        source,
    })?;
    let spec: PayloadSpec = serde_json::from_str(&text).map_err(|source| Error::Layout {
        path: PAYLOAD_SPEC,
        source,
    })?;
    for root in &spec.roots {
        bind_read_only(root)?;
    }
    let spawn_error = |source| Error::Io {
        what: "running",
        path: "the payload",
        source,
    };
    let mut child = Command::new(&spec.program)
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let (sender, chunks) = mpsc::channel();
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
        std::thread::spawn(move || forward_chunks(stream, kind, &sender));
    }
    drop(sender);
    for (kind, bytes) in chunks {
        channel.send_output(kind, &bytes)?;
    }
    let status = child.wait().map_err(spawn_error)?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1))
}

/// Binds the packed copy of host path `root` onto `root`, read-only,
/// creating the mount point (in whatever file system holds it: the
/// initramfs, or the tmpfs on `/tmp`).
fn bind_read_only(root: &Path) -> Result<(), Error> {
    let source = staged(root);
    let failed = |what| {
        move |source| Error::Io {
            what,
            path: "a mount point for a payload path",
            source,
        }
    };
    if source.is_dir() {
        std::fs::create_dir_all(root).map_err(failed("creating"))?;
    } else {
        if let Some(parent) = root.parent() {
            std::fs::create_dir_all(parent).map_err(failed("creating"))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root)
            .map_err(failed("creating"))?;
    }
    let bind = |flags| {
        mount(Some(&source), root, None::<&str>, flags, None::<&str>).map_err(|source| {
            Error::Mount {
                fstype: "bind",
                target: "a payload path",
                source,
            }
        })
    };
    bind(MsFlags::MS_BIND | MsFlags::MS_REC)?;
    bind(MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)
}

/// Sends what `stream` gives as it comes, marked as `kind`, in chunks of
/// at most [`CHUNK`] bytes.
fn forward_chunks(
    mut stream: Box<dyn Read + Send>,
    kind: Stream,
    sender: &mpsc::Sender<(Stream, Vec<u8>)>,
) {
    let mut buffer = vec![0; CHUNK];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if sender.send((kind, buffer[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_forwarded_byte_for_byte_with_its_stream() {
        let (sender, receiver) = mpsc::channel();
        let text = b"one\ntwo\n\xff last without newline";
        forward_chunks(Box::new(&text[..]), Stream::Stderr, &sender);
        drop(sender);
        let chunks: Vec<(Stream, Vec<u8>)> = receiver.iter().collect();
        assert!(chunks.iter().all(|(kind, _)| *kind == Stream::Stderr));
        assert_eq!(joined(&chunks), text);
    }

    #[test]
    fn long_output_is_cut_into_bounded_chunks() {
        let (sender, receiver) = mpsc::channel();
        let text = vec![b'x'; 3 * CHUNK + 1];
        forward_chunks(
            Box::new(std::io::Cursor::new(text.clone())),
            Stream::Stdout,
            &sender,
        );
        drop(sender);
        let chunks: Vec<(Stream, Vec<u8>)> = receiver.iter().collect();
        assert!(chunks.iter().all(|(_, bytes)| bytes.len() <= CHUNK));
        assert_eq!(joined(&chunks), text);
    }

    fn joined(chunks: &[(Stream, Vec<u8>)]) -> Vec<u8> {
        chunks.iter().flat_map(|(_, bytes)| bytes.clone()).collect()
    }
}
