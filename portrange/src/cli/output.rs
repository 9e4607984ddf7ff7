//! Where a run's report goes: the format, an optional file, the terminal.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use arch::Arch;

use harness::Case;
use harness::outcome::CaseResult;
use harness::report::{self, Format, KtapStream, Provenance, RunReport};

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
    /// With `--format kcidb`: the CI system to report as (KCIDB's
    /// `origin`, the start of every id: lowercase letters, digits, `_`).
    #[arg(long, value_name = "ORIGIN", default_value = report::kcidb::DEFAULT_ORIGIN, value_parser = kcidb_origin)]
    pub kcidb_origin: String,
}

/// What the caller knows of a run that its report does not say.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The kernel's architecture; `None` when the run never learned it.
    pub arch: Option<Arch>,
    /// The build.config or defconfig the kernel was built from by this run.
    pub build_config: Option<PathBuf>,
    /// The kernel console's log, kept because the kernel faulted.
    pub console_log: Option<PathBuf>,
}

impl RunFacts {
    /// A run on the host's own kernel: nothing built, no console.
    pub fn native() -> RunFacts {
        RunFacts {
            arch: Some(Arch::host()),
            build_config: None,
            console_log: None,
        }
    }
}

/// The provenance of `report` as `origin` reports it: `facts`, and a run
/// id of the kernel release, the architecture, and the time of the report
/// (milliseconds since the epoch) with this process's id.
pub fn provenance(origin: &str, report: &RunReport, facts: &RunFacts) -> Provenance {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let arch = facts.arch.map(|arch| arch.to_string());
    Provenance {
        origin: origin.to_owned(),
        run_id: format!(
            "{}:{}:{millis}-{}",
            report.probes.kernel,
            arch.as_deref().unwrap_or("unknown"),
            std::process::id()
        ),
        arch,
        build_config: facts.build_config.clone(),
        console_log: facts.console_log.clone(),
    }
}

/// Parses `--kcidb-origin`.
pub fn kcidb_origin(origin: &str) -> Result<String, String> {
    if report::kcidb::origin_is_valid(origin) {
        Ok(origin.to_owned())
    } else {
        Err(format!(
            "{origin:?} is no KCIDB origin: use lowercase letters, digits and `_` (e.g. my_lab)"
        ))
    }
}

impl OutputArgs {
    /// Whether a line per finished case goes to stdout as the run goes
    /// (never when stdout carries the report).
    pub fn streams_progress(&self) -> bool {
        self.format == Format::Text || self.output.is_some()
    }

    /// Whether the report itself goes to stdout as the run goes: KTAP
    /// without `--output` (a file is written whole at the end).
    pub fn streams_ktap(&self) -> bool {
        self.format == Format::Ktap && self.output.is_none()
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
    pub fn finish(&self, report: &RunReport, facts: &RunFacts) -> anyhow::Result<ExitCode> {
        self.emit(&report::render(
            self.format,
            report,
            &self.provenance(report, facts),
        ))?;
        if self.output.is_some() && self.format != Format::Text {
            print!("{}", report::summary(report));
        }
        Ok(report.verdict().process_exit())
    }

    /// The run's provenance for the reports that carry it: `--kcidb-origin`,
    /// `facts`, and a run id of the kernel release, the architecture and
    /// the time of the report (milliseconds since the epoch) with this
    /// process's id.
    fn provenance(&self, report: &RunReport, facts: &RunFacts) -> Provenance {
        provenance(&self.kcidb_origin, report, facts)
    }

    /// Checks that `--output`, if given, can be written
    /// ([`check_writable`]): call it before the run.
    pub fn check_writable(&self) -> anyhow::Result<()> {
        self.output.as_deref().map_or(Ok(()), check_writable)
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

/// A native run's output as the run goes: progress lines, or with
/// [`OutputArgs::streams_ktap`] the KTAP report itself, so a run that dies
/// midway leaves the head and the results so far on stdout. Clones share
/// one stream.
#[derive(Debug, Clone)]
pub struct Live {
    args: OutputArgs,
    planned: Vec<String>,
    ktap: Arc<Mutex<Option<KtapStream<io::Stdout>>>>,
}

impl Live {
    /// Output as `args` asks for a run of `cases`.
    pub fn new(args: &OutputArgs, cases: &[Case]) -> Live {
        Live {
            args: args.clone(),
            planned: cases.iter().map(|case| case.name.clone()).collect(),
            ktap: Arc::default(),
        }
    }

    /// The run started: with KTAP streaming, writes its head and plan.
    pub fn start(&self, started: &RunReport) {
        if self.args.streams_ktap() {
            let stream = KtapStream::start(io::stdout(), started, &self.planned);
            *self.stream() = Some(stream);
        }
    }

    /// A case ended: its KTAP lines (once the cases before it ended too),
    /// or its progress line.
    pub fn result(&self, result: &CaseResult) {
        match self.stream().as_mut() {
            Some(stream) => stream.record(result),
            None => self.args.progress(result),
        }
    }

    /// The run ended: the rest of the streamed KTAP, or the report as
    /// [`OutputArgs::finish`] writes it; gives the verdict's exit code.
    pub fn finish(&self, report: &RunReport) -> anyhow::Result<ExitCode> {
        match self.stream().take() {
            Some(stream) => {
                stream.finish(report).context("writing KTAP to stdout")?;
                Ok(report.verdict().process_exit())
            }
            None => self.args.finish(report, &RunFacts::native()),
        }
    }

    fn stream(&self) -> std::sync::MutexGuard<'_, Option<KtapStream<io::Stdout>>> {
        // A result callback that panicked mid-write leaves the stream as
        // usable as any half-written pipe.
        self.ktap.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it, so
/// a reader never sees half a report.
pub fn write_whole(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temporary = temporary_beside(path)?;
    fs::write(&temporary, contents)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Checks, before any work whose report (or log) would go to `path`, that
/// a file can be written there as [`write_whole`] writes it: `path` names
/// a file, not a directory, and the temporary file beside it can be made
/// (it is removed again). The error names `path` and the OS error, for
/// the caller to stop with before anything runs.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    let temporary = temporary_beside(path)?;
    if path.is_dir() {
        anyhow::bail!(
            "cannot write {}: it is a directory: name a file",
            path.display()
        );
    }
    fs::write(&temporary, "")
        .and_then(|()| fs::remove_file(&temporary))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The temporary file [`write_whole`] writes before renaming it to `path`.
fn temporary_beside(path: &Path) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    Ok(path.with_file_name(format!(".{}.partial", name.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_path_passes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("report.xml")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_is_named_with_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/report.xml");
        let error = check_writable(&path).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "cannot write {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn a_directory_is_no_report_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = check_writable(dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("it is a directory: name a file"),
            "{error:#}"
        );
    }
}
