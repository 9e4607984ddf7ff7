//! `cargo test` entry: every case against the running kernel, each in its
//! own network namespace. Needs root (or unprivileged user namespaces);
//! without them every case is reported ignored with the reason.

fn main() -> std::process::ExitCode {
    harness::runner::libtest_main(cases::catalogue())
}
