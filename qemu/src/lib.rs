//! Kernel images and virtual machines for running a program under another kernel.
//!
//! Host side: [`kernel`] finds or fetches a kernel image, [`initramfs`] packs
//! a program as `/init` with its libraries and kernel modules, [`accel`]
//! decides between KVM and TCG (and [`tcg`] TCG's threading), [`launch`] boots QEMU and collects the
//! messages the guest sends on its result channel ([`frame`]), and [`fault`]
//! reads the console for crashes. Guest side: [`guest`] is what the program
//! calls when it runs as PID 1 inside the VM.
//!
//! Guests are x86_64 or arm64: a [`kernel::Kernel`] carries its
//! [`arch::Arch`], read from its image, and [`platform`] holds everything
//! about the VM that follows from it (QEMU binary and machine, CPU model,
//! console and result-channel devices); [`guest_program`] finds a program
//! cross-built for a guest of another architecture than the host's.
//!
//! A run that reports any [`fault::Fault`] is an error verdict for the caller,
//! never a pass, whatever messages came back.
//!
//! ```no_run
//! use std::time::Duration;
//! use qemu::{accel, kernel, launch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = kernel::default_cache_dir();
//! let kernel = kernel::resolve("debian-6.12", &cache, &mut |step| eprintln!("{step}"))?;
//! let qemu = qemu::binary::locate()?;
//! let memo = accel::Memo::in_cache(&cache);
//! let decision = accel::decide(accel::AccelChoice::Auto, &qemu, &kernel, &memo)?;
//! let config = launch::VmConfig {
//!     kernel,
//!     accel: decision.accel,
//!     append: vec![],
//!     timeout: Duration::from_secs(60),
//!     memory_mib: 256,
//!     console_log: None,
//!     init: "target/debug/examples/guest_echo".into(),
//!     payload: None,
//!     modules: vec!["sctp".into()],
//!     guest_args: vec!["hello".into()],
//! };
//! let run = launch::run(&config, &mut |received| match received {
//!     launch::Received::Message(message) => println!("{message}"),
//!     launch::Received::Stderr(line) => eprintln!("{line}"),
//!     launch::Received::Output(_, bytes) => print!("{}", String::from_utf8_lossy(bytes)),
//! })?;
//! match (&run.fault, run.exit_code) {
//!     (Some(fault), _) => eprintln!("error verdict: {fault}"),
//!     (None, Some(code)) => println!("guest exited with {code}"),
//!     (None, None) => unreachable!("no end frame is always a fault"),
//! }
//! # Ok(())
//! # }
//! ```

pub mod accel;
pub mod binary;
pub mod fault;
pub mod frame;
pub mod guest;
pub mod guest_program;
pub mod initramfs;
pub mod kernel;
pub mod launch;
mod layout;
pub mod platform;
mod process;
pub mod tcg;

pub use layout::{ModuleManifest, Unavailable};
