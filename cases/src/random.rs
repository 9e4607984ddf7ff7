//! The reference model against the running kernel: random configurations,
//! each checked against [`crate::model::expected_on`].
//!
//! One case per variant drives its namespace through up to
//! [`CONFIGURATIONS`] configurations, stopping early when its share of the
//! run's budget is spent ([`harness::randomized::RUN_BUDGET`], shared
//! equally among the run's randomized cases; [`TIME_BUDGET`] for a case run
//! on its own), or through exactly as many as the run asks for
//! (`--random-configs`). Its note gives the coverage: how many
//! configurations ran, and how many per second. Each
//! configuration rewrites the netns range and reserved ports (from the
//! body's own thread, which is inside the namespace), opens sockets that
//! hold some ports (bound, listening,
//! connected, or for TCP and MPTCP connected with a port picked by
//! connect()), then makes one more socket pick a port: bind() to port 0,
//! listen() unbound, connect() unbound, or (UDP) sendto() unbound. The
//! port or error the kernel gives must lie in the model's set. Every socket
//! closes with `SO_LINGER` 0 so no TIME_WAIT outlives its configuration.
//!
//! The configurations come from a seeded PRNG: the run's seed (`--seed`,
//! `PORTRANGE_SEED`) when given, else one derived from the clock; the note
//! and any failure message name the seed (and the failing configuration's
//! index), so `--seed <seed>` replays the same sequence for that variant,
//! natively or in a VM.

use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::profile::Profile;
use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Proto, describe, sockopt};
use nix::errno::Errno;
use socket2::Socket;

use crate::model::{Config, Holder, Op, Taken, expected_on};
use crate::ports::{local_port, pick};

/// The most configurations one variant runs unless the run asks for a
/// number: enough for every profile of configuration to come up in most
/// runs (a new seed each time), few enough to keep the suite's native run
/// a fraction of a second.
pub const CONFIGURATIONS: usize = 100;

/// Wall time after which a variant run outside a runner's run (which
/// shares its own budget) stops starting new configurations, unless a
/// number was asked for (under TCG a configuration can take milliseconds).
pub const TIME_BUDGET: Duration = Duration::from_secs(1);

/// The servers connect() goes to: below every netns range generated here.
const SERVERS: [u16; 3] = [30001, 30002, 30003];

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    vec![
        CaseDef::new(
            "model/random_configurations_agree_with_kernel",
            random_configurations,
        )
        .families(Family::BOTH)
        .randomized(),
    ]
}

/// splitmix64: small, seedable, and the same on every platform and
/// crate version, so a printed seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u16, hi: u16) -> u16 {
        let span = u64::from(hi - lo) + 1;
        lo + u16::try_from(self.next() % span).expect("below the span")
    }

    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let index = usize::try_from(self.next() % items.len() as u64).expect("an index");
        items[index]
    }
}

/// A seed from the clock, for runs that did not name one.
fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Draws a configuration for `proto`.
fn generate(rng: &mut Rng, proto: Proto) -> Config {
    let l = rng.between(40000, 40016);
    let h = l + rng.between(0, 19);
    let near = |rng: &mut Rng| {
        if rng.chance(1, 8) {
            0
        } else {
            rng.between(l - 6, h + 6)
        }
    };
    let socket_range = if rng.chance(1, 5) {
        (0, 0)
    } else {
        let (a, b) = (near(rng), near(rng));
        if a != 0 && b != 0 && a > b {
            (b, a)
        } else {
            (a, b)
        }
    };
    let reserve = rng.pick(&[0, 0, 1, 3]);
    let reserved = (l - 2..=h + 2).filter(|_| rng.chance(reserve, 8)).collect();
    let fill = rng.pick(&[0, 3, 7, 10]);
    let mut taken = Vec::new();
    for port in l - 1..=h + 1 {
        if !rng.chance(fill, 10) {
            continue;
        }
        let remote = rng.pick(&SERVERS);
        let stream = proto != Proto::Udp;
        let tcp = matches!(proto, Proto::Tcp | Proto::Mptcp);
        let holder = match rng.next() % 4 {
            0 => Holder::Bound,
            1 if stream => Holder::Listener,
            3 if tcp && (l..=h).contains(&port) => Holder::AutoboundConnected { remote },
            _ => Holder::BoundThenConnected { remote },
        };
        taken.push(Taken {
            port,
            holder,
            reuse_addr: rng.chance(1, 2),
        });
        if let Holder::AutoboundConnected { remote: first } = holder {
            if rng.chance(1, 3) {
                let other = SERVERS.iter().copied().find(|&s| s != first);
                taken.push(Taken {
                    port,
                    holder: Holder::AutoboundConnected {
                        remote: other.expect("three servers"),
                    },
                    reuse_addr: rng.chance(1, 2),
                });
            }
        }
    }
    let remote = rng.pick(&SERVERS);
    let op = match proto {
        Proto::Udp => rng.pick(&[Op::BindZero, Op::Connect { remote }, Op::SendTo { remote }]),
        _ => rng.pick(&[Op::BindZero, Op::Listen, Op::Connect { remote }]),
    };
    Config {
        proto,
        netns_range: (l, h),
        socket_range,
        reserved,
        taken,
        reuse_addr: rng.chance(1, 2),
        op,
    }
}

fn random_configurations(ctx: &Ctx) -> Result<(), CaseError> {
    let asked = ctx.randomized();
    let seed = asked.seed.unwrap_or_else(clock_seed);
    let (count, budget) = match asked.configurations {
        Some(count) => (count, None),
        None => (CONFIGURATIONS, Some(asked.share.unwrap_or(TIME_BUDGET))),
    };
    let mut rng = Rng(seed);
    let servers = if ctx.variant.proto == Proto::Udp {
        Vec::new()
    } else {
        SERVERS
            .iter()
            .map(|&port| listener(ctx, port))
            .collect::<Result<Vec<_>, _>>()?
    };
    let start = Instant::now();
    let mut reserved_now = String::new();
    let mut ran = 0;
    for index in 0..count {
        if budget.is_some_and(|budget| start.elapsed() > budget) {
            break;
        }
        ran += 1;
        let config = generate(&mut rng, ctx.variant.proto);
        run_one(ctx, &config, &mut reserved_now).map_err(|e| {
            e.in_context(format_args!(
                "configuration #{index} of seed {seed} (--seed {seed} replays it): {config}"
            ))
        })?;
        for server in &servers {
            drain(server)?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    ctx.note(format!(
        "{ran} configurations agreed with the model in {seconds:.2} s, {:.0} per second (--seed {seed})",
        ran as f64 / seconds.max(1e-6)
    ));
    Ok(())
}

/// Sets up one configuration, runs its operation and checks the outcome;
/// every socket is closed (with RST) on return.
fn run_one(ctx: &Ctx, config: &Config, reserved_now: &mut String) -> Result<(), CaseError> {
    let (l, h) = config.netns_range;
    ctx.set_netns_port_range(l, h)?;
    // Holders whose port connect() picks need it unreserved.
    if !reserved_now.is_empty() {
        ctx.set_netns_reserved_ports("")?;
        reserved_now.clear();
    }
    let mut held = Vec::new();
    let mut so_far = Vec::new();
    for taken in &config.taken {
        held.push(hold(ctx, config, &so_far, taken)?);
        so_far.push(*taken);
    }
    let reserved: Vec<String> = config.reserved.iter().map(u16::to_string).collect();
    if !reserved.is_empty() {
        *reserved_now = reserved.join(",");
        ctx.set_netns_reserved_ports(reserved_now)?;
    }
    let socket = new_socket(ctx, config.reuse_addr)?;
    if config.socket_range != (0, 0) {
        let (lo, hi) = config.socket_range;
        sockopt::set_port_range(&socket, lo, hi)
            .or_fail(&format!("setsockopt(IP_LOCAL_PORT_RANGE, {lo}-{hi})"))?;
    }
    let got = pick(ctx, &socket, config.op);
    held.push(socket);
    check(config, &accepted(ctx.pinned_profile()), got)
}

/// The profiles whose outcomes a configuration accepts: the pinned one
/// alone when the run pinned one (`--expect-profile`), else every known
/// profile (which one an unpinned kernel follows is the profile cases'
/// business; this case then checks the model, not the generation).
fn accepted(pinned: Option<Profile>) -> Vec<Profile> {
    match pinned {
        Some(profile) => vec![profile],
        None => Profile::ALL.to_vec(),
    }
}

/// Checks the kernel's outcome lies in the model's set for one of the
/// `profiles`.
fn check(config: &Config, profiles: &[Profile], got: io::Result<u16>) -> Result<(), CaseError> {
    let outcome = got
        .as_ref()
        .map(|&port| port)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
    let mut wants = Vec::new();
    for &profile in profiles {
        let want = expected_on(config, profile)
            .ok_or_else(|| CaseError::Harness(format!("the model does not cover {}", config.op)))?;
        if want.allows(outcome) {
            return Ok(());
        }
        if !wants.iter().any(|(_, w)| *w == want) {
            wants.push((profile, want));
        }
    }
    let got = match got {
        Ok(port) => format!("port {port}"),
        Err(e) => describe(&e),
    };
    let wants: Vec<String> = wants
        .iter()
        .map(|(profile, want)| format!("{want} ({profile})"))
        .collect();
    Err(CaseError::Fail(format!(
        "the model expects {}, the kernel gave {got}",
        wants.join(" or ")
    )))
}

/// Opens a socket that holds `taken.port`, checking a port picked by
/// connect() against the model as well.
fn hold(ctx: &Ctx, config: &Config, so_far: &[Taken], taken: &Taken) -> Result<Socket, CaseError> {
    let port = taken.port;
    let socket = new_socket(ctx, taken.reuse_addr)?;
    let what = format!("holder {port} {}", taken.holder);
    match taken.holder {
        Holder::Bound | Holder::Listener | Holder::BoundThenConnected { .. } => {
            socket
                .bind(&ctx.loopback(port).into())
                .or_fail(&format!("bind() of {what}"))?;
        }
        Holder::AutoboundConnected { .. } => {
            sockopt::set_port_range(&socket, port, port)
                .or_fail(&format!("setsockopt(IP_LOCAL_PORT_RANGE) of {what}"))?;
        }
    }
    match taken.holder {
        Holder::Bound => {}
        Holder::Listener => socket.listen(16).or_fail(&format!("listen() of {what}"))?,
        Holder::BoundThenConnected { remote } => {
            connect(ctx, &socket, remote).or_fail(&format!("connect() of {what}"))?;
        }
        Holder::AutoboundConnected { remote } => {
            let model = Config {
                socket_range: (port, port),
                reserved: BTreeSet::new(),
                taken: so_far.to_vec(),
                reuse_addr: taken.reuse_addr,
                op: Op::Connect { remote },
                ..config.clone()
            };
            let got = connect(ctx, &socket, remote).and_then(|()| local_port(&socket));
            check(&model, &accepted(ctx.pinned_profile()), got)
                .map_err(|e| e.in_context(format_args!("setting up {what}")))?;
        }
    }
    Ok(socket)
}

/// A socket of the variant that resets instead of lingering on close.
fn new_socket(ctx: &Ctx, reuse_addr: bool) -> Result<Socket, CaseError> {
    let socket = ctx.socket()?;
    socket
        .set_linger(Some(Duration::ZERO))
        .or_fail("SO_LINGER 0")?;
    if reuse_addr {
        socket.set_reuse_address(true).or_fail("SO_REUSEADDR")?;
    }
    Ok(socket)
}

/// A listening server on loopback `port`, non-blocking so it can be drained.
fn listener(ctx: &Ctx, port: u16) -> Result<Socket, CaseError> {
    let socket = new_socket(ctx, true)?;
    socket
        .bind(&ctx.loopback(port).into())
        .or_fail(&format!("bind() of the server on {port}"))?;
    socket
        .listen(256)
        .or_fail(&format!("listen() of the server on {port}"))?;
    socket
        .set_nonblocking(true)
        .or_fail("O_NONBLOCK on a server")?;
    Ok(socket)
}

/// Accepts and resets every connection queued on `server`.
fn drain(server: &Socket) -> Result<(), CaseError> {
    loop {
        match server.accept() {
            Ok((child, _)) => {
                child
                    .set_linger(Some(Duration::ZERO))
                    .or_fail("SO_LINGER 0 on an accepted socket")?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                return Err(CaseError::Harness(format!(
                    "accept() on a server: {}",
                    describe(&e)
                )));
            }
        }
    }
}

fn connect(ctx: &Ctx, socket: &Socket, remote: u16) -> io::Result<()> {
    socket.connect(&ctx.loopback(remote).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP connect() with the socket range 40000-40005 set: the upstream
    /// profile may pick any of the six ports, stable-6.1 (even offsets
    /// first) only 40000, 40002 or 40004.
    fn parity_config() -> Config {
        let op = Op::Connect { remote: SERVERS[0] };
        Config::new(Proto::Tcp, (40000, 40005), (40000, 40005), op)
    }

    #[test]
    fn a_pinned_profile_accepts_only_its_own_outcomes() {
        let config = parity_config();
        let odd = || Ok(40001);
        assert_eq!(check(&config, &accepted(None), odd()), Ok(()));
        assert_eq!(
            check(&config, &accepted(Some(Profile::Upstream)), odd()),
            Ok(())
        );
        let pinned = check(&config, &accepted(Some(Profile::Stable61)), odd());
        let Err(CaseError::Fail(message)) = pinned else {
            panic!("stable-6.1 pinned accepted an upstream-only port: {pinned:?}");
        };
        assert_eq!(
            message,
            "the model expects one of 40000, 40002, 40004 (stable-6.1), the kernel gave port 40001"
        );
        for profile in Profile::ALL {
            assert_eq!(check(&config, &accepted(Some(profile)), Ok(40002)), Ok(()));
        }
    }
}
