//! `portrange compare`: what changed from one run to another.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output::write_whole;
use crate::compare::{Comparison, Input};

/// Arguments of `portrange compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The run before (a `--format json` report of `run`, `vm` or
    /// `check`, or a matrix's or merge's summary.json).
    #[arg(value_name = "BASE")]
    base: PathBuf,
    /// The run after, in either form.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    /// The kernel column to take from a summary.json with several: given
    /// once, for each file that is a summary; given twice, the first for
    /// BASE and the second for NEW (two columns of one matrix).
    #[arg(long = "column", value_name = "LABEL", num_args = 1, action = clap::ArgAction::Append)]
    columns: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    format: CompareFormat,
    /// Write the formatted comparison to FILE (the terminal then gets the
    /// text).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Formats of `portrange compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompareFormat {
    /// Kernels and profiles, regressions by property, every other change.
    Text,
    /// The whole comparison as JSON.
    Json,
    /// JUnit XML: a regression is a failure.
    Junit,
}

/// Runs `portrange compare`: exit 1 on any regression, 0 otherwise.
pub fn run(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let base = Input::read(&args.base)?;
    let new = Input::read(&args.new)?;
    let (base, new) = match args.columns.as_slice() {
        [] => (base.side(None)?, new.side(None)?),
        [both] if base.is_summary() || new.is_summary() => {
            let column = |input: &Input| input.is_summary().then_some(both.as_str());
            let (base_column, new_column) = (column(&base), column(&new));
            (base.side(base_column)?, new.side(new_column)?)
        }
        [both] => (base.side(Some(both))?, new.side(Some(both))?),
        [base_column, new_column] => (base.side(Some(base_column))?, new.side(Some(new_column))?),
        more => anyhow::bail!(
            "--column given {} times: give it once (for each summary.json) or twice (BASE's, then NEW's)",
            more.len()
        ),
    };
    let comparison = Comparison::of(&base, &new);
    let rendered = match args.format {
        CompareFormat::Text => comparison.text(),
        CompareFormat::Json => comparison.json(),
        CompareFormat::Junit => comparison.junit(),
    };
    match &args.output {
        Some(path) => {
            write_whole(path, &rendered)?;
            print!("{}", comparison.text());
        }
        None => print!("{rendered}"),
    }
    Ok(if comparison.regressed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
