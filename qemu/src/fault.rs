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
/// Console lines kept from the line that shows a fault on, when no end
/// line comes first: enough for an arm64 report, whose abort details,
/// register dump (`pc :`, `lr :`, `sp :`, x29..x0) and `Call trace:` run
/// to about 60 lines.
const SPLAT_LINES: usize = 80;
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
    /// A report of the lock validator (lockdep, `CONFIG_PROVE_LOCKING`):
    /// a locking pattern that can deadlock, or a lock misused.
    Lockdep {
        /// Console lines of the report.
        splat: Vec<String>,
    },
    /// Undefined behaviour caught by UBSAN: a report, or in trap mode
    /// (`CONFIG_UBSAN_TRAP`) the line the trap handler prints before the
    /// oops (x86 with clang, arm64).
    Ubsan {
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
    /// QEMU itself ended with a failure status or a signal (killed from
    /// outside, crashed) rather than by the guest powering off.
    QemuEnded {
        /// How it ended (`signal: 9 (SIGKILL)`, `exit status: 1`).
        status: String,
        /// What QEMU printed on stderr, if anything.
        stderr: String,
        /// The last console lines.
        splat: Vec<String>,
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
            | Fault::Lockdep { splat }
            | Fault::Ubsan { splat }
            | Fault::Warning { splat }
            | Fault::Timeout { splat, .. }
            | Fault::NoResults { splat }
            | Fault::QemuEnded { splat, .. } => splat,
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
            Fault::Lockdep { splat } => write!(f, "lockdep: {}", from_marker(splat, LOCKDEP)),
            Fault::Ubsan { splat } => {
                write!(f, "undefined behaviour: {}", from_marker(splat, UBSAN))
            }
            Fault::Warning { splat } => {
                write!(f, "kernel warning: {}", from_marker(splat, WARNING))
            }
            Fault::Timeout { after, splat } => {
                write!(f, "timeout: the VM did not finish within {after:?}")?;
                write_silence(f, splat)
            }
            Fault::NoResults { splat } => {
                write!(f, "no results: the guest never sent its end frame")?;
                write_silence(f, splat)
            }
            Fault::CorruptResults { problems } => {
                write!(f, "corrupt results: {}", problems.join("; "))
            }
            Fault::QemuEnded { status, stderr, .. } => {
                write!(f, "QEMU itself ended with {status}")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
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
    /// How QEMU ended when it ended on its own with a failure status or a
    /// signal, and what it printed on stderr.
    pub qemu_failed: Option<&'a QemuFailure>,
}

/// QEMU's own failing end, as [`Evidence`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuFailure {
    /// How it ended (`signal: 9 (SIGKILL)`, `exit status: 1`).
    pub status: String,
    /// What it printed on stderr, trimmed.
    pub stderr: String,
}

/// Starts the line of every kernel panic.
const PANIC: &str = "Kernel panic - not syncing";
/// Precedes the reason on a panic line.
const PANIC_REASON: &str = "Kernel panic - not syncing: ";
/// Start an oops report: x86's "Oops: ..." and "general protection
/// fault", arm64's "Unable to handle kernel ..." (a bad access, before its
/// abort details) and "Internal error: Oops...: <esr> [#N]" (every arm64
/// die(), also "Oops - undefined instruction" and the like).
const OOPS: &[&str] = &[
    "Oops: ",
    "general protection fault",
    "Unable to handle kernel ",
    "Internal error: ",
];
/// Start the report of a failed BUG_ON(), on every architecture: the
/// oops that follows it ("invalid opcode" on x86, "Oops - BUG" on arm64)
/// is how it stops, this line says where and why.
const KERNEL_BUG: &[&str] = &[KERNEL_BUG_VERBOSE, KERNEL_BUG_TERSE];
/// A failed BUG_ON() with `CONFIG_DEBUG_BUGVERBOSE`: "kernel BUG at <file>:<line>!".
const KERNEL_BUG_VERBOSE: &str = "kernel BUG at";
/// A failed BUG_ON() without it: "Kernel BUG at <function>+<offset> [verbose
/// debug info unavailable]".
const KERNEL_BUG_TERSE: &str = "Kernel BUG at";
/// Start a BUG report.
const BUG: &[&str] = &[KERNEL_BUG_VERBOSE, KERNEL_BUG_TERSE, "BUG: "];
/// Head the reports of the lock validator (kernel/locking/lockdep.c; the
/// last one is RCU's lockdep check), each under a line of `=`. Public for
/// the fault_classify fuzz target, whose own ranking uses the same headers.
pub const LOCKDEP: &[&str] = &[
    "WARNING: possible circular locking dependency detected",
    "WARNING: possible recursive locking detected",
    "WARNING: possible irq lock inversion dependency detected",
    "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
    "WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
    "WARNING: inconsistent lock state",
    "WARNING: bad unlock balance detected!",
    "WARNING: bad contention detected!",
    "WARNING: held lock freed!",
    "still has locks held!",
    "WARNING: lock held when returning to user space!",
    "WARNING: Nested lock was not taken",
    "WARNING: chain_key collision",
    "WARNING: suspicious RCU usage",
];
/// Starts a UBSAN line: a report ("UBSAN: array-index-out-of-bounds in
/// <file>:<line>:<col>"), x86's trap line ("UBSAN: array index out of
/// bounds at <function>+<offset>", before "Oops: invalid opcode"), arm64's
/// trap ("Internal error: UBSAN: array index out of bounds: <esr> [#1]").
/// With gcc, x86 traps are plain "invalid opcode" oopses that do not say UBSAN.
const UBSAN: &[&str] = &["UBSAN: "];
/// Start a WARN() splat.
const WARNING: &[&str] = &["WARNING: CPU: ", "WARNING: at "];

/// Builds a fault from its splat.
type MakeFault = fn(Vec<String>) -> Fault;

/// Console markers from the most to the least severe. A line that says why
/// an oops follows (a failed BUG_ON(), a UBSAN trap) ranks above the oops;
/// a lockdep report above the `BUG:` lines that the deadlock or the lock
/// left held leads to ("scheduling while atomic", "soft lockup").
const MARKERS: &[(&[&str], MakeFault)] = &[
    (&["Attempted to kill init"], |splat| Fault::InitDied {
        splat,
    }),
    (&[PANIC], |splat| Fault::KernelPanic { splat }),
    (KERNEL_BUG, |splat| Fault::Bug { splat }),
    (UBSAN, |splat| Fault::Ubsan { splat }),
    (OOPS, |splat| Fault::Oops { splat }),
    (LOCKDEP, |splat| Fault::Lockdep { splat }),
    (BUG, |splat| Fault::Bug { splat }),
    (WARNING, |splat| Fault::Warning { splat }),
];

/// The reports a panic can follow: "Fatal exception" panics come after the
/// oops that caused them (with `CONFIG_PANIC_ON_OOPS`, after any oops), and
/// that first report is what a reader needs.
const REPORTS: &[&[&str]] = &[OOPS, BUG, UBSAN, LOCKDEP, WARNING];

/// Judges a run: the most severe fault found, or `None` for a clean run.
///
/// QEMU's own failing end comes first (whatever the console shows, it is
/// why the results stop where they do; the console's last lines go with
/// it), then console faults (a panic explains missing results), then the
/// timeout, then a damaged result stream, then missing results.
pub fn classify(evidence: &Evidence<'_>) -> Option<Fault> {
    let lines: Vec<&str> = evidence
        .console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    if let Some(failure) = evidence.qemu_failed {
        return Some(Fault::QemuEnded {
            status: failure.status.clone(),
            stderr: failure.stderr.clone(),
            splat: tail(&lines),
        });
    }
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
/// without the timestamp), or from the `WARNING: ` before it (lockdep's
/// "WARNING: <task>/<pid> still has locks held!").
fn from_marker<'a>(splat: &'a [String], needles: &[&str]) -> &'a str {
    splat
        .iter()
        .find_map(|line| {
            let at = needles
                .iter()
                .filter_map(|needle| line.find(needle))
                .min()?;
            let at = line[..at].find("WARNING: ").unwrap_or(at);
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

/// Appends, for a run that ended without a verdict, that the console stayed
/// empty: the kernel then never wrote to portrange's console, which happens
/// when a built-in command line replaces the one portrange passes.
fn write_silence(f: &mut fmt::Formatter<'_>, splat: &[String]) -> fmt::Result {
    if splat.iter().any(|line| !line.trim().is_empty()) {
        return Ok(());
    }
    write!(
        f,
        " (and the kernel console stayed empty: if the kernel has a built-in command line \
         with CONFIG_CMDLINE_OVERRIDE (x86) or CONFIG_CMDLINE_FORCE (arm64), it drops the \
         console= portrange passes; build it without that option)"
    )
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

    /// An arm64 NULL dereference in a system call (Debian's 6.1 arm64 cloud
    /// kernel under QEMU's virt machine): abort details, then the
    /// "Internal error" line, the register dump and the call trace.
    const ARM64_OOPS: &str = "\
[   12.345678] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008\r
[   12.346012] Mem abort info:\r
[   12.346103]   ESR = 0x0000000096000004\r
[   12.346215]   EC = 0x25: DABT (current EL), IL = 32 bits\r
[   12.346321]   SET = 0, FnV = 0\r
[   12.346401]   EA = 0, S1PTW = 0\r
[   12.346488]   FSC = 0x04: level 0 translation fault\r
[   12.346590] Data abort info:\r
[   12.346655]   ISV = 0, ISS = 0x00000004\r
[   12.346741]   CM = 0, WnR = 0\r
[   12.346820] user pgtable: 4k pages, 48-bit VAs, pgdp=0000000041b2e000\r
[   12.346950] [0000000000000008] pgd=0000000000000000, p4d=0000000000000000\r
[   12.347102] Internal error: Oops: 0000000096000004 [#1] SMP\r
[   12.347233] Modules linked in: sctp libcrc32c\r
[   12.347390] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-57-cloud-arm64 #1  Debian 6.1.192-3\r
[   12.347560] Hardware name: linux,dummy-virt (DT)\r
[   12.347671] pstate: 60000005 (nZCv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)\r
[   12.347812] pc : inet_csk_find_open_port+0x4c/0x2f0\r
[   12.347921] lr : inet_csk_get_port+0x3e8/0x5d0\r
[   12.348011] sp : ffff80000a0dbc40\r
[   12.348088] x29: ffff80000a0dbc40 x28: ffff0000c1a8c000 x27: 0000000000000000\r
[   12.348135] x26: 0000000000000000 x25: ffffb1a6e2d4a000 x24: ffff0000c1b3a480\r
[   12.348182] x23: 0000000000000000 x22: ffff0000c1b3a480 x21: 0000000000009c40\r
[   12.348229] x20: 0000000000009c49 x19: ffff0000c1b3a480 x18: 0000000000000000\r
[   12.348276] x17: 0000000000000000 x16: 0000000000000000 x15: 0000000000000000\r
[   12.348323] x14: 0000000000000000 x13: 0000000000000000 x12: 0000000000000000\r
[   12.348370] x11: 0000000000000000 x10: 0000000000000000 x9 : ffffb1a6e1c3f0a8\r
[   12.348417] x8 : ffff0000c1b3a4f8 x7 : 0000000000000000 x6 : 0000000000000000\r
[   12.348464] x5 : 0000000000000000 x4 : 0000000000000000 x3 : 0000000000000000\r
[   12.348511] x2 : 0000000000000000 x1 : 0000000000000000 x0 : 0000000000000000\r
[   12.349101] Call trace:\r
[   12.349160]  inet_csk_find_open_port+0x4c/0x2f0\r
[   12.349250]  inet_csk_get_port+0x3e8/0x5d0\r
[   12.349330]  __inet_bind+0x1d4/0x2a0\r
[   12.349420]  inet_bind+0x64/0xa0\r
[   12.349500]  __sys_bind+0xd8/0x100\r
[   12.349580]  __arm64_sys_bind+0x28/0x40\r
[   12.349660]  invoke_syscall+0x50/0x120\r
[   12.349740]  el0_svc_common.constprop.0+0x48/0xf0\r
[   12.349830]  do_el0_svc+0x24/0x90\r
[   12.349910]  el0_svc+0x2c/0x80\r
[   12.349990]  el0t_64_sync_handler+0xb8/0xc0\r
[   12.350070]  el0t_64_sync+0x18c/0x190\r
[   12.350160] Code: f9400a73 b4000d33 f9401a60 91002000 (f9400400)\r
[   12.350270] ---[ end trace 0000000000000000 ]---\r
[   12.350300] after the splat\r
";

    /// A failed BUG_ON() on arm64 (6.12): "kernel BUG at", then the oops
    /// it raises ("Oops - BUG", which also holds "BUG: ").
    const ARM64_BUG: &str = "\
[    8.101000] ------------[ cut here ]------------\r
[    8.101100] kernel BUG at net/ipv4/inet_connection_sock.c:321!\r
[    8.101300] Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP\r
[    8.101400] Modules linked in: veth sctp\r
[    8.101500] CPU: 1 UID: 0 PID: 57 Comm: portrange Not tainted 6.12.117+deb12-cloud-arm64 #1  Debian 6.12.117-1~deb12u1\r
[    8.101600] Hardware name: linux,dummy-virt (DT)\r
[    8.101700] pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)\r
[    8.101800] pc : inet_csk_get_port+0x5a4/0x5b0\r
[    8.101900] lr : inet_csk_get_port+0x2c8/0x5b0\r
[    8.102000] sp : ffff800082d3bc60\r
[    8.102100] x29: ffff800082d3bc60 x28: ffff0000c2a1c000 x27: 0000000000000000\r
[    8.102200] x2 : 0000000000000000 x1 : 0000000000000001 x0 : ffff0000c1b3a480\r
[    8.102900] Call trace:\r
[    8.103000]  inet_csk_get_port+0x5a4/0x5b0\r
[    8.103100]  __inet_bind+0x1d4/0x2a0\r
[    8.104000] Code: 97ffd8f5 17ffff9d d4210000 d4210000 (d4210000)\r
[    8.104100] ---[ end trace 0000000000000000 ]---\r
";

    /// A WARN_ON() on arm64: the same "WARNING: CPU:" line as on x86, with
    /// arm64's register dump.
    const ARM64_WARNING: &str = "\
[    5.201000] ------------[ cut here ]------------\r
[    5.201100] WARNING: CPU: 0 PID: 1 at net/ipv4/inet_connection_sock.c:123 inet_sk_get_local_port_range+0x60/0x70\r
[    5.201200] Modules linked in: sctp\r
[    5.201300] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-57-cloud-arm64 #1  Debian 6.1.192-3\r
[    5.201400] Hardware name: linux,dummy-virt (DT)\r
[    5.201500] pstate: 80000005 (Nzcv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)\r
[    5.201600] pc : inet_sk_get_local_port_range+0x60/0x70\r
[    5.201700] lr : inet_csk_find_open_port+0x40/0x2f0\r
[    5.201800] sp : ffff80000a0dbc20\r
[    5.201900] x29: ffff80000a0dbc20 x28: ffff0000c1a8c000 x27: 0000000000000000\r
[    5.202000] x2 : 0000000000000000 x1 : ffff80000a0dbc8c x0 : ffff0000c1b3a480\r
[    5.203000] Call trace:\r
[    5.203100]  inet_sk_get_local_port_range+0x60/0x70\r
[    5.203200]  inet_csk_find_open_port+0x40/0x2f0\r
[    5.203300]  inet_csk_get_port+0x3e8/0x5d0\r
[    5.204000] ---[ end trace 0000000000000000 ]---\r
";

    /// An oops in interrupt context on arm64 ends in a panic, with arm64's
    /// panic trailer (stopping CPUs, kernel offset, CPU features).
    const ARM64_FATAL_OOPS: &str = "\
[    3.400000] Unable to handle kernel paging request at virtual address dead000000000108\r
[    3.400100] Mem abort info:\r
[    3.400200]   ESR = 0x0000000096000044\r
[    3.401000] Internal error: Oops: 0000000096000044 [#1] SMP\r
[    3.401100] Modules linked in:\r
[    3.401200] CPU: 1 PID: 0 Comm: swapper/1 Not tainted 6.1.0-57-cloud-arm64 #1  Debian 6.1.192-3\r
[    3.401300] pc : __list_del_entry_valid+0x2c/0xd0\r
[    3.401400] lr : inet_twsk_kill+0x5c/0x1a0\r
[    3.401500] Call trace:\r
[    3.401600]  __list_del_entry_valid+0x2c/0xd0\r
[    3.401700]  call_timer_fn+0x3c/0x1c0\r
[    3.401800] Code: d2802442 f2fbd5a2 eb02001f 54000260 (f9400401)\r
[    3.401900] ---[ end trace 0000000000000000 ]---\r
[    3.402000] Kernel panic - not syncing: Oops: Fatal exception in interrupt\r
[    3.402100] SMP: stopping secondary CPUs\r
[    3.402200] Kernel Offset: 0x3a4f0c200000 from 0xffff800008000000\r
[    3.402300] PHYS_OFFSET: 0xfffff0f300000000\r
[    3.402400] CPU features: 0x00000,00000000,0000400b\r
[    3.402500] Memory Limit: none\r
[    3.402600] ---[ end Kernel panic - not syncing: Oops: Fatal exception in interrupt ]---\r
";

    /// /init exiting on arm64: the panic carries the task's call trace.
    const ARM64_INIT_DIED: &str = "\
[    2.101000] Run /init as init process\r
[    2.402000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300\r
[    2.402100] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-57-cloud-arm64 #1  Debian 6.1.192-3\r
[    2.402200] Hardware name: linux,dummy-virt (DT)\r
[    2.402300] Call trace:\r
[    2.402400]  dump_backtrace+0xe4/0x140\r
[    2.402500]  show_stack+0x20/0x30\r
[    2.402600]  panic+0x164/0x34c\r
[    2.402700]  do_exit+0x9a8/0x9b0\r
[    2.402800] SMP: stopping secondary CPUs\r
[    2.402900] Kernel Offset: 0x2b5a0d800000 from 0xffff800008000000\r
[    2.403000] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300 ]---\r
";

    #[test]
    fn arm64_oops_is_named_by_its_first_line_and_keeps_registers_and_trace() {
        let fault = judge(ARM64_OOPS, &ended(0), None).unwrap();
        let Fault::Oops { splat } = &fault else {
            panic!("{fault:?}")
        };
        assert_eq!(
            fault.to_string(),
            "kernel oops: Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008"
        );
        for wanted in [
            "Internal error: Oops: 0000000096000004 [#1] SMP",
            "pc : inet_csk_find_open_port+0x4c/0x2f0",
            "lr : inet_csk_get_port+0x3e8/0x5d0",
            "x2 : 0000000000000000",
            "Call trace:",
            "el0t_64_sync+0x18c/0x190",
        ] {
            assert!(
                splat.iter().any(|line| line.contains(wanted)),
                "{wanted} in {splat:?}"
            );
        }
        assert!(
            splat.last().unwrap().contains("---[ end trace"),
            "{splat:?}"
        );
    }

    #[test]
    fn arm64_bug_is_a_bug_named_by_where_it_failed() {
        let fault = judge(ARM64_BUG, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Bug { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel bug: kernel BUG at net/ipv4/inet_connection_sock.c:321!"
        );
        let splat = fault.splat();
        assert!(splat[0].contains("cut here"), "{splat:?}");
        assert!(splat.iter().any(|line| line.contains("Oops - BUG")));
        assert!(
            splat
                .iter()
                .any(|line| line.contains("pc : inet_csk_get_port"))
        );
        assert!(splat.last().unwrap().contains("---[ end trace"));
    }

    #[test]
    fn arm64_warning_fails_an_otherwise_clean_run() {
        let fault = judge(ARM64_WARNING, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Warning { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel warning: WARNING: CPU: 0 PID: 1 at net/ipv4/inet_connection_sock.c:123 \
             inet_sk_get_local_port_range+0x60/0x70"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("lr : inet_csk_find_open_port"))
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("Call trace:"))
        );
    }

    #[test]
    fn arm64_fatal_oops_is_a_panic_naming_the_oops() {
        let fault = judge(ARM64_FATAL_OOPS, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel panic: Oops: Fatal exception in interrupt \
             (after Unable to handle kernel paging request at virtual address dead000000000108)"
        );
        let splat = fault.splat();
        assert!(
            splat[0].contains("Unable to handle kernel paging request"),
            "{splat:?}"
        );
        assert!(
            splat.last().unwrap().contains("---[ end Kernel panic"),
            "{splat:?}"
        );
        assert_eq!(splat.len(), 20, "every line once: {splat:?}");
    }

    #[test]
    fn arm64_init_death_is_init_died() {
        let fault = judge(ARM64_INIT_DIED, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::InitDied { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "the guest's /init died: Attempted to kill init! exitcode=0x00000300"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("Call trace:"))
        );
    }

    #[test]
    fn x86_bug_is_a_bug_before_the_oops_it_raises() {
        let console = "\
[    4.000000] kernel BUG at net/ipv4/inet_hashtables.c:700!\r
[    4.000100] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\r
[    4.000200] RIP: 0010:inet_hash_connect+0x1a/0x20\r
[    4.000300] ---[ end trace 0000000000000000 ]---\r
";
        let fault = judge(console, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Bug { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel bug: kernel BUG at net/ipv4/inet_hashtables.c:700!"
        );
    }

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
            qemu_failed: None,
        })
    }

    #[test]
    fn qemu_killed_midway_is_named_before_the_missing_end_frame() {
        let killed = QemuFailure {
            status: "signal: 9 (SIGKILL)".into(),
            stderr: String::new(),
        };
        let half = Decoded {
            messages: vec!["ok".into()],
            ..Decoded::default()
        };
        let fault = classify(&Evidence {
            console: WARNING,
            results: &half,
            timed_out: None,
            qemu_failed: Some(&killed),
        })
        .unwrap();
        assert_eq!(
            fault.to_string(),
            "QEMU itself ended with signal: 9 (SIGKILL)"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("WARNING: CPU: ")),
            "{fault:?}"
        );
        let crashed = QemuFailure {
            status: "exit status: 1".into(),
            stderr: "qemu: fatal: lost the plot".into(),
        };
        let fault = classify(&Evidence {
            console: CLEAN_BOOT,
            results: &ended(0),
            timed_out: None,
            qemu_failed: Some(&crashed),
        })
        .unwrap();
        assert_eq!(
            fault.to_string(),
            "QEMU itself ended with exit status: 1: qemu: fatal: lost the plot"
        );
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

    /// A clang-built x86 kernel with `CONFIG_UBSAN_TRAP` and
    /// `CONFIG_PANIC_ON_OOPS` (GKI's): the trap handler names the check,
    /// the trap is an "invalid opcode" oops, the oops a panic.
    const X86_UBSAN_TRAP_PANIC: &str = "\
[   14.201734] lkdtm: Performing direct entry ARRAY_BOUNDS\r
[   14.202110] lkdtm: Array access within bounds ...\r
[   14.202533] lkdtm: Array access beyond bounds ...\r
[   14.203001] UBSAN: array index out of bounds at lkdtm_ARRAY_BOUNDS+0x91/0xc0\r
[   14.203478] Oops: invalid opcode: 0000 [#1] PREEMPT SMP\r
[   14.203890] CPU: 1 UID: 0 PID: 61 Comm: payload Not tainted 6.12.117 #1\r
[   14.204312] RIP: 0010:lkdtm_ARRAY_BOUNDS+0x91/0xc0\r
[   14.204700] Call Trace:\r
[   14.204951]  <TASK>\r
[   14.205203]  lkdtm_do_action+0x1c/0x40\r
[   14.205602]  direct_entry+0xd0/0x110\r
[   14.206011]  full_proxy_write+0x55/0x80\r
[   14.206433]  vfs_write+0xf1/0x440\r
[   14.206812]  ksys_write+0x6d/0xe0\r
[   14.207190]  do_syscall_64+0x9e/0x1a0\r
[   14.207604]  entry_SYSCALL_64_after_hwframe+0x77/0x7f\r
[   14.208010]  </TASK>\r
[   14.208277] ---[ end trace 0000000000000000 ]---\r
[   14.208690] Kernel panic - not syncing: Fatal exception\r
[   14.209120] Kernel Offset: disabled\r
";

    #[test]
    fn x86_ubsan_trap_that_panics_names_the_check() {
        let fault = judge(X86_UBSAN_TRAP_PANIC, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel panic: Fatal exception \
             (after UBSAN: array index out of bounds at lkdtm_ARRAY_BOUNDS+0x91/0xc0)"
        );
        let splat = fault.splat();
        assert!(
            splat
                .iter()
                .any(|line| line.contains("RIP: 0010:lkdtm_ARRAY_BOUNDS"))
        );
        assert!(splat.iter().any(|line| line.contains("Kernel panic")));
    }

    #[test]
    fn x86_ubsan_trap_without_panic_is_ubsan_above_its_oops() {
        let console = X86_UBSAN_TRAP_PANIC
            .split_inclusive('\n')
            .filter(|line| !line.contains("Kernel panic") && !line.contains("Kernel Offset"))
            .collect::<String>();
        let fault = judge(&console, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Ubsan { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "undefined behaviour: UBSAN: array index out of bounds at lkdtm_ARRAY_BOUNDS+0x91/0xc0"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("Oops: invalid opcode"))
        );
    }

    /// arm64's UBSAN trap is a BRK whose handler dies with the check's
    /// name: the console of the GKI-traits arm64 kernel (Debian's 6.12.118
    /// built with clang 16) after LKDTM's ARRAY_BOUNDS, as it came.
    const ARM64_UBSAN_TRAP: &str = "\
Internal error: UBSAN: array index out of bounds: 00000000f2005512 [#1] SMP\r
Modules linked in:\r
CPU: 1 UID: 0 PID: 39 Comm: busybox Not tainted 6.12.118 #1 \r
Hardware name: linux,dummy-virt (DT)\r
pstate: 20000005 (nzCv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)\r
pc : lkdtm_ARRAY_BOUNDS+0x184/0x18c\r
lr : lkdtm_ARRAY_BOUNDS+0x110/0x18c\r
sp : ffff000001a8bc90\r
x29: ffff000001a8bca0 x28: ffff000006c64000 x27: 0000000000000000\r
x26: 0000000000000000 x25: 0000000000000000 x24: ffff000006c5cea0\r
x23: ffff000006c5cd80 x22: ffff8000807787b0 x21: ffff000006cea000\r
x20: ffff000001b92680 x19: ffff000001cdf140 x18: 0000000000000000\r
x17: 0000000000000000 x16: ffff80008087f198 x15: 0000000000000188\r
x14: 0000000000000003 x13: 0000000000000004 x12: 0000000000000001\r
x11: c0000000ffffefff x10: ffff8000806dc650 x9 : 0000000000000008\r
x8 : 0000000000000042 x7 : ffff800080475914 x6 : 0000000000000000\r
x5 : 0000000000000001 x4 : 0000000000000000 x3 : ffff000001a8ba08\r
x2 : ffff000001a8b9d8 x1 : 00000000ffffefff x0 : 0000000000000025\r
Call trace:\r
 lkdtm_ARRAY_BOUNDS+0x184/0x18c\r
 lkdtm_do_action+0x18/0x30\r
 direct_entry+0xf4/0x118\r
 full_proxy_write+0x68/0x94\r
 vfs_write+0xc4/0x184\r
 ksys_write+0x68/0xb8\r
 __arm64_sys_write+0x18/0x20\r
 do_el0_svc+0x88/0xd0\r
 el0_svc+0x44/0x98\r
 el0t_64_sync_handler+0x40/0xfc\r
 el0t_64_sync+0x14c/0x150\r
Code: 91209000 f946cd01 9407f5d3 17ffffb7 (d42aa240) \r
---[ end trace 0000000000000000 ]---\r
";

    #[test]
    fn arm64_ubsan_trap_is_ubsan() {
        let fault = judge(ARM64_UBSAN_TRAP, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Ubsan { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "undefined behaviour: UBSAN: array index out of bounds: 00000000f2005512 [#1] SMP"
        );
        let panicking = format!(
            "{ARM64_UBSAN_TRAP}Kernel panic - not syncing: UBSAN: array index out of bounds: Fatal exception\r\n"
        );
        let fault = judge(&panicking, &Decoded::default(), None).unwrap();
        assert_eq!(
            fault.to_string(),
            "kernel panic: UBSAN: array index out of bounds: Fatal exception (after Internal \
             error: UBSAN: array index out of bounds: 00000000f2005512 [#1] SMP)"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line == " lkdtm_ARRAY_BOUNDS+0x184/0x18c"),
            "{fault:?}"
        );
    }

    /// A spinlock held into user space on arm64 (LKDTM's SPINLOCKUP on the
    /// GKI-traits arm64 kernel, as it came): lockdep reports it, then the
    /// task's next page fault, taken in atomic context, is an oops, and
    /// with panic on oops a panic.
    const ARM64_LOCK_HELD_INTO_USER_SPACE: &str = "\
================================================\r
WARNING: lock held when returning to user space!\r
6.12.118 #1 Not tainted\r
------------------------------------------------\r
busybox/39 is leaving the kernel with locks still held!\r
1 lock held by busybox/39:\r
 #0: ffff800080778870 (lock_me_up){+.+.}-{2:2}, at: lkdtm_SPINLOCKUP+0x14/0x1c\r
Unable to handle kernel paging request at virtual address 00000000005d4890\r
Mem abort info:\r
  ESR = 0x000000009200004f\r
  EC = 0x24: DABT (lower EL), IL = 32 bits\r
  SET = 0, FnV = 0\r
  EA = 0, S1PTW = 0\r
  FSC = 0x0f: level 3 permission fault\r
Data abort info:\r
  ISV = 0, ISS = 0x0000004f, ISS2 = 0x00000000\r
  CM = 0, WnR = 1, TnD = 0, TagAccess = 0\r
  GCS = 0, Overlay = 0, DirtyBit = 0, Xs = 0\r
user pgtable: 4k pages, 48-bit VAs, pgdp=0000000041d14000\r
[00000000005d4890] pgd=0800000041fcf003, p4d=0800000041fcf003, pud=0800000041ff0003, pmd=0800000041ff1003, pte=00e000004edcefc3\r
Internal error: Oops: 000000009200004f [#1] SMP\r
Modules linked in:\r
CPU: 0 UID: 0 PID: 39 Comm: busybox Not tainted 6.12.118 #1 \r
Hardware name: linux,dummy-virt (DT)\r
pstate: 60000000 (nZCv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)\r
pc : 00000000004afdc8\r
lr : 000000000041da50\r
sp : 0000ffffc819a0f0\r
x29: 0000ffffc819a120 x28: 0000000000000000 x27: 0000000000000001\r
x26: 0000000000000000 x25: 000000003fb5d000 x24: 0000ffffc819a0f8\r
x23: 0000000000000000 x22: 0000000000000001 x21: 00000000005cf000\r
x20: 00000000005d4000 x19: 00000000005d4890 x18: 0000000000000001\r
x17: 0000000000402f40 x16: 0000000000000000 x15: 0000000000000000\r
x14: 0000000000000001 x13: 0000000000002140 x12: 00000000005ceb90\r
x11: 0000000000000000 x10: 0000000000000000 x9 : 3c00000000001001\r
x8 : 00000000000a5055 x7 : 37cfbc0e39cbd07b x6 : 000000003fb60320\r
x5 : 0000000000000007 x4 : 0000000000000000 x3 : 0000000000000000\r
x2 : 00000000005d4890 x1 : 0000000000000001 x0 : 0000000000000000\r
---[ end trace 0000000000000000 ]---\r
Kernel panic - not syncing: Oops: Fatal exception\r
";

    #[test]
    fn arm64_lock_held_into_user_space_panics_naming_the_lockdep_report() {
        let fault = judge(ARM64_LOCK_HELD_INTO_USER_SPACE, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel panic: Oops: Fatal exception (after WARNING: lock held when returning to \
             user space!)"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("at: lkdtm_SPINLOCKUP+0x14/0x1c")),
            "{fault:?}"
        );
    }

    /// Without trap mode UBSAN reports and goes on.
    const UBSAN_REPORT: &str = "\
[    9.310021] ------------[ cut here ]------------\r
[    9.310433] UBSAN: array-index-out-of-bounds in net/ipv4/inet_connection_sock.c:330:17\r
[    9.310912] index 8 is out of range for type 'int [8]'\r
[    9.311302] CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.117 #1\r
[    9.311733] Call Trace:\r
[    9.312110]  <TASK>\r
[    9.312500]  __ubsan_handle_out_of_bounds+0xa1/0xd0\r
[    9.312923]  inet_csk_find_open_port+0x3d0/0x3f0\r
[    9.313344]  </TASK>\r
[    9.313702] ---[ end trace ]---\r
";

    #[test]
    fn ubsan_report_fails_an_otherwise_clean_run() {
        let fault = judge(UBSAN_REPORT, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Ubsan { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "undefined behaviour: UBSAN: array-index-out-of-bounds in \
             net/ipv4/inet_connection_sock.c:330:17"
        );
        assert!(fault.splat().last().unwrap().contains("---[ end trace"));
    }

    /// A lockdep report on x86: the same lock class taken twice.
    const X86_RECURSIVE_LOCKING: &str = "\
[    6.520113] \r
[    6.520301] ============================================\r
[    6.520688] WARNING: possible recursive locking detected\r
[    6.521034] 6.12.117 #1 Not tainted\r
[    6.521388] --------------------------------------------\r
[    6.521741] portrange/57 is trying to acquire lock:\r
[    6.522097] ffff888003a1c0b0 (slock-AF_INET/1){+.-.}-{2:2}, at: inet_csk_get_port+0x1a2/0x5e0\r
[    6.522480] \r
[    6.522480] but task is already holding lock:\r
[    6.522899] ffff888003a1c0b0 (slock-AF_INET/1){+.-.}-{2:2}, at: inet_csk_get_port+0x160/0x5e0\r
[    6.523301] \r
[    6.523301] other info that might help us debug this:\r
[    6.523722]  Possible unsafe locking scenario:\r
[    6.524090]        CPU0\r
[    6.524301]        ----\r
[    6.524512]   lock(slock-AF_INET/1);\r
[    6.524733]   lock(slock-AF_INET/1);\r
[    6.524955] \r
[    6.524955]  *** DEADLOCK ***\r
[    6.525380] stack backtrace:\r
[    6.525601] CPU: 1 UID: 0 PID: 57 Comm: portrange Not tainted 6.12.117 #1\r
[    6.526003] Call Trace:\r
[    6.526210]  <TASK>\r
[    6.526401]  dump_stack_lvl+0x6e/0xa0\r
[    6.526633]  __lock_acquire+0x12a5/0x2160\r
[    6.526877]  lock_acquire+0xc8/0x2d0\r
[    6.527101]  _raw_spin_lock+0x2f/0x40\r
[    6.527330]  inet_csk_get_port+0x1a2/0x5e0\r
[    6.527566]  </TASK>\r
";

    #[test]
    fn lockdep_report_fails_an_otherwise_clean_run() {
        let fault = judge(X86_RECURSIVE_LOCKING, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Lockdep { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "lockdep: WARNING: possible recursive locking detected"
        );
        let splat = fault.splat();
        assert!(splat.iter().any(|line| line.contains("*** DEADLOCK ***")));
        assert!(splat.iter().any(|line| line.contains("_raw_spin_lock")));
    }

    #[test]
    fn lockdep_report_before_a_hang_names_the_report_not_the_timeout() {
        let fault = judge(
            X86_RECURSIVE_LOCKING,
            &Decoded::default(),
            Some(Duration::from_secs(300)),
        )
        .unwrap();
        assert!(matches!(fault, Fault::Lockdep { .. }), "{fault:?}");
    }

    /// A lock taken in a system call and never released (LKDTM's
    /// SPINLOCKUP) on arm64: lockdep reports it on the way back to user
    /// space, the scheduler then finds preemption still off.
    const ARM64_LOCK_HELD_TO_USER: &str = "\
[   11.702331] lkdtm: Performing direct entry SPINLOCKUP\r
[   11.703020] \r
[   11.703211] ================================================\r
[   11.703602] WARNING: lock held when returning to user space!\r
[   11.703998] 6.12.30-android16-5 #1 Not tainted\r
[   11.704381] ------------------------------------------------\r
[   11.704770] payload/70 is leaving the kernel with locks still held!\r
[   11.705160] 1 lock held by payload/70:\r
[   11.705544]  #0: ffffd3a0f1e4a118 (lock_me_up){+.+.}-{2:2}, at: lkdtm_SPINLOCKUP+0x20/0x38\r
[   11.712008] BUG: scheduling while atomic: payload/70/0x00000002\r
[   11.712421] INFO: lockdep is turned off.\r
[   11.712830] Modules linked in:\r
[   11.713233] CPU: 0 UID: 0 PID: 70 Comm: payload Not tainted 6.12.30-android16-5 #1\r
[   11.713641] Call trace:\r
[   11.714050]  __schedule_bug+0x6c/0x90\r
";

    #[test]
    fn lockdep_report_outranks_the_bug_it_leads_to() {
        let fault = judge(ARM64_LOCK_HELD_TO_USER, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Lockdep { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "lockdep: WARNING: lock held when returning to user space!"
        );
        assert!(
            fault
                .splat()
                .iter()
                .any(|line| line.contains("BUG: scheduling while atomic"))
        );
    }

    #[test]
    fn lockdep_report_naming_a_task_is_shown_from_its_warning() {
        let console = "\
[    3.100000] =========================\r
[    3.100100] WARNING: portrange/1 still has locks held!\r
[    3.100200] 6.12.117 #1 Not tainted\r
";
        let fault = judge(console, &ended(0), None).unwrap();
        assert_eq!(
            fault.to_string(),
            "lockdep: WARNING: portrange/1 still has locks held!"
        );
    }

    /// LKDTM's BUG under `CONFIG_PANIC_ON_OOPS` and `CONFIG_PANIC_TIMEOUT=-1`
    /// (GKI's): the kernel reboots at once, and QEMU (-no-reboot) exits.
    const X86_BUG_PANIC_ON_OOPS: &str = "\
[   12.004100] lkdtm: Performing direct entry BUG\r
[   12.004580] ------------[ cut here ]------------\r
[   12.004951] kernel BUG at drivers/misc/lkdtm/bugs.c:105!\r
[   12.005402] Oops: invalid opcode: 0000 [#1] PREEMPT SMP\r
[   12.005833] CPU: 0 UID: 0 PID: 60 Comm: payload Not tainted 6.12.117 #1\r
[   12.006254] RIP: 0010:lkdtm_BUG+0x4/0x10\r
[   12.006690] ---[ end trace 0000000000000000 ]---\r
[   12.007112] Kernel panic - not syncing: Fatal exception\r
[   12.007530] Kernel Offset: disabled\r
";

    #[test]
    fn bug_that_panics_at_once_names_the_bug() {
        let fault = judge(X86_BUG_PANIC_ON_OOPS, &Decoded::default(), None).unwrap();
        assert!(matches!(fault, Fault::KernelPanic { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel panic: Fatal exception (after kernel BUG at drivers/misc/lkdtm/bugs.c:105!)"
        );
    }

    #[test]
    fn bug_without_verbose_info_is_a_bug() {
        let console = "\
[    4.000000] Kernel BUG at lkdtm_BUG+0x4/0x10 [verbose debug info unavailable]\r
[    4.000100] Oops: invalid opcode: 0000 [#1] PREEMPT SMP\r
";
        let fault = judge(console, &ended(0), None).unwrap();
        assert!(matches!(fault, Fault::Bug { .. }), "{fault:?}");
        assert_eq!(
            fault.to_string(),
            "kernel bug: Kernel BUG at lkdtm_BUG+0x4/0x10 [verbose debug info unavailable]"
        );
    }

    #[test]
    fn a_warning_line_that_is_no_report_is_no_fault() {
        // GKI's built-in command line says "bootconfig"; a kernel without
        // CONFIG_BOOT_CONFIG warns about it, in capitals, at every boot.
        let console = "\
[    0.061234] WARNING: 'bootconfig' found on the kernel command line but CONFIG_BOOT_CONFIG is not set.\r
[    0.812345] Run /init as init process\r
";
        assert_eq!(judge(console, &ended(0), None), None);
    }

    #[test]
    fn an_empty_console_is_pointed_out_when_nothing_came_back() {
        let silence = Decoded::default();
        let fault = judge("", &silence, None).unwrap();
        assert!(
            fault.to_string().contains("console stayed empty")
                && fault.to_string().contains("CONFIG_CMDLINE_OVERRIDE"),
            "{fault}"
        );
        let fault = judge("\r\n", &silence, Some(Duration::from_secs(5))).unwrap();
        assert!(
            fault.to_string().contains("CONFIG_CMDLINE_OVERRIDE"),
            "{fault}"
        );
        let fault = judge(CLEAN_BOOT, &silence, None).unwrap();
        assert!(!fault.to_string().contains("console"), "{fault}");
    }
}
