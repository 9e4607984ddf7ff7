//! Everything that runs real bash: build.config evaluation, the defconfig
//! commands and their helpers, toolchain choice on trees made in temporary
//! directories.

mod ack_tree;
mod build_errors;
mod defconfig_cmds;
mod errors;
mod support;
mod toolchain;
