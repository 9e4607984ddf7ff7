//! A guest for `qemu::launch::run` that echoes its arguments back.
//!
//! As `/init` (PID 1) it sends each guest argument back as a message, except
//! for these words:
//! - `exit=N`: finish with exit code N (default 0);
//! - `die`: exit from PID 1 at once, so the kernel panics ("Attempted to kill init");
//! - `crash`: crash the kernel through `/proc/sysrq-trigger`;
//! - `modules`: send one message per module: `loaded NAME`, `builtin NAME` or
//!   `unavailable NAME: REASON`;
//! - `payload`: run `/payload one "two words"` and send `payload exit N`.
//!
//! Run anywhere else (as `/payload`), it prints its arguments on stdout, one
//! per line, prints `to stderr` on stderr and exits with code 7.

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
