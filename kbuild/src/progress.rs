//! Progress reporting: builds take minutes, so each step says what it does.

/// Writes one progress line to stderr, prefixed `kbuild: `. Pass
/// `&mut kbuild::progress::stderr` where a progress callback is wanted.
pub fn stderr(line: &str) {
    eprintln!("kbuild: {line}");
}
