//! docs/spec.md is the project's specification: every property the suite
//! checks, with its source of truth and the cases that check it. This test
//! holds the page and `portrange list` to each other: every case is
//! covered by a property, every property names cases that exist.
//!
//! The page's fixed format: each `### ` heading is a property; under it a
//! line `- source: ...` (not empty) and a line `- cases: ` with the
//! property's case patterns in backticks (continued on indented lines).
//! A pattern is a whole case name in which `*` stands for any run of
//! characters other than `/` (`*/sockopt/round_trip`, `tcp*/connect/*`).

mod common;

use std::path::Path;

use common::portrange;

/// A property of docs/spec.md: its heading, source and case patterns.
#[derive(Debug)]
struct Property {
    title: String,
    source: String,
    patterns: Vec<String>,
}

/// The properties of a page in the format above.
fn properties(page: &str) -> Vec<Property> {
    let mut properties: Vec<Property> = Vec::new();
    let mut in_cases = false;
    for line in page.lines() {
        if let Some(title) = line.strip_prefix("### ") {
            properties.push(Property {
                title: title.trim().to_string(),
                source: String::new(),
                patterns: Vec::new(),
            });
            in_cases = false;
            continue;
        }
        let Some(property) = properties.last_mut() else {
            continue;
        };
        if line.starts_with('#') {
            in_cases = false;
        } else if let Some(source) = line.strip_prefix("- source:") {
            property.source = source.trim().to_string();
            in_cases = false;
        } else if let Some(cases) = line.strip_prefix("- cases:") {
            property.patterns.extend(backticked(cases));
            in_cases = true;
        } else if in_cases && line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            property.patterns.extend(backticked(line));
        } else {
            in_cases = false;
        }
    }
    properties
}

/// The backtick-quoted words of `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters other than `/`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            let segment_end = rest.find('/').unwrap_or(rest.len());
            (0..=segment_end).any(|taken| matches(tail, &rest[taken..]))
        }
    }
}

/// The page and the case names `portrange list` prints.
fn page_and_cases() -> (Vec<Property>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/spec.md");
    let page = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let output = portrange(&["list"]);
    assert!(output.status.success(), "portrange list: {output:?}");
    let cases = String::from_utf8(output.stdout)
        .expect("case names are UTF-8")
        .lines()
        .map(str::to_string)
        .collect();
    (properties(&page), cases)
}

#[test]
fn every_case_is_covered_by_a_property() {
    let (properties, cases) = page_and_cases();
    let uncovered: Vec<&String> = cases
        .iter()
        .filter(|case| {
            !properties
                .iter()
                .flat_map(|p| &p.patterns)
                .any(|pattern| matches(pattern, case))
        })
        .collect();
    assert!(
        uncovered.is_empty(),
        "{} case(s) of `portrange list` checked by no property of docs/spec.md: \
         add each to the `- cases:` line of the property it checks (or a new `### ` \
         property with its `- source:`):\n  {}",
        uncovered.len(),
        uncovered
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn every_property_has_a_source_and_names_existing_cases() {
    let (properties, cases) = page_and_cases();
    assert!(
        properties.len() > 10,
        "docs/spec.md has only {} `### ` properties: is its format broken?",
        properties.len()
    );
    let mut problems = Vec::new();
    for property in &properties {
        if property.source.is_empty() {
            problems.push(format!("{:?}: no `- source:` line", property.title));
        }
        if property.patterns.is_empty() {
            problems.push(format!("{:?}: no case pattern", property.title));
        }
        for pattern in &property.patterns {
            if !cases.iter().any(|case| matches(pattern, case)) {
                problems.push(format!(
                    "{:?}: `{pattern}` matches no case of `portrange list`",
                    property.title
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/spec.md:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn patterns_match_within_one_name_segment() {
    assert!(matches("*/sockopt/round_trip", "tcp4/sockopt/round_trip"));
    assert!(matches("tcp*/connect/*", "tcp4in6/connect/autobind"));
    assert!(matches("*6/clamp/x", "udp4in6/clamp/x"));
    assert!(!matches("*/round_trip", "tcp4/sockopt/round_trip"));
    assert!(!matches(
        "*/sockopt/round_trip",
        "tcp4/sockopt/round_trip_more"
    ));
}

#[test]
fn the_format_is_read_as_documented() {
    let page = "# Title\n\n### A property\n\nText.\n\n- source: f.c, `fn`\n- cases: `a/*`, `b/c`\n  `d/e`\n\nMore text `not/a/case`.\n\n### Another\n- cases: `x/y`\n";
    let properties = properties(page);
    assert_eq!(properties.len(), 2);
    assert_eq!(properties[0].source, "f.c, `fn`");
    assert_eq!(properties[0].patterns, ["a/*", "b/c", "d/e"]);
    assert_eq!(properties[1].source, "");
    assert_eq!(properties[1].patterns, ["x/y"]);
}
