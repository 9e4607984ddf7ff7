//! The use case end to end: several hosts share one egress address
//! without NAT, each with its own slice of the port space
//! (IP_LOCAL_PORT_RANGE), and the router sends return traffic to the host
//! that owns the destination port (policy rules on FRA_DPORT_RANGE).
//!
//! `plan` decides the numbers, `topology` builds the namespaces,
//! `flows` makes the traffic, `checks` judges it and `report` prints
//! it. `portrange scenario egress --hosts N --slice SIZE` runs it.

mod checks;
mod flows;
mod plan;
mod report;
mod topology;

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use netns_util::{IpVersion, Netns};

use checks::{HostRun, Observations};
use flows::{Flow, Proto, Server, Sniffer, tcp_flows, udp_flows};
use plan::{Fit, Plan, Purpose, Request};
use topology::Topology;

/// The scenario's name after `portrange scenario`.
pub const NAME: &str = "egress";

/// One line about the scenario, for listings and errors.
pub const ABOUT: &str = "hosts sharing one egress address, port slices, replies routed by port";

/// Several hosts share one egress address (IPv4 and IPv6) without NAT:
/// each gets a disjoint slice of ports through IP_LOCAL_PORT_RANGE, and a
/// router sends return traffic to the owner of the destination port with
/// one policy rule (dport range) and one routing table per host.
///
/// Exit status: 0 every host behaved as the option's rules say, 1 one did not (or
/// the namespaces could not be built), 4 skipped (no privileges, or a
/// kernel without IP_LOCAL_PORT_RANGE).
#[derive(Debug, Parser)]
struct Args {
    /// Client hosts, each in its own namespace.
    #[arg(long, default_value_t = 4)]
    hosts: usize,
    /// Ports per host.
    #[arg(long, default_value_t = 16)]
    slice: u16,
    /// Address families.
    #[arg(long, value_enum, default_value_t = FamilyArg::Both)]
    family: FamilyArg,
    /// TCP and UDP flows per host and family.
    #[arg(long, default_value_t = 4)]
    flows: usize,
    /// Seconds to wait for handshakes and replies.
    #[arg(long, default_value_t = 5.0)]
    wait: f64,
    /// Host K asks for a range outside the netns range (the netns range
    /// wins, and its replies are not steered back to it: shown, expected).
    #[arg(long, value_name = "K")]
    outside: Option<usize>,
    /// Debug: delete host K's policy rules after setup; the scenario must
    /// then fail for host K. Skips the exhaustion phase.
    #[arg(long, value_name = "K")]
    remove_rule: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FamilyArg {
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
    Both,
}

impl FamilyArg {
    fn versions(self) -> Vec<IpVersion> {
        match self {
            FamilyArg::V4 => vec![IpVersion::V4],
            FamilyArg::V6 => vec![IpVersion::V6],
            FamilyArg::Both => vec![IpVersion::V4, IpVersion::V6],
        }
    }
}

const PASS: u8 = 0;
const FAIL: u8 = 1;
const SKIP: u8 = 4;

/// Parses the scenario's arguments (the first names the scenario, for
/// usage messages), runs it, prints what happened, and returns the exit
/// code (kselftest's: 0 pass, 1 fail, 4 skip; 2 for bad arguments).
pub fn run(argv: &[String]) -> anyhow::Result<ExitCode> {
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            e.print()?;
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            e.print()?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    if !(args.wait > 0.0 && args.wait <= 120.0) {
        anyhow::bail!("--wait {}: between 0 and 120 seconds", args.wait);
    }
    let plan = Plan::new(&Request {
        hosts: args.hosts,
        slice: args.slice,
        versions: args.family.versions(),
        flows: args.flows,
        wait: Duration::from_secs_f64(args.wait),
        outside: args.outside,
        remove_rule: args.remove_rule,
    })
    .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    match netns_util::ensure_privileges() {
        Ok(_) => {}
        Err(e) if e.is_no_privileges() => {
            println!(
                "egress: SKIP: needs root or user namespaces: {:#}",
                anyhow::Error::new(e)
            );
            return Ok(ExitCode::from(SKIP));
        }
        Err(e) => {
            println!(
                "egress: ERROR: could not get the privileges to make namespaces: {:#}",
                anyhow::Error::new(e)
            );
            return Ok(ExitCode::from(FAIL));
        }
    }
    let topology = match Topology::build(&plan) {
        Ok(topology) => topology,
        Err(e) => {
            println!(
                "egress: ERROR: could not build the namespaces: {:#}",
                anyhow::Error::new(e)
            );
            return Ok(ExitCode::from(FAIL));
        }
    };
    if let Some(reason) = probe_option(&topology.clients[0])? {
        println!("egress: SKIP: {reason}");
        return Ok(ExitCode::from(SKIP));
    }
    let (low, high) = plan.netns_range;
    println!(
        "egress: {} hosts share {}; netns range {low}-{high}; slices of {}; {} TCP and {} UDP flows per host and family",
        plan.hosts.len(),
        topology::describe_addresses(&plan),
        args.slice,
        plan.flows,
        plan.flows,
    );
    if let Some(k) = plan.remove_rule {
        let removed = topology
            .remove_rules(k, &plan.versions)
            .context("removing the policy rules")?;
        println!("egress: removed host {k}'s {removed} policy rule(s) from the router");
    }
    let observations = execute(&plan, &topology)?;
    let verdicts = checks::judge(&plan, &observations);
    print!("{}", report::render(&plan, &observations, &verdicts));
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let word = if passed == verdicts.len() {
        "PASS"
    } else {
        "FAIL"
    };
    println!(
        "egress: {word}: {passed}/{} hosts as expected ({:.1}s)",
        verdicts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::from(if word == "PASS" { PASS } else { FAIL }))
}

/// `None` when the kernel takes IP_LOCAL_PORT_RANGE, else why it does not.
fn probe_option(ns: &Netns) -> anyhow::Result<Option<String>> {
    let answer = ns.run(|| {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        harness::sockopt::set_port_range(&socket, 40000, 40001)
    })?;
    Ok(match answer {
        Ok(()) => None,
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Some(format!(
            "the kernel does not know IP_LOCAL_PORT_RANGE ({})",
            harness::describe(&e)
        )),
        Err(e) => anyhow::bail!("probing IP_LOCAL_PORT_RANGE: {}", harness::describe(&e)),
    })
}

/// Runs the traffic and collects what everybody saw.
fn execute(plan: &Plan, topology: &Topology) -> anyhow::Result<Observations> {
    let server = topology
        .server
        .run(|| Server::start(plan))?
        .context("starting the echo services")?;
    let sniffers = topology
        .clients
        .iter()
        .map(|ns| ns.run(|| Sniffer::open(&plan.versions)))
        .map(|r| r?.context("opening a sniffer (raw sockets)"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut hosts: Vec<HostRun> = thread::scope(|scope| {
        let handles: Vec<_> = topology
            .clients
            .iter()
            .enumerate()
            .map(|(k, ns)| scope.spawn(move || ns.run(|| ordinary_flows(plan, k))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let flows = h.join().expect("host thread")?;
                Ok(HostRun {
                    flows: closed(flows),
                    ..HostRun::default()
                })
            })
            .collect::<Result<_, netns_util::Error>>()
    })?;
    let exhaustion_ran = plan.remove_rule.is_none();
    if exhaustion_ran {
        exhaust(plan, topology, &mut hosts)?;
    }
    // Anything still in flight (a retransmission) has its chance to land.
    thread::sleep(Duration::from_millis(200));
    for (run, sniffer) in hosts.iter_mut().zip(&sniffers) {
        run.sniffed = sniffer.drain();
    }
    Ok(Observations {
        hosts,
        seen: server.seen(),
        exhaustion_ran,
    })
}

/// A host's ordinary flows: every family and protocol at once (each
/// batch on a thread of its own, which inherits the host's namespace), so
/// that a host whose replies never come waits once, not once per batch.
fn ordinary_flows(plan: &Plan, k: usize) -> Vec<Flow> {
    thread::scope(|scope| {
        let batches: Vec<_> = plan
            .versions
            .iter()
            .flat_map(|&version| [(version, Proto::Tcp), (version, Proto::Udp)])
            .map(|(version, proto)| {
                scope.spawn(move || match proto {
                    Proto::Tcp => tcp_flows(plan, k, version, Purpose::Flow, plan.flows, false),
                    Proto::Udp => udp_flows(plan, k, version, Purpose::Flow, plan.flows, false),
                })
            })
            .collect();
        batches
            .into_iter()
            .flat_map(|batch| batch.join().expect("flow thread"))
            .collect()
    })
}

/// Exhausts one host's slice per protocol and family, and while it is
/// exhausted lets it try another server port and every other host connect.
fn exhaust(plan: &Plan, topology: &Topology, hosts: &mut [HostRun]) -> anyhow::Result<()> {
    let x = plan.exhaust;
    let attempts = usize::from(plan.hosts[x].effective.len() as u16) + 4;
    for &version in &plan.versions {
        for proto in [Proto::Tcp, Proto::Udp] {
            let make = |k: usize, purpose: Purpose, count: usize, stop: bool| match proto {
                Proto::Tcp => tcp_flows(plan, k, version, purpose, count, stop),
                Proto::Udp => udp_flows(plan, k, version, purpose, count, stop),
            };
            // Held open (the flows keep their sockets) until the others had
            // their turn.
            let held = topology.clients[x].run(|| make(x, Purpose::Exhaust, attempts, true))?;
            let other = topology.clients[x].run(|| make(x, Purpose::Flow, 1, false))?;
            let others: Vec<(usize, Vec<Flow>)> = thread::scope(|scope| {
                let handles: Vec<_> = plan
                    .well_placed()
                    .filter(|h| h.index != x && h.fit != Fit::Outside)
                    .map(|h| {
                        let ns = &topology.clients[h.index];
                        let make = &make;
                        (
                            h.index,
                            scope.spawn(move || {
                                ns.run(|| make(h.index, Purpose::Exhaust, 1, false))
                            }),
                        )
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(k, h)| Ok((k, h.join().expect("host thread")?)))
                    .collect::<Result<_, netns_util::Error>>()
            })?;
            hosts[x].exhaustion.extend(closed(held));
            hosts[x].while_exhausted.extend(closed(other));
            for (k, flows) in others {
                hosts[k].while_exhausted.extend(closed(flows));
            }
        }
    }
    Ok(())
}

/// The flows with their sockets closed.
fn closed(flows: Vec<Flow>) -> Vec<Flow> {
    flows
        .into_iter()
        .map(|flow| Flow {
            socket: None,
            ..flow
        })
        .collect()
}
