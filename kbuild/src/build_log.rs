//! What make prints during a build: kept whole in a log file in the output
//! directory, whose path is printed; shown meanwhile as one updating status
//! line on a terminal (elapsed time, objects compiled against the previous
//! build of the same goals, the current step), or as a line every
//! [`QUIET_EVERY`] elsewhere (CI logs); and its last lines when make fails.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::BuildError;

/// The log's name in the output directory; every make of a build appends.
pub const LOG_NAME: &str = "portrange-build.log";

/// How often a status line is printed when stderr is not a terminal.
pub const QUIET_EVERY: Duration = Duration::from_secs(60);

/// How many of the log's last lines a failure shows.
pub const TAIL_LINES: usize = 40;

/// How often the terminal's status line is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// Where the object count of the last successful build of `goals` is kept.
fn count_file(out_dir: &Path, goals: &[&str]) -> PathBuf {
    out_dir.join(format!("portrange-build.{}.objects", goals.join("+")))
}

/// The kbuild step a quiet-mode line shows (`CC [M]`, `LD`, `BTF`, ...),
/// and whether it compiles an object.
fn step(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("  ")?;
    let word = rest
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    let module = usize::from(rest[word..].starts_with(" [M]")) * " [M]".len();
    let (tag, target) = rest.split_at(word + module);
    let well_formed = word > 0 && target.starts_with(' ') && !target.trim().is_empty();
    let compiles = matches!(
        tag,
        "CC" | "CC [M]" | "AS" | "AS [M]" | "RUSTC" | "RUSTC [M]"
    );
    well_formed.then_some((tag, compiles))
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The progress a running make has made.
struct Status {
    started: Instant,
    objects: u64,
    previous: Option<u64>,
    current: String,
}

impl Status {
    fn line(&self) -> String {
        let of = self
            .previous
            .map_or(String::new(), |p| format!(" (last build: {p})"));
        format!(
            "{} elapsed, {} objects compiled{of}; {}",
            clock(self.started.elapsed()),
            self.objects,
            self.current
        )
    }
}

/// Runs `make` (already given its arguments) for `goals` in `out_dir`, its
/// stdout and stderr appended to the log, reporting as the module says.
/// Returns make's exit status; on failure the log's last lines have been
/// printed with its path.
pub fn run(mut make: Command, out_dir: &Path, goals: &[&str]) -> Result<ExitStatus, BuildError> {
    let io = |what: String| move |e| BuildError::Io { what, source: e };
    let log_path = out_dir.join(LOG_NAME);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(format!("open the build log {}", log_path.display())))?;
    writeln!(log, "==> make {}", goals.join(" "))
        .map_err(io(format!("write the build log {}", log_path.display())))?;
    let (reader, writer) = std::io::pipe().map_err(io("create a pipe for make's output".into()))?;
    let writer_too = writer
        .try_clone()
        .map_err(io("duplicate the pipe for make's output".into()))?;
    // make dies with the tool; the compilers it started finish their file.
    let mut child = child_lifetime::bind_to_this_thread(&mut make)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_too)
        .spawn()
        .map_err(|e| BuildError::Spawn {
            program: "make".into(),
            source: e,
        })?;
    // The Command holds the pipe's write ends: drop them so the reader
    // sees end-of-file when make and its children are done.
    drop(make);

    let previous = fs::read_to_string(count_file(out_dir, goals))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let mut status = Status {
        started: Instant::now(),
        objects: 0,
        previous,
        current: format!("make {}", goals.join(" ")),
    };
    let terminal = std::io::stderr().is_terminal();
    eprintln!("kbuild: make's output goes to {}", log_path.display());
    follow(reader, &mut log, &mut status, terminal);
    let exit = child.wait().map_err(|e| BuildError::Spawn {
        program: "make".into(),
        source: e,
    })?;
    if terminal {
        eprint!("\r\x1b[K");
    }
    eprintln!(
        "kbuild: make {}: {} objects compiled in {}",
        goals.join(" "),
        status.objects,
        clock(status.started.elapsed())
    );
    if exit.success() {
        // A missing count only costs the next build its comparison.
        let _ = fs::write(count_file(out_dir, goals), status.objects.to_string());
    } else {
        print_tail(&log_path);
    }
    Ok(exit)
}

/// Copies make's output into the log until it ends, updating the status.
fn follow(reader: std::io::PipeReader, log: &mut File, status: &mut Status, terminal: bool) {
    let (lines, incoming) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut drawn = Instant::now() - REDRAW_EVERY;
    let mut printed = Instant::now();
    loop {
        match incoming.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                // The log is best effort: a full disk fails make too.
                let _ = log.write_all(&line);
                let text = String::from_utf8_lossy(&line);
                if let Some((_, compiles)) = step(text.trim_end()) {
                    status.objects += u64::from(compiles);
                    status.current = text.trim().to_owned();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if terminal && drawn.elapsed() >= REDRAW_EVERY {
            let width = 118;
            let line: String = status.line().chars().take(width).collect();
            eprint!("\r\x1b[Kkbuild: {line}");
            drawn = Instant::now();
        } else if !terminal && printed.elapsed() >= QUIET_EVERY {
            eprintln!("kbuild: {}", status.line());
            printed = Instant::now();
        }
    }
}

/// Prints the log's last [`TAIL_LINES`] lines and its path.
fn print_tail(log_path: &Path) {
    let text = fs::read(log_path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    eprintln!(
        "kbuild: the last {} lines of {}:",
        tail.len(),
        log_path.display()
    );
    for line in tail {
        eprintln!("  | {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_kbuild_lines_are_steps_and_compiles_are_counted() {
        assert_eq!(step("  CC      net/ipv4/ip_sockglue.o"), Some(("CC", true)));
        assert_eq!(step("  CC [M]  net/sctp/socket.o"), Some(("CC [M]", true)));
        assert_eq!(step("  LD      vmlinux.o"), Some(("LD", false)));
        assert_eq!(step("  BTF [M] net/sctp/sctp.ko"), Some(("BTF [M]", false)));
        assert_eq!(step("make[1]: Entering directory '/x'"), None);
        assert_eq!(step("net/ipv4/ip_sockglue.c:12: error: bad"), None);
        assert_eq!(step("  lowercase  not a step"), None);
    }

    #[test]
    fn clock_switches_to_hours() {
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }

    /// A shell standing in for make (tests only): its output is logged,
    /// counted, remembered for the next run, and its tail shown on failure.
    #[test]
    fn output_is_logged_counted_and_remembered() {
        let out = tempfile::tempdir().unwrap();
        let fake_make = |exit: i32| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "echo '  CC      a.o'; echo '  CC [M]  b.o' >&2; echo '  LD      vmlinux'; exit {exit}"
            ));
            c
        };
        let status = run(fake_make(0), out.path(), &["bzImage"]).unwrap();
        assert!(status.success());
        let log = fs::read_to_string(out.path().join(LOG_NAME)).unwrap();
        assert!(log.starts_with("==> make bzImage\n"), "{log}");
        assert!(log.contains("  CC [M]  b.o"), "{log}");
        let remembered = fs::read_to_string(count_file(out.path(), &["bzImage"])).unwrap();
        assert_eq!(remembered, "2");

        let status = run(fake_make(2), out.path(), &["bzImage"]).unwrap();
        assert_eq!(status.code(), Some(2));
        // A failed build does not replace the count of the last good one.
        let remembered = fs::read_to_string(count_file(out.path(), &["bzImage"])).unwrap();
        assert_eq!(remembered, "2");
    }
}
