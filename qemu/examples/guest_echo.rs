//! A guest for `qemu::launch::run` that echoes its arguments back.
//!
//! As `/init` (PID 1) it sends each guest argument back as a message, except
//! for these words:
//! - `exit=N`: finish with exit code N (default 0);
//! - `die`: exit from PID 1 at once, so the kernel panics ("Attempted to kill init");
//! - `crash`: crash the kernel through `/proc/sysrq-trigger`;
//! - `modules`: send one message per module: `loaded NAME`, `builtin NAME` or
//!   `unavailable NAME: REASON`;
//! - `payload`: run the payload with `one "two words"` and send `payload exit N`;
//! - `patch-code=N`: switch the `kernel.sched_schedstats` static key N times
//!   while two threads hand a token back and forth (so every CPU keeps
//!   running the scheduler code the kernel is rewriting under it), then
//!   send `patched N times on C cpus`;
//! - `port-range=LO-HI`: set IP_LOCAL_PORT_RANGE on an IPv4 TCP socket,
//!   read it back, bind the socket to 127.0.0.1 port 0 and send
//!   `port range GOT_LO-GOT_HI bound PORT`.
//!
//! Run anywhere else (as the payload), it prints its arguments on stdout, one
//! per line, prints `to stderr` on stderr and exits with code 7.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use qemu::guest;

fn main() {
    if !guest::is_guest() {
        for arg in std::env::args().skip(1) {
            println!("{arg}");
        }
        eprintln!("to stderr");
        std::process::exit(7);
    }
    let mut guest = match guest::init() {
        Ok(guest) => guest,
        Err(error) => {
            eprintln!("guest_echo: {error}");
            std::process::exit(guest::SETUP_FAILED_EXIT_CODE);
        }
    };
    let mut exit_code = 0;
    for arg in guest.args().to_vec() {
        let sent = if let Some(code) = arg.strip_prefix("exit=") {
            exit_code = code.parse().unwrap_or(1);
            Ok(())
        } else if arg == "die" {
            std::process::exit(3);
        } else if arg == "crash" {
            std::fs::write("/proc/sysrq-trigger", "c").map_err(|source| guest::Error::Io {
                what: "writing to",
                path: "/proc/sysrq-trigger",
                source,
            })
        } else if let Some(count) = arg.strip_prefix("patch-code=") {
            // The report names the flips made: an unreadable N makes none.
            let count = count.parse().unwrap_or(0);
            patch_code(count)
                .and_then(|cpus| guest.send(&format!("patched {count} times on {cpus} cpus")))
        } else if let Some(range) = arg.strip_prefix("port-range=") {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            let (lo, hi) = (lo.parse().unwrap_or(0), hi.parse().unwrap_or(0));
            port_range(lo, hi).and_then(|report| guest.send(&report))
        } else if arg == "modules" {
            send_module_report(&mut guest)
        } else if arg == "payload" {
            let args = ["one".to_string(), "two words".to_string()];
            guest
                .run_payload(&args)
                .and_then(|code| guest.send(&format!("payload exit {code}")))
        } else {
            guest.send(&arg)
        };
        if let Err(error) = sent {
            eprintln!("guest_echo: {error}");
            exit_code = 1;
        }
    }
    guest.finish(exit_code)
}

fn send_module_report(guest: &mut guest::Guest) -> Result<(), guest::Error> {
    let report = guest.module_report().clone();
    for name in &report.loaded {
        guest.send(&format!("loaded {name}"))?;
    }
    for name in &report.builtin {
        guest.send(&format!("builtin {name}"))?;
    }
    for module in &report.unavailable {
        guest.send(&format!("unavailable {}: {}", module.name, module.reason))?;
    }
    Ok(())
}

/// The sysctl behind the `sched_schedstats` static key, whose branches sit
/// in the scheduler's hottest paths.
const SCHEDSTATS: &str = "/proc/sys/kernel/sched_schedstats";

/// Flips the schedstats static key `count` times (each flip has the kernel
/// rewrite its own code on all CPUs) while two threads keep context
/// switching; returns the number of online CPUs. The sysctl ends as it began.
fn patch_code(count: u32) -> Result<usize, guest::Error> {
    let io_error = |what| {
        move |source| guest::Error::Io {
            what,
            path: SCHEDSTATS,
            source,
        }
    };
    let before = std::fs::read_to_string(SCHEDSTATS).map_err(io_error("reading"))?;
    let sysctl = OpenOptions::new()
        .write(true)
        .open(SCHEDSTATS)
        .map_err(io_error("opening"))?;
    let (mut ping_end, mut pong_end) = UnixStream::pair().map_err(|source| guest::Error::Io {
        what: "creating",
        path: "a socket pair",
        source,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let pong = std::thread::spawn(move || {
        let mut token = [0u8];
        while pong_end.read_exact(&mut token).is_ok() && pong_end.write_all(&token).is_ok() {}
    });
    let ping = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut token = [0u8];
            while !stop.load(Ordering::Relaxed)
                && ping_end.write_all(&token).is_ok()
                && ping_end.read_exact(&mut token).is_ok()
            {}
        })
    };
    let flipped = (0..count).try_for_each(|i| {
        let value = if i % 2 == 0 { b"1" } else { b"0" };
        sysctl
            .write_at(value, 0)
            .map(drop)
            .map_err(io_error("writing"))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = ping.join();
    let _ = pong.join();
    flipped?;
    sysctl
        .write_at(before.trim().as_bytes(), 0)
        .map_err(io_error("restoring"))?;
    Ok(std::thread::available_parallelism().map_or(1, usize::from))
}

/// IP_LOCAL_PORT_RANGE (include/uapi/linux/in.h): the socket's own
/// ephemeral port range, the low port in the lower 16 bits of the value and
/// the high port in the upper 16.
const IP_LOCAL_PORT_RANGE: nix::libc::c_int = 51;

/// Sets the option to `lo`-`hi` on a fresh IPv4 TCP socket, reads it back,
/// binds to 127.0.0.1 port 0, and reports the range read and the port given.
fn port_range(lo: u16, hi: u16) -> Result<String, guest::Error> {
    use nix::libc;
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
    };
    let failed = |what| {
        move |source: std::io::Error| guest::Error::Io {
            what,
            path: "an IPv4 TCP socket",
            source,
        }
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| failed("creating")(errno.into()))?;
    let value = u32::from(lo) | (u32::from(hi) << 16);
    let size = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: fd is an open socket, and value outlives the call with its size passed.
    let set = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_LOCAL_PORT_RANGE,
            (&raw const value).cast(),
            size,
        )
    };
    if set != 0 {
        return Err(failed("setting IP_LOCAL_PORT_RANGE on")(
            std::io::Error::last_os_error(),
        ));
    }
    let mut got = 0u32;
    let mut got_size = size;
    // SAFETY: fd is an open socket; got and got_size outlive the call and
    // got_size holds got's size.
    let read = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_LOCAL_PORT_RANGE,
            (&raw mut got).cast(),
            &raw mut got_size,
        )
    };
    if read != 0 {
        return Err(failed("reading IP_LOCAL_PORT_RANGE of")(
            std::io::Error::last_os_error(),
        ));
    }
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0))
        .map_err(|errno| failed("binding")(errno.into()))?;
    let bound: SockaddrIn =
        getsockname(fd.as_raw_fd()).map_err(|errno| failed("naming")(errno.into()))?;
    Ok(format!(
        "port range {}-{} bound {}",
        got & 0xffff,
        got >> 16,
        bound.port()
    ))
}
