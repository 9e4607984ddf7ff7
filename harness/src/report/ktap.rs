//! KTAP version 1 (Documentation/dev-tools/ktap.rst), with kselftest's
//! totals line so its tooling reads the counts.

use std::fmt::Write;

use super::{RunReport, one_line};
use crate::outcome::Outcome;

/// The report as a KTAP document: version, header diagnostics, plan, one
/// result line per case (failure details as diagnostics before it), totals.
pub fn ktap(report: &RunReport) -> String {
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
    let _ = writeln!(out, "1..{}", report.results.len());
    for (number, result) in (1..).zip(&report.results) {
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
    }
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
# probe: sctp4: SCTP over IPv4 is not available in this kernel (socket/bind: EPROTONOSUPPORT (Protocol not supported))
# vm: 3.2 s from QEMU start to exit
1..4
# tcp4/sockopt/round_trip: matched kernel profile upstream
# tcp4/sockopt/round_trip: 500 configurations
ok 1 tcp4/sockopt/round_trip
# tcp4/bind_zero/exhausts_with_eaddrinuse: 9th bind(): expected EADDRINUSE,
#   but it succeeded
not ok 2 tcp4/bind_zero/exhausts_with_eaddrinuse
ok 3 sctp4/sockopt/round_trip # SKIP SCTP over IPv4 is not available in this kernel (socket/bind: EPROTONOSUPPORT (Protocol not supported))
# tcp4/connect/autobind_in_range: harness error: timed out after 20 s
not ok 4 tcp4/connect/autobind_in_range
# kernel profile: upstream (matched 1 times)
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:1
";
        assert_eq!(ktap(&fake_report()), expected);
    }
}
