//! Reading a run's evidence (console log, result stream, timeout) for faults.
//!
//! A run with any fault is an error verdict: the caller must never report it
//! as a pass, even when messages and an exit code came back.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::frame::{Decoded, Problem};

/// Console lines kept before the line that shows a fault.
const CONTEXT_BEFORE: usize = 5;
/// Console lines kept from the line that shows a fault on.
const SPLAT_LINES: usize = 40;
/// Console lines kept when there is no marker line (timeouts, missing results).
const TAIL_LINES: usize = 20;

/// Why a run cannot be trusted. Each kind carries the console lines that show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The kernel panicked for a reason other than /init dying.
    KernelPanic {
        /// Console lines around the panic.
        splat: Vec<String>,
    },
    /// The guest's /init exited or was killed: "Attempted to kill init".
    InitDied {
        /// Console lines around the panic.
        splat: Vec<String>,
    },
    /// A kernel oops (or general protection fault).
    Oops {
        /// Console lines of the oops.
        splat: Vec<String>,
    },
    /// A `BUG:` or `kernel BUG at` report.
    Bug {
        /// Console lines of the report.
        splat: Vec<String>,
    },
    /// A kernel `WARNING:` splat.
    Warning {
        /// Console lines of the warning.
        splat: Vec<String>,
    },
    /// The VM did not finish in time and was killed.
    Timeout {
        /// The time limit that ran out.
        after: Duration,
        /// The last console lines.
        splat: Vec<String>,
    },
    /// The guest sent no end frame and nothing else explains it.
    NoResults {
        /// The last console lines.
        splat: Vec<String>,
    },
    /// The result stream was damaged: checksum errors, gaps, broken frames.
    CorruptResults {
        /// What was wrong with the stream.
        problems: Vec<String>,
    },
}

impl Fault {
    /// The console lines (or stream problems) that show the fault.
    pub fn splat(&self) -> &[String] {
        match self {
            Fault::KernelPanic { splat }
            | Fault::InitDied { splat }
            | Fault::Oops { splat }
            | Fault::Bug { splat }
            | Fault::Warning { splat }
            | Fault::Timeout { splat, .. }
            | Fault::NoResults { splat } => splat,
            Fault::CorruptResults { problems } => problems,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::KernelPanic { splat } => {
                write!(f, "kernel panic: {}", panic_reason(splat))?;
                write_cause(f, splat)
            }
            Fault::InitDied { splat } => {
                write!(f, "the guest's /init died: {}", panic_reason(splat))?;
                write_cause(f, splat)
            }
            Fault::Oops { splat } => write!(f, "kernel oops: {}", from_marker(splat, OOPS)),
            Fault::Bug { splat } => write!(f, "kernel bug: {}", from_marker(splat, BUG)),
            Fault::Warning { splat } => {
                write!(f, "kernel warning: {}", from_marker(splat, WARNING))
            }
            Fault::Timeout { after, .. } => {
                write!(f, "timeout: the VM did not finish within {after:?}")
            }
            Fault::NoResults { .. } => {
                write!(f, "no results: the guest never sent its end frame")
            }
            Fault::CorruptResults { problems } => {
                write!(f, "corrupt results: {}", problems.join("; "))
            }
        }
    }
}

/// What a run left behind, to be judged by [`classify`].
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The kernel console (first serial port).
    pub console: &'a str,
    /// What came on the result channel.
    pub results: &'a Decoded,
    /// The time limit, if the run was killed for reaching it.
    pub timed_out: Option<Duration>,
}

/// Starts the line of every kernel panic.
const PANIC: &str = "Kernel panic - not syncing";
/// Precedes the reason on a panic line.
const PANIC_REASON: &str = "Kernel panic - not syncing: ";
/// Start an oops report.
const OOPS: &[&str] = &["Oops: ", "general protection fault"];
/// Start a BUG report.
const BUG: &[&str] = &["kernel BUG at", "BUG: "];
/// Start a WARN() splat.
const WARNING: &[&str] = &["WARNING: CPU: ", "WARNING: at "];

/// Builds a fault from its splat.
type MakeFault = fn(Vec<String>) -> Fault;

/// Console markers from the most to the least severe.
const MARKERS: &[(&[&str], MakeFault)] = &[
    (&["Attempted to kill init"], |splat| Fault::InitDied {
        splat,
    }),
    (&[PANIC], |splat| Fault::KernelPanic { splat }),
    (OOPS, |splat| Fault::Oops { splat }),
    (BUG, |splat| Fault::Bug { splat }),
    (WARNING, |splat| Fault::Warning { splat }),
];

/// The reports a panic can follow: "Fatal exception" panics come after the
/// oops that caused them, and that first report is what a reader needs.
const REPORTS: &[&[&str]] = &[OOPS, BUG, WARNING];

/// Judges a run: the most severe fault found, or `None` for a clean run.
///
/// Console faults come first (a panic explains missing results), then the
/// timeout, then a damaged result stream, then missing results.
pub fn classify(evidence: &Evidence<'_>) -> Option<Fault> {
    let lines: Vec<&str> = evidence
        .console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    for (needles, make) in MARKERS {
        let found = lines
            .iter()
            .position(|line| needles.iter().any(|needle| line.contains(needle)));
        if let Some(index) = found {
            return Some(make(splat_with_first_report(&lines, index)));
        }
    }
    if let Some(after) = evidence.timed_out {
        return Some(Fault::Timeout {
            after,
            splat: tail(&lines),
        });
    }
    let damage: Vec<String> = evidence
        .results
        .problems
        .iter()
        .filter(|problem| **problem != Problem::MissingEnd)
        .map(ToString::to_string)
        .collect();
    if !damage.is_empty() {
        return Some(Fault::CorruptResults { problems: damage });
    }
    if evidence.results.exit_code.is_none() {
        return Some(Fault::NoResults {
            splat: tail(&lines),
        });
    }
    None
}

/// The first splat line holding one of `needles`, from the needle on (so
/// without the timestamp).
fn from_marker<'a>(splat: &'a [String], needles: &[&str]) -> &'a str {
    splat
        .iter()
        .find_map(|line| {
            let at = needles
                .iter()
                .filter_map(|needle| line.find(needle))
                .min()?;
            Some(line[at..].trim_end())
        })
        .unwrap_or_default()
}

/// The reason on a panic splat's panic line.
fn panic_reason(splat: &[String]) -> &str {
    from_marker(splat, &[PANIC_REASON]).trim_start_matches(PANIC_REASON)
}

/// Appends the first report before the panic line, if the splat has one.
fn write_cause(f: &mut fmt::Formatter<'_>, splat: &[String]) -> fmt::Result {
    let Some(panic_at) = splat.iter().position(|line| line.contains(PANIC)) else {
        return Ok(());
    };
    match from_marker(&splat[..panic_at], &REPORTS.concat()) {
        "" => Ok(()),
        cause => write!(f, " (after {cause})"),
    }
}

/// The splat of the marker at `index`, preceded by the splat of the first
/// report before it, if there is one: a panic's own lines rarely say why.
fn splat_with_first_report(lines: &[&str], index: usize) -> Vec<String> {
    let own = splat_range(lines, index);
    let needles = REPORTS.concat();
    let first = lines[..index]
        .iter()
        .position(|line| needles.iter().any(|needle| line.contains(needle)));
    let (head, tail) = match first.map(|first| splat_range(lines, first)) {
        Some(earlier) if own.start <= earlier.end => {
            (earlier.start..own.end.max(earlier.end), None)
        }
        Some(earlier) => (earlier, Some(own)),
        None => (own, None),
    };
    std::iter::once(head)
        .chain(tail)
        .flat_map(|range| lines[range].iter().map(|line| line.to_string()))
        .collect()
}

/// The lines of the splat whose marker is at `index`: some context before,
/// then up to its end trace.
fn splat_range(lines: &[&str], index: usize) -> Range<usize> {
    let start = index.saturating_sub(CONTEXT_BEFORE);
    let limit = lines.len().min(index + SPLAT_LINES);
    // Only this splat's end: an earlier one's end trace can sit in the
    // context lines before the marker (panic after an oops).
    let end = (index..limit)
        .find(|&at| lines[at].contains("---[ end "))
        .map_or(limit, |at| at + 1);
    start..end
}

fn tail(lines: &[&str]) -> Vec<String> {
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].iter().map(|line| line.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN_BOOT: &str = "\
[    0.000000] Linux version 6.12.0 (builder@example) #1 SMP\r
[    0.812345] Run /init as init process\r
";

    const INIT_DIED: &str = "\
[    1.201000] Run /init as init process\r
thread 'main' panicked at qemu/examples/guest_echo.rs:20:5:\r
asked to die\r
[    1.402000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00006500\r
[    1.402100] CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.0 #1\r
[    1.402200] Call Trace:\r
[    1.402300]  <TASK>\r
[    1.402400]  dump_stack_lvl+0x5d/0x80\r
[    1.402500]  panic+0x118/0x2f0\r
[    1.403000] Kernel Offset: disabled\r
[    1.403100] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00006500 ]---\r
[    1.403200] never part of the splat\r
";

    const NO_INIT: &str = "\
[    1.100000] Failed to execute /nonexistent (error -2)\r
[    1.100100] VFS: Cannot open root device \"\" or unknown-block(0,0): error -6\r
[    1.100200] Please append a correct \"root=\" boot option; here are the available partitions:\r
[    1.100300] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r
";

    const OOPS: &str = "\
[    5.100000] BUG: kernel NULL pointer dereference, address: 0000000000000008\r
[    5.100100] #PF: supervisor read access in kernel mode\r
[    5.100200] Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI\r
[    5.100300] RIP: 0010:inet_csk_find_open_port+0x42/0x3a0\r
[    5.100400] ---[ end trace 0000000000000000 ]---\r
";

    const WARNING: &str = "\
[    3.000000] ------------[ cut here ]------------\r
[    3.000100] WARNING: CPU: 0 PID: 1 at net/ipv4/inet_connection_sock.c:123 inet_sk_get_local_port_range+0x5/0x40\r
[    3.000200] Modules linked in: sctp\r
[    3.000300] ---[ end trace 0000000000000000 ]---\r
";

    fn ended(exit_code: i32) -> Decoded {
        Decoded {
            messages: vec!["ok".into()],
            exit_code: Some(exit_code),
            ..Decoded::default()
        }
    }

    fn judge(console: &str, results: &Decoded, timed_out: Option<Duration>) -> Option<Fault> {
        classify(&Evidence {
            console,
            results,
            timed_out,
        })
    }

    #[test]
    fn clean_run_has_no_fault() {
        assert_eq!(judge(CLEAN_BOOT, &ended(1), None), None);
    }

    #[test]
    fn init_death_is_named_with_its_splat() {
        let fault = judge(INIT_DIED, &Decoded::default(), None).unwrap();
        let Fault::InitDied { splat } = &fault else {
            panic!("{fault:?}")
        };
        assert!(splat[0].contains("Run /init"));
        assert!(splat.iter().any(|line| line.contains("asked to die")));
        assert!(splat.last().unwrap().contains("---[ end Kernel panic"));
        assert!(fault.to_string().contains("exitcode=0x00006500"), "{fault}");
    }

    #[test]
    fn missing_init_is_a_kernel_panic() {
        let fault = judge(NO_INIT, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }));
        assert_eq!(
            fault.to_string(),
            "kernel panic: VFS: Unable to mount root fs on unknown-block(0,0)"
        );
    }

    #[test]
    fn oops_outranks_the_bug_line_before_it() {
        let fault = judge(OOPS, &ended(0), None).unwrap();
        let Fault::Oops { splat } = &fault else {
            panic!("{fault:?}")
        };
        assert!(splat[0].contains("NULL pointer dereference"));
        assert_eq!(splat.len(), 5);
        assert_eq!(
            fault.to_string(),
            "kernel oops: Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI"
        );
    }

    #[test]
    fn panic_after_an_oops_keeps_its_own_line_in_the_splat() {
        let console = "\
[    1.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000\r
[    1.000100] Oops: 0000 [#1] PREEMPT SMP NOPTI\r
[    1.000200] ---[ end trace 0000000000000000 ]---\r
[    1.000300] Kernel panic - not syncing: Fatal exception in interrupt\r
[    1.000400] ---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---\r
";
        let fault = judge(console, &Decoded::default(), None).unwrap();
        assert_eq!(
            fault.to_string(),
            "kernel panic: Fatal exception in interrupt \
             (after BUG: kernel NULL pointer dereference, address: 0000000000000000)"
        );
        assert_eq!(fault.splat().len(), 5, "{fault:?}");
        assert!(fault.splat()[3].contains("Kernel panic - not syncing: Fatal exception"));
    }

    /// Shaped like a CI run's console: the oops that explains the panic is
    /// far above it, behind a second oops's register dump.
    const PANIC_FAR_AFTER_AN_OOPS: &str = "\
[    2.181230] amd_pstate: the _CPC object is not present in SBIOS or ACPI disabled\r
[    2.231103] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\r
[    2.231888] RIP: 0010:sched_clock_cpu+0x9/0x190\r
[    2.233193] Call Trace:\r
[    2.234053]  <TASK>\r
[    2.234759]  update_rq_clock+0x35/0x1a0\r
[    2.235706]  </TASK>\r
[    2.236307] ---[ end trace 0000000000000000 ]---\r
[    2.236329] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI\r
[    2.236567] RIP: 0010:sched_clock_cpu+0x9/0x190\r
[    2.236798] RSP: 0018:ffffd37640013bc0 EFLAGS: 00000002\r
[    2.236816] RAX: 0000000000000004 RBX: ffff8a3c73b35e80 RCX: ffff8a3c4138ccb0\r
[    2.236822] RDX: 0000000000000001 RSI: 0000000000000001 RDI: 0000000000000001\r
[    2.236826] RBP: ffff8a3c73b35e80 R08: 0000000000000001 R09: 0000000000000002\r
[    2.236831] R10: ffff8a3c4177f268 R11: 0000000000000000 R12: ffff8a3c73b00000\r
[    2.236925] Kernel panic - not syncing: Fatal exception in interrupt\r
[    3.991488] Kernel Offset: 0x39600000 from 0xffffffff81000000\r
";

    #[test]
    fn panic_names_the_first_report_before_it_and_keeps_its_splat() {
        let fault = judge(PANIC_FAR_AFTER_AN_OOPS, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel panic: Fatal exception in interrupt \
             (after Oops: int3: 0000 [#1] PREEMPT SMP NOPTI)"
        );
        let splat = fault.splat();
        assert!(splat[0].contains("amd_pstate"), "{splat:?}");
        assert!(splat[2].contains("RIP: 0010:sched_clock_cpu"), "{splat:?}");
        assert!(splat[7].contains("---[ end trace"), "{splat:?}");
        assert!(
            splat[8].contains("RSP:"),
            "the panic's own context follows: {splat:?}"
        );
        assert!(splat[13].contains("Kernel panic"), "{splat:?}");
        assert_eq!(splat.len(), 15, "every line once: {splat:?}");
    }

    #[test]
    fn panic_without_a_report_before_it_has_no_cause() {
        let fault = judge(NO_INIT, &Decoded::default(), None).unwrap();
        assert!(!fault.to_string().contains("after"), "{fault}");
        assert_eq!(fault.splat().len(), 4);
    }

    #[test]
    fn warning_fails_an_otherwise_clean_run() {
        let fault = judge(WARNING, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Warning { .. }));
        assert_eq!(
            fault.to_string(),
            "kernel warning: WARNING: CPU: 0 PID: 1 at net/ipv4/inet_connection_sock.c:123 \
             inet_sk_get_local_port_range+0x5/0x40"
        );
    }

    #[test]
    fn timeout_keeps_the_console_tail() {
        let fault = judge(
            CLEAN_BOOT,
            &Decoded::default(),
            Some(Duration::from_secs(9)),
        )
        .unwrap();
        assert_eq!(fault.splat().len(), 2);
        assert!(fault.to_string().contains("9s"));
    }

    #[test]
    fn damaged_stream_is_corrupt_results() {
        let results = Decoded {
            problems: vec![
                Problem::Gap {
                    expected: 1,
                    found: 2,
                },
                Problem::MissingEnd,
            ],
            ..ended(0)
        };
        let fault = judge(CLEAN_BOOT, &results, None).unwrap();
        assert_eq!(
            fault,
            Fault::CorruptResults {
                problems: vec!["frame 1 expected, frame 2 came".into()]
            }
        );
    }

    #[test]
    fn silence_is_no_results() {
        let results = Decoded {
            problems: vec![Problem::MissingEnd],
            ..Decoded::default()
        };
        let fault = judge(CLEAN_BOOT, &results, None).unwrap();
        assert!(matches!(fault, Fault::NoResults { .. }));
    }
}
