//! Kernel images and virtual machines for running a program under another kernel.
//!
//! Host side: [`kernel`] finds or fetches a kernel image, [`initramfs`] packs
//! a program as `/init` with its libraries and kernel modules, [`accel`]
//! decides between KVM and TCG, [`launch`] boots QEMU and collects the
//! messages the guest sends on its result channel ([`frame`]), and [`fault`]
//! reads the console for crashes. Guest side: [`guest`] is what the program
//! calls when it runs as PID 1 inside the VM.
//!
//! A run that reports any [`fault::Fault`] is an error verdict for the caller,
//! never a pass, whatever messages came back.

pub mod accel;
pub mod binary;
pub mod fault;
pub mod frame;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod launch;
mod layout;
mod process;

pub use layout::{ModuleManifest, Unavailable};
