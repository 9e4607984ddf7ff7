//! docs/cli.md is generated from the built binary's `--help`, never typed:
//! this test renders the help of every command (clap's subcommands, found
//! from each help's `Commands:` list, and every scenario `portrange
//! scenario` knows) and fails when the committed file differs.
//!
//! Regenerate it with the command in [`BLESS`].

mod common;

use std::path::{Path, PathBuf};

use common::command;

/// The one command that rewrites docs/cli.md from the binary.
const BLESS: &str = "PORTRANGE_BLESS=1 cargo test -p portrange --test docs_cli";

/// The committed reference.
fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md")
}

/// What the binary prints to stdout for `args` (help goes to stdout and
/// exits 0), with a fixed terminal width so wrapping cannot depend on the
/// machine.
fn stdout_of(args: &[&str]) -> String {
    let output = command(args)
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .output()
        .expect("run portrange");
    assert!(
        output.status.success(),
        "portrange {} exited with {}: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:` (clap's `help`
/// pseudo-command left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim_end() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The names `portrange scenario` accepts, read from its refusal of an
/// unknown one ("known scenarios are NAME (ABOUT), NAME (ABOUT)").
fn scenarios() -> Vec<String> {
    let output = command(&["scenario", "no-such-scenario"])
        .output()
        .expect("run portrange");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (_, list) = stderr
        .split_once("known scenarios are ")
        .unwrap_or_else(|| panic!("no list of scenarios in: {stderr}"));
    let mut names = Vec::new();
    let mut rest = list.trim_end();
    while let Some((name, after)) = rest.split_once(" (") {
        names.push(name.trim_start_matches(", ").to_string());
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(at, _)| at)
            .unwrap_or_else(|| panic!("unbalanced scenario list: {list}"));
        rest = &after[end + 1..];
    }
    assert!(!names.is_empty(), "no scenario named in: {stderr}");
    names
}

/// The help of `portrange scenario NAME`: the scenario parses its own
/// arguments, so where `scenario NAME --help` only reaches `scenario`'s
/// own help, the flag is passed after `--`.
fn scenario_help(name: &str) -> (String, String) {
    let outer = stdout_of(&["scenario", "--help"]);
    let direct = stdout_of(&["scenario", name, "--help"]);
    if direct != outer {
        return (format!("portrange scenario {name} --help"), direct);
    }
    (
        format!("portrange scenario {name} -- --help"),
        stdout_of(&["scenario", name, "--", "--help"]),
    )
}

/// Every command line whose help the reference holds, with that help:
/// the top level, then each subcommand depth first, then the scenarios.
fn helps() -> Vec<(String, String)> {
    let mut helps = Vec::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = stdout_of(&args);
        for name in subcommands(&help).into_iter().rev() {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        helps.push((format!("portrange {}", args.join(" ")), help));
    }
    helps.extend(scenarios().iter().map(|name| scenario_help(name)));
    helps
}

/// The whole reference page.
fn render() -> String {
    let helps = helps();
    let mut page = String::from(
        "# Command-line reference\n\
         \n\
         Generated from the binary, not typed: each section below is what\n\
         the command's `--help` prints (clap renders it from the code).\n\
         `portrange/tests/docs_cli.rs` fails when this file differs from what\n\
         the built binary prints; after changing a command, a flag or its\n\
         help, regenerate this file with\n\
         \n",
    );
    page.push_str(&format!("    {BLESS}\n\nCommands:\n\n"));
    for (line, _) in &helps {
        page.push_str(&format!("- `{line}`\n"));
    }
    for (line, help) in &helps {
        page.push_str(&format!(
            "\n## `{line}`\n\n```text\n{}\n```\n",
            help.trim_end()
        ));
    }
    page
}

#[test]
fn cli_reference_is_what_help_prints() {
    let rendered = render();
    let path = reference();
    if std::env::var_os("PORTRANGE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == rendered {
        return;
    }
    let first = committed
        .lines()
        .zip(rendered.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
    let line = |text: &str| {
        text.lines()
            .nth(first)
            .unwrap_or("<end of file>")
            .to_string()
    };
    panic!(
        "docs/cli.md differs from what `--help` prints, first at line {}:\n  \
         committed: {}\n  rendered:  {}\nRegenerate it with:\n    {BLESS}",
        first + 1,
        line(&committed),
        line(&rendered),
    );
}

#[test]
fn subcommands_are_read_from_the_commands_list() {
    let help =
        "Usage: x\n\nCommands:\n  list  List\n  run   Run it\n  help  Print\n\nOptions:\n  -h\n";
    assert_eq!(subcommands(help), ["list", "run"]);
}
