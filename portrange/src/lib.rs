//! The `portrange` application: the command line over the `cases`
//! catalogue, the VM glue that runs the suite inside a QEMU-booted kernel
//! (host side and `/init` side), the matrix of several kernels and the
//! merge of sharded runs.
//!
//! The libraries below it know nothing of it: `harness` runs and reports
//! cases, `cases` holds them, `qemu` boots kernels and `kbuild` builds them;
//! this crate wires them together.

mod cli;
pub mod compare;
pub mod matrix;
mod vm;

pub use cli::main;
