//! `portrange merge` input: `summary.json` files of shards, read with
//! serde_json into `portrange::matrix::Matrix`, merged, and rendered.
//!
//! Input layout: two JSON documents separated by the first NUL byte (no NUL:
//! the same document twice, which must be refused: every shard is then
//! given twice).
//! Then, for whatever parses, asserts: no panic anywhere (merge, table,
//! junit, per-kernel KTAP and text summaries, verdict); a summary written
//! back (`to_string_pretty`, as `publish` writes it) reads back equal; a
//! successful merge keeps every result, one column per distinct label, and
//! puts each kernel's results in catalogue order, and each merged column is
//! a whole run (shard 1/1) with a result for every case a shard planned;
//! the table has one row per property plus the header and the two summary
//! rows.

#![no_main]

use std::collections::BTreeSet;

use harness::report;
use libfuzzer_sys::fuzz_target;
use portrange::matrix::{Matrix, Shard};

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    let Ok(a) = serde_json::from_slice::<Matrix>(first) else {
        return;
    };
    let b = serde_json::from_slice::<Matrix>(second).unwrap_or_default();

    for part in [&a, &b] {
        let written = serde_json::to_string_pretty(part).expect("a Matrix always serializes");
        let read: Matrix = serde_json::from_str(&written).unwrap_or_else(|e| {
            panic!("summary.json as written does not read back: {e}\n{written}")
        });
        assert_eq!(
            &read, part,
            "summary.json changed on the way back:\n{written}"
        );
    }

    // The catalogue order: every case name seen, in reverse order of first
    // appearance, so sorting has work to do; names in `b` only are missing
    // from it and must go last.
    let mut order: Vec<String> = Vec::new();
    for kernel in &a.kernels {
        for result in &kernel.report.results {
            if !order.contains(&result.name) {
                order.push(result.name.clone());
            }
        }
    }
    order.reverse();

    let labels: BTreeSet<&str> = a
        .kernels
        .iter()
        .chain(&b.kernels)
        .map(|k| k.label.as_str())
        .collect();
    let results = a
        .kernels
        .iter()
        .chain(&b.kernels)
        .map(|k| k.report.results.len())
        .sum::<usize>();

    render(&a);
    let twice = first == second && !a.kernels.is_empty();
    let Ok(merged) = Matrix::merge(vec![a.clone(), b.clone()], &order) else {
        return;
    };
    assert!(!twice, "a summary merged with itself was accepted");
    assert_eq!(merged.kernels.len(), labels.len(), "one column per label");
    assert_eq!(
        merged
            .kernels
            .iter()
            .map(|k| k.report.results.len())
            .sum::<usize>(),
        results,
        "a merge must keep every result"
    );
    for kernel in &merged.kernels {
        let ranks: Vec<usize> = kernel
            .report
            .results
            .iter()
            .map(|r| {
                order
                    .iter()
                    .position(|n| *n == r.name)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        assert!(
            ranks.is_sorted(),
            "results of {} not in catalogue order: {ranks:?}",
            kernel.label
        );
        assert_eq!(
            kernel.shard,
            Shard::WHOLE,
            "merged {} is not a whole run",
            kernel.label
        );
        for name in &kernel.planned {
            assert!(
                kernel.report.results.iter().any(|r| r.name == *name),
                "merged {} accepted without a result for planned {name}",
                kernel.label
            );
        }
    }
    render(&merged);
});

fn render(matrix: &Matrix) {
    let table = matrix.table();
    let properties: BTreeSet<&str> = matrix
        .kernels
        .iter()
        .flat_map(|k| &k.report.results)
        .map(|r| r.name.split_once('/').map_or(r.name.as_str(), |(_, p)| p))
        .collect();
    // Only when no string that lands in the table has a line break of its
    // own (names come from the catalogue; a hand-edited file may hold any).
    let one_line = matrix.kernels.iter().all(|k| {
        !k.label.contains('\n')
            && k.report.results.iter().all(|r| {
                !r.name.contains('\n') && !r.profile.as_deref().unwrap_or("").contains('\n')
            })
            && k.report.probes.profiles.values().all(|p| !p.contains('\n'))
    });
    assert!(
        !one_line || table.matches('\n').count() == properties.len() + 3,
        "table rows: header, one per property, profile and verdict:\n{table}"
    );
    let _ = matrix.junit();
    let _ = matrix.verdict();
    for kernel in &matrix.kernels {
        let _ = report::ktap(&kernel.report);
        let _ = report::summary(&kernel.report);
        let _ = report::junit(&kernel.report);
    }
}
