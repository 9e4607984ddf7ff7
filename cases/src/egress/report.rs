//! What a person reads: per host, its slice, its flows by protocol and
//! family (made, ports, replies), the exhaustion, what arrived, errors,
//! and a verdict line `host K: PASS` / `host K: FAIL`.

use std::fmt::Write;

use super::checks::{HostRun, HostVerdict, Observations};
use super::flows::{Flow, Proto, label};
use super::plan::{Fit, HostPlan, Plan, RULE_PRIORITY_BASE, TABLE_BASE, port_owner};
use crate::port_set::show;

/// The whole report.
pub fn render(plan: &Plan, obs: &Observations, verdicts: &[HostVerdict]) -> String {
    let mut out = String::new();
    for (host, verdict) in plan.hosts.iter().zip(verdicts) {
        host_block(
            &mut out,
            plan,
            host,
            &obs.hosts[host.index],
            obs.exhaustion_ran,
            verdict,
        );
    }
    out
}

fn fit_text(host: &HostPlan) -> &'static str {
    match host.fit {
        Fit::Inside => "narrower than the netns range: used as asked",
        Fit::OverlapBelow => "starts below the netns range: low bound raised",
        Fit::OverlapAbove => "ends above the netns range: high bound lowered",
        Fit::Outside => "outside the netns range: the netns range wins",
    }
}

fn host_block(
    out: &mut String,
    plan: &Plan,
    host: &HostPlan,
    run: &HostRun,
    exhaustion_ran: bool,
    verdict: &HostVerdict,
) {
    let k = host.index;
    let _ = writeln!(
        out,
        "host {k}  slice {}-{}  asked {}-{} ({})  router: dport {}-{} lookup {} pref {}",
        host.effective.start(),
        host.effective.end(),
        host.asked.0,
        host.asked.1,
        fit_text(host),
        host.rule.start(),
        host.rule.end(),
        TABLE_BASE + k as u32,
        RULE_PRIORITY_BASE + k as u32,
    );
    for &version in &plan.versions {
        for proto in [Proto::Tcp, Proto::Udp] {
            let flows: Vec<&Flow> = run
                .flows
                .iter()
                .filter(|f| f.proto == proto && f.version == version)
                .collect();
            let made = flows.iter().filter(|f| f.port.is_some()).count();
            let replied = flows.iter().filter(|f| f.replied).count();
            let ports: Vec<u16> = flows.iter().filter_map(|f| f.port).collect();
            let _ = writeln!(
                out,
                "  {}  flows {made}/{}  ports {}  replies {replied}/{}",
                label(proto, version),
                flows.len(),
                show(ports),
                flows.len()
            );
        }
    }
    if exhaustion_ran && k == plan.exhaust {
        exhaustion_lines(out, plan, run);
    } else if exhaustion_ran && host.fit != Fit::Outside {
        let items: Vec<String> = run.while_exhausted.iter().map(flow_brief).collect();
        let _ = writeln!(
            out,
            "  while host {} is exhausted: {}",
            plan.exhaust,
            items.join(", ")
        );
    }
    let hosts = plan.hosts.len();
    let own = run
        .sniffed
        .iter()
        .filter(|p| port_owner(p.sport, hosts).is_some_and(|(o, _)| o == k))
        .count();
    let foreign = run
        .sniffed
        .iter()
        .filter(|p| port_owner(p.sport, hosts).is_some_and(|(o, _)| o != k))
        .count();
    let _ = writeln!(
        out,
        "  arrived: {own} packets for its own flows, {foreign} meant for other hosts"
    );
    // The exhausted host's errors while exhausted are its exhaustion
    // lines' business.
    let while_exhausted = if k == plan.exhaust {
        &[][..]
    } else {
        &run.while_exhausted[..]
    };
    let errors: Vec<String> = run
        .flows
        .iter()
        .chain(while_exhausted)
        .filter_map(|f| {
            let error = f.error.as_ref()?;
            Some(match f.port {
                Some(port) => format!("{} port {port}: {}", label(f.proto, f.version), error.text),
                None => format!("{}: {}", label(f.proto, f.version), error.text),
            })
        })
        .collect();
    if errors.is_empty() {
        let _ = writeln!(out, "  errors: none");
    } else {
        let _ = writeln!(out, "  errors: {}", errors.len());
        for error in errors.iter().take(8) {
            let _ = writeln!(out, "    {error}");
        }
        if errors.len() > 8 {
            let _ = writeln!(out, "    ... and {} more", errors.len() - 8);
        }
    }
    for note in &verdict.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for problem in verdict.problems.iter().take(8) {
        let _ = writeln!(out, "  problem: {problem}");
    }
    if verdict.problems.len() > 8 {
        let _ = writeln!(
            out,
            "  ... and {} more problems",
            verdict.problems.len() - 8
        );
    }
    let word = if verdict.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "host {k}: {word}");
}

fn exhaustion_lines(out: &mut String, plan: &Plan, run: &HostRun) {
    for &version in &plan.versions {
        for proto in [Proto::Tcp, Proto::Udp] {
            let attempts: Vec<&Flow> = run
                .exhaustion
                .iter()
                .filter(|f| f.proto == proto && f.version == version)
                .collect();
            let ports: Vec<u16> = attempts.iter().filter_map(|f| f.port).collect();
            let answered = attempts.iter().filter(|f| f.replied).count();
            let end = attempts
                .last()
                .filter(|f| f.port.is_none())
                .and_then(|f| f.error.as_ref())
                .map_or("no error".to_owned(), |e| e.short());
            let other = run
                .while_exhausted
                .iter()
                .filter(|f| f.proto == proto && f.version == version)
                .map(flow_brief)
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "  exhaust {}  {} flows to one server port (ports {}, {answered} answered), then {end}; \
                 to another server port: {other}",
                label(proto, version),
                ports.len(),
                show(ports),
            );
        }
    }
}

fn flow_brief(flow: &Flow) -> String {
    let what = label(flow.proto, flow.version);
    match (&flow.error, flow.port) {
        (None, Some(port)) if flow.replied => format!("{what} port {port} ok"),
        (None, Some(port)) => format!("{what} port {port} unanswered"),
        (Some(error), Some(port)) => format!("{what} port {port} {}", error.short()),
        (Some(error), None) => format!("{what} {}", error.short()),
        (None, None) => format!("{what} no port"),
    }
}
