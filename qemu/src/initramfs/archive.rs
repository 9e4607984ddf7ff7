//! A newc cpio writer that creates parent directories on the way.

use std::collections::BTreeSet;
use std::io::{self, Write};

use cpio::newc::{Builder, ModeFileType, trailer};

/// Permission bits of directories.
const DIR_MODE: u32 = 0o755;

/// A newc archive being written.
pub(super) struct Archive<W: Write> {
    out: Option<W>,
    dirs: BTreeSet<String>,
    next_ino: u32,
}

impl<W: Write> Archive<W> {
    pub(super) fn new(out: W) -> Self {
        Self {
            out: Some(out),
            dirs: BTreeSet::new(),
            next_ino: 1,
        }
    }

    /// Adds a directory (and its parents) unless already there.
    pub(super) fn dir(&mut self, path: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        self.dirs.insert(path.to_string());
        let entry = self
            .builder(path)
            .mode(DIR_MODE)
            .set_mode_file_type(ModeFileType::Directory)
            .nlink(2);
        self.put(entry, &[])
    }

    /// Adds a regular file with permission bits `mode`.
    pub(super) fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        let entry = self
            .builder(path)
            .mode(mode)
            .set_mode_file_type(ModeFileType::Regular);
        self.put(entry, data)
    }

    /// Adds a symbolic link to `target`.
    pub(super) fn symlink(&mut self, path: &str, target: &[u8]) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        let entry = self
            .builder(path)
            .mode(0o777)
            .set_mode_file_type(ModeFileType::Symlink);
        self.put(entry, target)
    }

    /// Adds a character device node.
    pub(super) fn char_device(&mut self, path: &str, major: u32, minor: u32) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        let entry = self
            .builder(path)
            .mode(0o600)
            .set_mode_file_type(ModeFileType::Char)
            .rdev_major(major)
            .rdev_minor(minor);
        self.put(entry, &[])
    }

    /// Writes the trailer and returns the output.
    pub(super) fn finish(mut self) -> io::Result<W> {
        trailer(self.take_out())
    }

    fn builder(&mut self, path: &str) -> Builder {
        self.next_ino += 1;
        Builder::new(path).ino(self.next_ino)
    }

    fn put(&mut self, entry: Builder, data: &[u8]) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "file larger than 4 GiB for cpio",
            )
        })?;
        let mut writer = entry.write(self.take_out(), size);
        writer.write_all(data)?;
        self.out = Some(writer.finish()?);
        Ok(())
    }

    fn take_out(&mut self) -> W {
        self.out
            .take()
            .expect("archive output is present between entries")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bytes: Vec<u8>) -> Vec<(String, u32, Vec<u8>)> {
        let mut reader_input = &bytes[..];
        let mut out = Vec::new();
        loop {
            let mut reader = cpio::NewcReader::new(reader_input).unwrap();
            if reader.entry().is_trailer() {
                return out;
            }
            let name = reader.entry().name().to_string();
            let mode = reader.entry().mode();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
            out.push((name, mode, data));
            reader_input = reader.finish().unwrap();
        }
    }

    #[test]
    fn parents_come_first_and_once() {
        let mut archive = Archive::new(Vec::new());
        archive
            .file("/lib/x86_64-linux-gnu/libc.so.6", 0o755, b"elf")
            .unwrap();
        archive
            .file("/lib/x86_64-linux-gnu/libm.so.6", 0o644, b"m")
            .unwrap();
        archive.char_device("/dev/console", 5, 1).unwrap();
        archive
            .symlink("/lib/libc.so", b"x86_64-linux-gnu/libc.so.6")
            .unwrap();
        let entries = names(archive.finish().unwrap());
        let listed: Vec<&str> = entries.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(
            listed,
            [
                "lib",
                "lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu/libc.so.6",
                "lib/x86_64-linux-gnu/libm.so.6",
                "dev",
                "dev/console",
                "lib/libc.so"
            ]
        );
        assert_eq!(entries[6].1, 0o120777);
        assert_eq!(entries[6].2, b"x86_64-linux-gnu/libc.so.6");
        assert_eq!(entries[2].1, 0o100755);
        assert_eq!(entries[2].2, b"elf");
        assert_eq!(entries[5].1, 0o020600);
    }
}
