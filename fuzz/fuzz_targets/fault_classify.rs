//! `qemu::fault::classify` on an arbitrary kernel console.
//!
//! Input layout (so seeds are plain console logs): the console text up to
//! the first NUL byte (lossy UTF-8); if a NUL follows, the next byte holds
//! flags (bit 0: the run timed out, after `byte >> 1` seconds) and the rest
//! is the result stream, decoded with `qemu::frame::decode_all`.
//!
//! Asserts, for any input: no panic (classify and the fault's Display); a
//! console holding a marker line gives the most severe marker's fault and
//! its splat holds that line, so the message can name it; no marker and a
//! timeout gives `Timeout`; a clean verdict (`None`) only with an end frame,
//! no timeout and an undamaged stream.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use qemu::fault::{Evidence, Fault, LOCKDEP, classify};
use qemu::frame::{Problem, decode_all};

/// Console markers from the most to the least severe, as `classify` ranks
/// them; the Display of each fault names the text from the marker on.
const MARKERS: &[(&str, &[&str])] = &[
    ("init", &["Attempted to kill init"]),
    ("panic", &["Kernel panic - not syncing"]),
    ("bug", &["kernel BUG at", "Kernel BUG at"]),
    ("ubsan", &["UBSAN: "]),
    (
        "oops",
        &[
            "Oops: ",
            "general protection fault",
            "Unable to handle kernel ",
            "Internal error: ",
        ],
    ),
    ("lockdep", LOCKDEP),
    ("bug", &["kernel BUG at", "Kernel BUG at", "BUG: "]),
    ("warning", &["WARNING: CPU: ", "WARNING: at "]),
];

fn kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::InitDied { .. } => "init",
        Fault::KernelPanic { .. } => "panic",
        Fault::Oops { .. } => "oops",
        Fault::Bug { .. } => "bug",
        Fault::Lockdep { .. } => "lockdep",
        Fault::Ubsan { .. } => "ubsan",
        Fault::Warning { .. } => "warning",
        Fault::Timeout { .. } => "timeout",
        Fault::NoResults { .. } => "no results",
        Fault::CorruptResults { .. } => "corrupt",
        Fault::QemuEnded { .. } => "qemu ended",
    }
}

fuzz_target!(|data: &[u8]| {
    let (console, rest) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    let (flags, stream) = rest.split_first().map_or((0, &[][..]), |(f, s)| (*f, s));
    let console = String::from_utf8_lossy(console);
    let results = decode_all(stream);
    let timed_out = (flags & 1 == 1).then(|| Duration::from_secs(u64::from(flags >> 1)));
    let evidence = Evidence {
        console: &console,
        results: &results,
        timed_out,
        qemu_failed: None,
    };
    let fault = classify(&evidence);
    let message = fault.as_ref().map(ToString::to_string);
    if let Some(fault) = &fault {
        let _ = fault.splat();
    }

    let lines: Vec<&str> = console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    let marked = MARKERS.iter().find_map(|(kind, needles)| {
        let line = lines
            .iter()
            .find(|line| needles.iter().any(|needle| line.contains(needle)))?;
        Some((*kind, *line))
    });
    match (marked, &fault) {
        (Some((expected, line)), Some(fault)) => {
            assert_eq!(kind(fault), expected, "wrong fault for marker line {line:?}");
            assert!(
                fault.splat().iter().any(|l| l == line),
                "the splat of {expected} misses the line that shows it ({line:?}): {:?}",
                fault.splat()
            );
        }
        (Some((expected, line)), None) => {
            panic!("console line {line:?} shows a {expected} but the run was judged clean")
        }
        (None, _) => {
            let damaged = results.problems.iter().any(|p| *p != Problem::MissingEnd);
            let expected = if timed_out.is_some() {
                Some("timeout")
            } else if damaged {
                Some("corrupt")
            } else if results.exit_code.is_none() {
                Some("no results")
            } else {
                None
            };
            assert_eq!(fault.as_ref().map(kind), expected, "{message:?}");
            if let Some(Fault::Timeout { after, .. }) = &fault {
                assert_eq!(Some(*after), timed_out);
            }
        }
    }
});
