//! Builds a kernel from a build.config, or prints the config: the library's
//! flow end to end, until `portrange build` wires it into the tool.
//!
//! ```text
//! cargo run -p kbuild --example kbuild -- [--print-config]
//!     [--configure-only] (--debian VERSION | --source DIR) [--build-config FILE] [--out DIR]
//! ```
//! With `--debian`, the source is fetched into the cache and the build
//! config defaults to the shipped minimal one. The bzImage path goes to
//! stdout (the .config path with `--configure-only`), progress to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use kbuild::{BuildOptions, Location, progress, shipped, source};

#[derive(Default)]
struct Args {
    print_config: bool,
    configure_only: bool,
    debian: Option<String>,
    source: Option<PathBuf>,
    build_config: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--print-config" => args.print_config = true,
            "--configure-only" => args.configure_only = true,
            "--debian" => args.debian = Some(value()?),
            "--source" => args.source = Some(value()?.into()),
            "--build-config" => args.build_config = Some(value()?.into()),
            "--out" => args.out = Some(value()?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let cache = source::cache_dir()?;
    let source_dir = match (&args.debian, &args.source) {
        (Some(version), None) => source::fetch_debian(version, &cache, &mut progress::stderr)?,
        (None, Some(dir)) => dir.clone(),
        _ => return Err("pass exactly one of --debian VERSION and --source DIR".into()),
    };
    let file = args
        .build_config
        .unwrap_or_else(|| shipped::config(shipped::MINIMAL));
    let config = kbuild::evaluate(&Location::from_source(&source_dir)?, &file)?;
    if args.print_config {
        print!("{}", kbuild::print(&config));
        return Ok(());
    }
    let out = args.out.unwrap_or_else(|| source::out_dir(&cache, &config));
    let options = BuildOptions::new(out);
    if args.configure_only {
        let configured = kbuild::configure(&config, &options, &mut progress::stderr)?;
        println!("{}", configured.out_dir.join(".config").display());
        return Ok(());
    }
    let built = kbuild::build(&config, &options, &mut progress::stderr)?;
    println!("{}", built.bzimage.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbuild: error: {e}");
            ExitCode::FAILURE
        }
    }
}
