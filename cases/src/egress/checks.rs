//! What must hold, host by host, given what the clients, the server and
//! the sniffers saw.

use netns_util::IpVersion;
use nix::errno::Errno;

use super::flows::{Flow, Proto, Seen, Sniffed, label};
use super::plan::{Fit, HostPlan, Plan, Purpose, port_owner, server_port, shared};
use crate::model::{Op, exhaustion_error};

/// What one host did and what arrived there.
#[derive(Debug, Default)]
pub struct HostRun {
    /// Its ordinary flows, every protocol and family.
    pub flows: Vec<Flow>,
    /// The exhaustion attempts, in order (the exhausted host only).
    pub exhaustion: Vec<Flow>,
    /// Flows made while the exhausted host was exhausted: one per protocol
    /// and family from every other host; from the exhausted host, one to
    /// another server port.
    pub while_exhausted: Vec<Flow>,
    /// Every TCP segment and UDP datagram that arrived at it.
    pub sniffed: Vec<Sniffed>,
}

/// Everything one run observed.
#[derive(Debug, Default)]
pub struct Observations {
    /// One per host.
    pub hosts: Vec<HostRun>,
    /// What the server saw.
    pub seen: Vec<Seen>,
    /// Whether the exhaustion phase ran.
    pub exhaustion_ran: bool,
}

/// One host's outcome: what was wrong, and what is worth saying.
#[derive(Debug, Default, Clone)]
pub struct HostVerdict {
    /// Violated expectations; empty means pass.
    pub problems: Vec<String>,
    /// Expected consequences worth reporting.
    pub notes: Vec<String>,
}

impl HostVerdict {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges every host.
pub fn judge(plan: &Plan, obs: &Observations) -> Vec<HostVerdict> {
    plan.hosts
        .iter()
        .map(|host| {
            let mut verdict = HostVerdict::default();
            let run = &obs.hosts[host.index];
            if host.fit == Fit::Outside {
                judge_outside(plan, host, obs, &mut verdict);
            } else {
                judge_flows(host, &run.flows, "", &mut verdict);
                judge_server_view(host, obs, &mut verdict);
                judge_arrivals(plan, host, run, &mut verdict);
                if obs.exhaustion_ran {
                    if host.index == plan.exhaust {
                        judge_exhaustion(plan, host, run, &mut verdict);
                    } else {
                        judge_flows(
                            host,
                            &run.while_exhausted,
                            "while exhausted: ",
                            &mut verdict,
                        );
                    }
                }
            }
            if plan.remove_rule == Some(host.index) {
                verdict
                    .notes
                    .push("its policy rules were removed (--remove-rule)".to_owned());
            }
            verdict
        })
        .collect()
}

/// Every flow succeeded, from a port of the host's slice, and was answered.
fn judge_flows(host: &HostPlan, flows: &[Flow], context: &str, verdict: &mut HostVerdict) {
    for flow in flows {
        let what = format!("{context}{}", label(flow.proto, flow.version));
        match (&flow.error, flow.port) {
            (Some(error), Some(port)) => verdict
                .problems
                .push(format!("{what} from port {port}: {}", error.text)),
            (Some(error), None) => verdict.problems.push(format!("{what}: {}", error.text)),
            (None, None) => verdict.problems.push(format!("{what}: no local port")),
            (None, Some(port)) => {
                if !host.effective.contains(&port) {
                    verdict
                        .problems
                        .push(format!("{what} left from port {port}, outside its slice"));
                }
                if !flow.replied {
                    verdict
                        .problems
                        .push(format!("{what} from port {port}: no reply"));
                }
            }
        }
    }
}

/// The server saw the host's flows come from the shared address and from
/// ports of the host's slice, and saw every answered flow.
fn judge_server_view(host: &HostPlan, obs: &Observations, verdict: &mut HostVerdict) {
    let hosts = obs.hosts.len();
    let mine: Vec<&Seen> = obs
        .seen
        .iter()
        .filter(|s| port_owner(s.port, hosts).is_some_and(|(k, _)| k == host.index))
        .collect();
    for seen in &mine {
        let version = IpVersion::of(seen.peer.ip());
        if seen.peer.ip() != shared(version) {
            verdict.problems.push(format!(
                "server saw {} from {}, not from the shared address",
                seen.proto.name(),
                seen.peer
            ));
        }
        if !host.effective.contains(&seen.peer.port()) {
            verdict.problems.push(format!(
                "server saw {} from port {}, outside its slice",
                seen.proto.name(),
                seen.peer.port()
            ));
        }
    }
    let run = &obs.hosts[host.index];
    let answered = run
        .flows
        .iter()
        .chain(&run.exhaustion)
        .chain(&run.while_exhausted)
        .filter(|f| f.replied);
    for flow in answered {
        let port = flow.port.unwrap_or_default();
        let seen = mine.iter().any(|s| {
            s.proto == flow.proto
                && s.peer.port() == port
                && IpVersion::of(s.peer.ip()) == flow.version
        });
        if !seen {
            verdict.problems.push(format!(
                "{} from port {port}: answered, yet the server never saw it",
                label(flow.proto, flow.version)
            ));
        }
    }
}

/// Only replies to this host's own flows arrived here; replies meant for
/// an outside host are its expected (and reported) consequence.
fn judge_arrivals(plan: &Plan, host: &HostPlan, run: &HostRun, verdict: &mut HostVerdict) {
    let hosts = plan.hosts.len();
    let mut foreign = vec![0usize; hosts];
    for packet in &run.sniffed {
        let Some((owner, _)) = port_owner(packet.sport, hosts) else {
            continue;
        };
        if owner != host.index {
            foreign[owner] += 1;
        } else if !host.effective.contains(&packet.dport) {
            verdict.problems.push(format!(
                "{} reply arrived for port {}, outside its slice",
                label(packet.proto, packet.version),
                packet.dport
            ));
        }
    }
    for (owner, count) in foreign.into_iter().enumerate().filter(|(_, c)| *c > 0) {
        let text = format!("received {count} packets meant for host {owner}");
        if plan.hosts[owner].fit == Fit::Outside {
            verdict
                .notes
                .push(format!("{text} (whose ports fell in this slice: expected)"));
        } else {
            verdict.problems.push(text);
        }
    }
}

/// The errno the model gives a connect() that finds the slice used up.
fn connect_exhaustion_error(proto: Proto) -> Errno {
    let op = Op::Connect {
        remote: server_port(0, Purpose::Exhaust),
    };
    exhaustion_error(proto.into(), op).expect("the model covers connect() on TCP and UDP")
}

/// Exactly the slice's size of flows per protocol and family, every one
/// answered, then the protocol's error; while exhausted TCP still reaches
/// another destination (4-tuples differ) and UDP does not.
fn judge_exhaustion(plan: &Plan, host: &HostPlan, run: &HostRun, verdict: &mut HostVerdict) {
    let size = host.effective.len();
    for &version in &plan.versions {
        for proto in [Proto::Tcp, Proto::Udp] {
            let errno = connect_exhaustion_error(proto);
            let what = format!("exhaustion {}", label(proto, version));
            let attempts: Vec<&Flow> = run
                .exhaustion
                .iter()
                .filter(|f| f.proto == proto && f.version == version)
                .collect();
            let made: Vec<&Flow> = attempts
                .iter()
                .copied()
                .filter(|f| f.port.is_some())
                .collect();
            if made.len() != size {
                verdict.problems.push(format!(
                    "{what}: {} flows before the error, expected the slice's {size}",
                    made.len()
                ));
            }
            let mut ports: Vec<u16> = made.iter().filter_map(|f| f.port).collect();
            ports.sort_unstable();
            ports.dedup();
            if ports.len() != made.len() || ports.iter().any(|p| !host.effective.contains(p)) {
                verdict.problems.push(format!(
                    "{what}: ports {ports:?} are not distinct ports of its slice"
                ));
            }
            for flow in made.iter().filter(|f| f.error.is_some() || !f.replied) {
                let error = flow.error.as_ref().map_or("no reply", |e| e.text.as_str());
                verdict.problems.push(format!(
                    "{what}: flow from port {}: {error}",
                    flow.port.unwrap_or_default()
                ));
            }
            match attempts
                .last()
                .and_then(|f| f.error.as_ref().filter(|_| f.port.is_none()))
            {
                Some(error) if error.errno == Some(errno as i32) => {}
                Some(error) => verdict
                    .problems
                    .push(format!("{what}: expected {errno:?}, got {}", error.text)),
                None => verdict
                    .problems
                    .push(format!("{what}: never failed, expected {errno:?}")),
            }
            for flow in run
                .while_exhausted
                .iter()
                .filter(|f| f.proto == proto && f.version == version)
            {
                let got = flow.error.as_ref().and_then(|e| e.errno);
                let ok = match proto {
                    Proto::Tcp => flow.error.is_none() && flow.replied,
                    Proto::Udp => got == Some(errno as i32),
                };
                if !ok {
                    let outcome = flow
                        .error
                        .as_ref()
                        .map_or("it succeeded", |e| e.text.as_str());
                    let want = match proto {
                        Proto::Tcp => "success (other 4-tuples are free)".to_owned(),
                        Proto::Udp => format!("{errno:?} (UDP does not share ports)"),
                    };
                    verdict.problems.push(format!(
                        "{what}: to another destination expected {want}, got {outcome}"
                    ));
                }
            }
        }
    }
}

/// A host asking for ports outside the netns range: the kernel uses the
/// netns range, so its flows leave from other hosts' ports and nothing
/// comes back to it.
fn judge_outside(plan: &Plan, host: &HostPlan, obs: &Observations, verdict: &mut HostVerdict) {
    let run = &obs.hosts[host.index];
    let (asked_lo, asked_hi) = host.asked;
    for flow in &run.flows {
        let what = label(flow.proto, flow.version);
        let Some(port) = flow.port else {
            let error = flow.error.as_ref().map_or("no port", |e| e.text.as_str());
            verdict.problems.push(format!("{what}: {error}"));
            continue;
        };
        if (asked_lo..=asked_hi).contains(&port) {
            verdict.problems.push(format!(
                "{what} left from port {port}, in the asked range outside the netns range"
            ));
        } else if !host.effective.contains(&port) {
            verdict.problems.push(format!(
                "{what} left from port {port}, outside the netns range"
            ));
        }
        if flow.replied {
            verdict.problems.push(format!(
                "{what} from port {port}: answered, though no rule steers that port here"
            ));
        }
    }
    let receivers: Vec<String> = obs
        .hosts
        .iter()
        .enumerate()
        .filter(|(k, other)| {
            *k != host.index
                && other.sniffed.iter().any(|p| {
                    port_owner(p.sport, plan.hosts.len()).is_some_and(|(o, _)| o == host.index)
                })
        })
        .map(|(k, _)| k.to_string())
        .collect();
    let (lo, hi) = plan.netns_range;
    verdict.notes.push(format!(
        "asked {asked_lo}-{asked_hi}, outside the netns range: the kernel used {lo}-{hi} \
         (a socket range wholly outside the netns range is ignored)"
    ));
    verdict.notes.push(if receivers.is_empty() {
        "its replies were steered to ports no host owns and dropped; none came back".to_owned()
    } else {
        format!(
            "its replies were steered to host(s) {} by port; none came back to it",
            receivers.join(", ")
        )
    });
}
