//! Kernel builds driven by Android build.config files.
//!
//! [`config::evaluate`] sources a build.config with bash the way Android's
//! build.sh does and reads the variables back; [`build::build`] builds that
//! kernel out of tree with the project's own fragment merged in and checked;
//! [`source::fetch_debian`] brings Debian's linux-source trees, for which
//! [`shipped`] has ACK-format build.config files. Kernels are built for
//! x86_64 or arm64 (the config's ARCH), from any host; what differs between
//! them is in [`per_arch`].

pub mod build;
pub mod build_log;
pub mod cmds;
pub mod config;
pub mod error;
pub mod kconfig;
mod location;
pub mod pahole;
pub mod per_arch;
pub mod progress;
mod session;
pub mod shipped;
pub mod source;
mod stage;
pub mod toolchain;

pub use build::{BuildOptions, Built, Configured, build, configure};
pub use config::{BuildConfig, Location, evaluate, print};
pub use error::{BuildError, ConfigError, SourceError};
