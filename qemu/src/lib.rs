//! Kernel images and virtual machines for running the suite under another kernel.
