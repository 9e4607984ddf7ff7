//! Where a run's report goes: the format, an optional file, the terminal.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use harness::outcome::CaseResult;
use harness::report::{self, Format, RunReport};

/// `--format` and `--output`.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the formatted report to FILE (the terminal then gets the text
    /// summary).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl OutputArgs {
    /// Whether a line per finished case goes to stdout as the run goes
    /// (never when stdout carries KTAP or JUnit).
    pub fn streams_progress(&self) -> bool {
        self.format == Format::Text || self.output.is_some()
    }

    /// Prints the progress line for `result` if this output streams.
    pub fn progress(&self, result: &CaseResult) {
        if self.streams_progress() {
            println!("{}", report::progress_line(result));
        }
    }

    /// Writes the report in the asked format (to `--output` or stdout), the
    /// text summary to the terminal when the format went to a file, and
    /// gives the verdict's exit code.
    pub fn finish(&self, report: &RunReport) -> anyhow::Result<ExitCode> {
        self.emit(&report::render(self.format, report))?;
        if self.output.is_some() && self.format != Format::Text {
            print!("{}", report::summary(report));
        }
        Ok(report.verdict().process_exit())
    }

    /// Writes `rendered` to `--output` (whole or not at all) or stdout.
    pub fn emit(&self, rendered: &str) -> anyhow::Result<()> {
        match &self.output {
            Some(path) => write_whole(path, rendered),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(rendered.as_bytes())?;
                out.flush()?;
                Ok(())
            }
        }
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it, so
/// a reader never sees half a report.
pub fn write_whole(path: &Path, contents: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let temporary = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}
