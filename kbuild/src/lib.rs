//! Kernel builds driven by Android build.config files.
