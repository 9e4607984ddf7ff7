//! KCIDB, the report format of KernelCI's common database: one checkout,
//! one build and a test per case, as schema v5.3 of the `kcidb-io` package
//! describes them.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Provenance, RunReport};
use crate::outcome::{CaseResult, Outcome};

/// The schema version written: the latest of `kcidb-io` (its
/// `kcidb_io.schema.LATEST`, v5.3 in kcidb-io 141).
pub const SCHEMA_VERSION: (u32, u32) = (5, 3);

/// The origin reported when none is given.
pub const DEFAULT_ORIGIN: &str = "portrange";

/// The test path every case's path starts with.
pub const SUITE: &str = "portrange";

/// The longest `log_excerpt` the schema takes.
const EXCERPT_MAX: usize = 16384;

/// Whether `origin` is one KCIDB takes: lowercase letters, digits and `_`,
/// at least one.
pub fn origin_is_valid(origin: &str) -> bool {
    !origin.is_empty()
        && origin
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A case's KCIDB test path: `portrange.` and its name with dots for
/// slashes (`portrange.tcp4.sockopt.round_trip`); any character the
/// schema's paths do not take becomes `_`.
pub fn test_path(case: &str) -> String {
    let node: String = case
        .chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => c,
            _ => '_',
        })
        .collect();
    format!("{SUITE}.{node}")
}

/// The report as a KCIDB JSON document: a checkout and a build named by
/// the run (`ORIGIN:RUN_ID`), and a test per case (`ORIGIN:RUN_ID:PATH`)
/// with its status, duration, message as the log excerpt and, for a
/// harness error in a run whose kernel faulted, the console log.
pub fn kcidb(report: &RunReport, provenance: &Provenance) -> String {
    let origin = provenance.origin.as_str();
    let run = format!("{origin}:{}", provenance.run_id);
    let kernel = &report.probes.kernel;
    let mut checkout_misc = Map::new();
    checkout_misc.insert("kernel_release".into(), json!(kernel));
    if !report.probes.build.is_empty() {
        checkout_misc.insert("kernel_version".into(), json!(report.probes.build));
    }
    let checkout = json!({
        "id": run,
        "origin": origin,
        "comment": format!("kernel {kernel}"),
        "misc": checkout_misc,
    });
    let mut build = json!({
        "id": run,
        "checkout_id": run,
        "origin": origin,
        "comment": format!("{} ({kernel})", report.target),
        "misc": {"kernel_release": kernel, "target": report.target},
    });
    if let Some(arch) = &provenance.arch {
        build["architecture"] = json!(arch);
    }
    if let Some(config) = &provenance.build_config {
        build["config_name"] = json!(file_name(config));
        build["config_url"] = json!(file_url(config));
    }
    let tests: Vec<Value> = report
        .results
        .iter()
        .map(|result| test(result, report, provenance, &run))
        .collect();
    let document = json!({
        "version": {"major": SCHEMA_VERSION.0, "minor": SCHEMA_VERSION.1},
        "checkouts": [checkout],
        "builds": [build],
        "tests": tests,
    });
    let mut text = serde_json::to_string_pretty(&document).expect("KCIDB documents serialize");
    text.push('\n');
    text
}

/// The KCIDB status of an outcome.
pub fn status(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail(_) => "FAIL",
        Outcome::Skip(_) => "SKIP",
        Outcome::Error(_) => "ERROR",
    }
}

fn test(result: &CaseResult, report: &RunReport, provenance: &Provenance, run: &str) -> Value {
    let path = test_path(&result.name);
    let mut misc = Map::new();
    misc.insert("case".into(), json!(result.name));
    for (key, value) in [
        ("profile", &result.profile),
        ("property", &result.property),
        ("note", &result.note),
    ] {
        if let Some(value) = value {
            misc.insert(key.into(), json!(value));
        }
    }
    let mut test = json!({
        "id": format!("{run}:{path}"),
        "build_id": run,
        "origin": provenance.origin,
        "path": path,
        "status": status(&result.outcome),
        "duration": result.micros as f64 / 1e6,
        "environment": {
            "comment": report.target,
            "misc": {"kernel_release": report.probes.kernel, "arch": provenance.arch},
        },
        "misc": misc,
    });
    if let Outcome::Fail(message) | Outcome::Skip(message) | Outcome::Error(message) =
        &result.outcome
    {
        test["log_excerpt"] = json!(excerpt(message));
    }
    if let (Outcome::Error(_), Some(console)) = (&result.outcome, &provenance.console_log) {
        test["output_files"] = json!([{"name": file_name(console), "url": file_url(console)}]);
    }
    test
}

/// `message` cut to the schema's longest excerpt, on a character boundary.
fn excerpt(message: &str) -> &str {
    if message.len() <= EXCERPT_MAX {
        return message;
    }
    let mut end = EXCERPT_MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned())
}

/// A `file://` URL of `path` (absolute as given; a relative path is taken
/// from the working directory), with what a URL cannot hold
/// percent-encoded.
fn file_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut url = String::from("file://");
    for byte in absolute.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~+".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::report::fixture::fake_report;

    fn provenance() -> Provenance {
        Provenance {
            origin: "portrange".into(),
            run_id: "6.18.0-test:x86_64:1".into(),
            arch: Some("x86_64".into()),
            build_config: Some(PathBuf::from("/src/build.config.portrange.minimal.x86_64")),
            console_log: Some(PathBuf::from("/tmp/console log.txt")),
        }
    }

    #[test]
    fn each_case_is_a_test_under_the_run_with_its_status() {
        let value: Value = serde_json::from_str(&kcidb(&fake_report(), &provenance())).unwrap();
        assert_eq!(value["version"], json!({"major": 5, "minor": 3}));
        let run = "portrange:6.18.0-test:x86_64:1";
        assert_eq!(value["checkouts"][0]["id"], run);
        assert_eq!(value["builds"][0]["checkout_id"], run);
        assert_eq!(value["builds"][0]["architecture"], "x86_64");
        assert_eq!(
            value["builds"][0]["config_name"],
            "build.config.portrange.minimal.x86_64"
        );
        let tests = value["tests"].as_array().unwrap();
        let got: Vec<(&str, &str)> = tests
            .iter()
            .map(|t| (t["path"].as_str().unwrap(), t["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("portrange.tcp4.sockopt.round_trip", "PASS"),
                ("portrange.tcp4.bind_zero.exhausts_with_eaddrinuse", "FAIL"),
                ("portrange.sctp4.sockopt.round_trip", "SKIP"),
                ("portrange.tcp4.connect.autobind_in_range", "ERROR"),
            ]
        );
        assert_eq!(
            tests[0]["id"],
            format!("{run}:portrange.tcp4.sockopt.round_trip")
        );
        assert_eq!(tests[0]["misc"]["profile"], "upstream");
        assert_eq!(tests[0]["duration"], 0.0015);
        assert_eq!(
            tests[1]["log_excerpt"],
            "9th bind(): expected EADDRINUSE,\nbut it succeeded"
        );
        assert!(tests[1].get("output_files").is_none());
        assert_eq!(
            tests[3]["output_files"],
            json!([{"name": "console log.txt", "url": "file:///tmp/console%20log.txt"}])
        );
    }

    #[test]
    fn paths_and_origins_keep_to_the_schema() {
        assert_eq!(
            test_path("vm/run/shard-1-of-2"),
            "portrange.vm.run.shard-1-of-2"
        );
        assert_eq!(test_path("a b/c.d"), "portrange.a_b.c_d");
        assert!(origin_is_valid("portrange") && origin_is_valid("lab_2"));
        for bad in ["", "Portrange", "my-lab", "a:b"] {
            assert!(!origin_is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_excerpt_stops_at_the_limit_on_a_character_boundary() {
        let long = "é".repeat(EXCERPT_MAX);
        let cut = excerpt(&long);
        assert!(cut.len() <= EXCERPT_MAX && cut.len() > EXCERPT_MAX - 2);
    }
}
