//! KTAP version 1 (Documentation/dev-tools/ktap.rst), with kselftest's
//! totals line so its tooling reads the counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;

use super::{RunReport, one_line};
use crate::outcome::{CaseResult, Outcome};

/// The report as a KTAP document: version, header diagnostics, plan, one
/// result line per case (failure details as diagnostics before it), totals.
pub fn ktap(report: &RunReport) -> String {
    let mut out = head(report, report.results.len());
    for (number, result) in (1..).zip(&report.results) {
        out.push_str(&result_lines(number, result));
    }
    out.push_str(&tail(report));
    out
}

/// KTAP written as a run goes, for a reader that may see the run die: the
/// version, header and plan as soon as the run starts, each result as soon
/// as it and every case before it have ended (results keep the plan's
/// order, so the output is byte for byte what [`ktap`] gives for the
/// finished report), the totals at the end. A run that dies midway leaves
/// a valid head and the results so far, which KTAP parsers report as the
/// missing cases crashing.
///
/// The first write error stops the writing and is returned by
/// [`KtapStream::finish`].
#[derive(Debug)]
pub struct KtapStream<W: io::Write> {
    out: W,
    /// Each planned case's place in the plan, from 0.
    places: HashMap<String, usize>,
    /// Results that ended before a case ahead of them, by place.
    waiting: BTreeMap<usize, CaseResult>,
    /// The place of the next result to write.
    next: usize,
    error: Option<io::Error>,
}

impl<W: io::Write> KtapStream<W> {
    /// Writes the head of `started` (a report with its target, probes and
    /// notes, and no results yet) with a plan of the `planned` cases, in
    /// the order their results will be written.
    pub fn start(out: W, started: &RunReport, planned: &[String]) -> KtapStream<W> {
        let mut stream = KtapStream {
            out,
            places: planned
                .iter()
                .enumerate()
                .map(|(place, name)| (name.clone(), place))
                .collect(),
            waiting: BTreeMap::new(),
            next: 0,
            error: None,
        };
        stream.write(&head(started, planned.len()));
        stream
    }

    /// Takes the result of a case that ended, writing it and any waiting
    /// behind it once every case before it has ended. A result of a case
    /// that was not planned is left to [`KtapStream::finish`].
    pub fn record(&mut self, result: &CaseResult) {
        let Some(&place) = self.places.get(&result.name) else {
            return;
        };
        if place < self.next {
            return;
        }
        self.waiting.insert(place, result.clone());
        let mut ready = String::new();
        while let Some(result) = self.waiting.remove(&self.next) {
            self.next += 1;
            ready.push_str(&result_lines(self.next, &result));
        }
        self.write(&ready);
    }

    /// Writes the results of `finished` not yet written (`finished` holds
    /// the planned cases' results in plan order, first) and the totals, and
    /// gives back the writer, or the first write error.
    pub fn finish(mut self, finished: &RunReport) -> io::Result<W> {
        let mut rest = String::new();
        for (number, result) in (1..).zip(&finished.results).skip(self.next) {
            rest.push_str(&result_lines(number, result));
        }
        rest.push_str(&tail(finished));
        self.write(&rest);
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.out),
        }
    }

    fn write(&mut self, text: &str) {
        if self.error.is_some() || text.is_empty() {
            return;
        }
        let written = self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush());
        self.error = written.err();
    }
}

/// Version, header diagnostics and a plan of `planned` results.
fn head(report: &RunReport, planned: usize) -> String {
    let mut out = String::from("KTAP version 1\n");
    let _ = writeln!(
        out,
        "# portrange: IP_LOCAL_PORT_RANGE conformance on {}",
        report.target
    );
    let _ = writeln!(out, "# kernel: {}", report.probes.kernel);
    for note in report.probes.notes() {
        let _ = writeln!(out, "# probe: {}", one_line(&note));
    }
    for note in &report.notes {
        let _ = writeln!(out, "# {}", one_line(note));
    }
    let _ = writeln!(out, "1..{planned}");
    out
}

/// The lines of result `number`: its diagnostics, then the result line.
fn result_lines(number: usize, result: &CaseResult) -> String {
    let mut out = String::new();
    let name = result.name.replace('#', "_");
    if let Some(profile) = &result.profile {
        let _ = writeln!(out, "# {name}: matched kernel profile {profile}");
    }
    if let Some(note) = &result.note {
        let _ = writeln!(out, "# {name}: {}", one_line(note));
    }
    let _ = match &result.outcome {
        Outcome::Pass => writeln!(out, "ok {number} {name}"),
        Outcome::Skip(reason) => {
            writeln!(out, "ok {number} {name} # SKIP {}", one_line(reason))
        }
        Outcome::Fail(message) => {
            diagnostics(&mut out, &format!("{name}: {message}"));
            writeln!(out, "not ok {number} {name}")
        }
        Outcome::Error(message) => {
            diagnostics(&mut out, &format!("{name}: harness error: {message}"));
            writeln!(out, "not ok {number} {name}")
        }
    };
    out
}

/// The lines after the last result: profiles and kselftest's totals.
fn tail(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# kernel profile: {}", report.profiles_line());
    let totals = report.totals();
    let _ = writeln!(
        out,
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:{}",
        totals.pass, totals.fail, totals.skip, totals.error
    );
    out
}

/// Writes `text` as diagnostic lines, continuation lines indented.
fn diagnostics(out: &mut String, text: &str) {
    for (index, line) in text.lines().enumerate() {
        let indent = if index == 0 { "" } else { "  " };
        let _ = writeln!(out, "# {indent}{}", line.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::fake_report;

    #[test]
    fn ktap_output_is_pinned() {
        let expected = "\
KTAP version 1
# portrange: IP_LOCAL_PORT_RANGE conformance on running kernel
# kernel: 6.18.0-test
# probe: sctp4: SCTP over IPv4 is not available in this kernel (socket: EPROTONOSUPPORT (Protocol not supported))
# vm: 3.2 s from QEMU start to exit
1..4
# tcp4/sockopt/round_trip: matched kernel profile upstream
# tcp4/sockopt/round_trip: 500 configurations
ok 1 tcp4/sockopt/round_trip
# tcp4/bind_zero/exhausts_with_eaddrinuse: 9th bind(): expected EADDRINUSE,
#   but it succeeded
not ok 2 tcp4/bind_zero/exhausts_with_eaddrinuse
ok 3 sctp4/sockopt/round_trip # SKIP SCTP over IPv4 is not available in this kernel (socket: EPROTONOSUPPORT (Protocol not supported))
# tcp4/connect/autobind_in_range: harness error: timed out after 20 s
not ok 4 tcp4/connect/autobind_in_range
# kernel profile: upstream (matched 1 times)
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:1
";
        assert_eq!(ktap(&fake_report()), expected);
    }

    #[test]
    fn streaming_in_any_end_order_gives_the_whole_report_byte_for_byte() {
        let report = fake_report();
        let names: Vec<String> = report.results.iter().map(|r| r.name.clone()).collect();
        let started = RunReport {
            results: Vec::new(),
            ..report.clone()
        };
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let mut stream = KtapStream::start(Vec::new(), &started, &names);
            for index in order {
                stream.record(&report.results[index]);
            }
            let written = String::from_utf8(stream.finish(&report).unwrap()).unwrap();
            assert_eq!(written, ktap(&report), "end order {order:?}");
        }
    }

    #[test]
    fn a_stream_cut_short_holds_the_head_and_the_results_in_plan_order() {
        let report = fake_report();
        let names: Vec<String> = report.results.iter().map(|r| r.name.clone()).collect();
        let started = RunReport {
            results: Vec::new(),
            ..report.clone()
        };
        let mut stream = KtapStream::start(Vec::new(), &started, &names);
        // The second case ends first and waits for the first.
        stream.record(&report.results[1]);
        assert!(!String::from_utf8_lossy(&stream.out).contains("ok 2"));
        stream.record(&report.results[0]);
        let so_far = String::from_utf8(stream.out.clone()).unwrap();
        let whole = ktap(&report);
        let cut = whole.find("ok 3 ").unwrap();
        assert_eq!(so_far, whole[..cut]);
    }
}
