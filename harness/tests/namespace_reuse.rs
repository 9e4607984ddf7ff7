//! `--isolation reuse` hides nothing: cases that leave each kind of residue
//! (a listening socket, a TIME_WAIT, a bound UDP socket, a changed sysctl,
//! an extra link) run on one worker, each followed by a case that checks it
//! got a namespace with none of them, never the one the residue was left
//! in. `--isolation ahead` never reuses: every case of a run gets a
//! namespace of its own. Real namespaces, sockets and links; needs root
//! (or user namespaces), and `ip` from iproute2 for the extra link.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use harness::runner::{Namespaces, RunOptions, run_all};
use harness::{CaseDef, CaseError, Ctx, Family, Outcome, Probes, Proto, expand};

const LISTEN_PORT: u16 = 40100;
const UDP_PORT: u16 = 40101;
const EXTRA_LINK: &str = "residue0";
const SYSCTL: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";

/// Which namespace each case ran in, in order: its name and the
/// namespace's cookie (`SO_NETNS_COOKIE`, never reused, unlike the inode
/// number of a namespace that was freed). One log per test.
type Log = Mutex<Vec<(&'static str, u64)>>;
static RESIDUE_LOG: Log = Mutex::new(Vec::new());
static SHARE_LOG: Log = Mutex::new(Vec::new());
static AHEAD_LOG: Log = Mutex::new(Vec::new());

/// The calling thread's namespace's cookie.
fn netns_cookie() -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the buffer and its length describe `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(cookie)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[derive(Clone, Copy)]
enum Role {
    /// Leaves a listening TCP socket open (its descriptor leaked).
    Listening,
    /// Closes a TCP connection from the connecting side first, leaving a
    /// socket in TIME_WAIT.
    TimeWait,
    /// Leaves a bound UDP socket open (its descriptor leaked).
    BoundUdp,
    /// Changes a sysctl that steers port choice and that the pool does not
    /// write back.
    Sysctl,
    /// Adds a veth pair.
    ExtraLink,
    /// Checks that none of the above is in its namespace.
    Fresh,
}

fn fail(what: &str) -> impl Fn(std::io::Error) -> CaseError + '_ {
    move |e| CaseError::Fail(format!("{what}: {e}"))
}

fn body(_ctx: &Ctx, param: &(&'static str, Role, &'static Log)) -> Result<(), CaseError> {
    let (name, role, log) = *param;
    let cookie = netns_cookie().map_err(fail("getsockopt(SO_NETNS_COOKIE)"))?;
    log.lock().unwrap().push((name, cookie));
    let local = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    match role {
        Role::Listening => {
            std::mem::forget(TcpListener::bind(local(LISTEN_PORT)).map_err(fail("listen"))?)
        }
        Role::TimeWait => {
            let listener = TcpListener::bind(local(0)).map_err(fail("listen"))?;
            let client =
                TcpStream::connect(listener.local_addr().unwrap()).map_err(fail("connect"))?;
            let (server, _) = listener.accept().map_err(fail("accept"))?;
            drop(client);
            std::thread::sleep(Duration::from_millis(20));
            drop(server);
        }
        Role::BoundUdp => std::mem::forget(UdpSocket::bind(local(UDP_PORT)).map_err(fail("bind"))?),
        Role::Sysctl => std::fs::write(SYSCTL, "2000\n").map_err(fail("write the sysctl"))?,
        Role::ExtraLink => {
            let status = Command::new("ip")
                .args([
                    "link", "add", EXTRA_LINK, "type", "veth", "peer", "name", "residue1",
                ])
                .status()
                .map_err(fail("ip link add (apt-get install iproute2)"))?;
            if !status.success() {
                return Err(CaseError::Fail(format!("ip link add: {status}")));
            }
        }
        Role::Fresh => {
            TcpListener::bind(local(LISTEN_PORT))
                .map_err(fail("a listener was left on the port"))?;
            UdpSocket::bind(local(UDP_PORT)).map_err(fail("a UDP socket was left on the port"))?;
            let sysctl = std::fs::read_to_string(SYSCTL).map_err(fail("read the sysctl"))?;
            if sysctl.trim() != "1024" {
                return Err(CaseError::Fail(format!("{SYSCTL} is {sysctl:?}")));
            }
            match std::fs::metadata(format!("/sys/class/net/{EXTRA_LINK}")) {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                _ => return Err(CaseError::Fail(format!("link {EXTRA_LINK} is here"))),
            }
            let sockstat = std::fs::read_to_string("/proc/thread-self/net/sockstat")
                .map_err(fail("read sockstat"))?;
            if !sockstat.contains(" tw 0 ") {
                return Err(CaseError::Fail(format!("TIME_WAIT left: {sockstat}")));
            }
        }
    }
    Ok(())
}

fn case(name: &'static str, role: Role, log: &'static Log) -> CaseDef {
    CaseDef::with(name, (name, role, log), body)
        .protos(&[Proto::Tcp])
        .families(&[Family::V4])
}

#[test]
fn the_case_after_each_residue_gets_a_fresh_namespace() {
    let probes = match Probes::setup() {
        Ok(probes) => probes,
        Err(e) => match e.outcome() {
            Outcome::Skip(reason) => {
                require::skip_or_fail(require::Requirement::Root, &reason);
                return;
            }
            other => panic!("probing: {other:?}"),
        },
    };
    let mut defs = Vec::new();
    // Clean cases first, so that the pool has kept namespaces to hand on.
    for name in ["clean/1", "clean/2", "clean/3", "clean/4"] {
        defs.push(case(name, Role::Fresh, &RESIDUE_LOG));
    }
    for (leaver, checker, role) in [
        ("leaves/listening", "after/listening", Role::Listening),
        ("leaves/time_wait", "after/time_wait", Role::TimeWait),
        ("leaves/bound_udp", "after/bound_udp", Role::BoundUdp),
        ("leaves/sysctl", "after/sysctl", Role::Sysctl),
        ("leaves/extra_link", "after/extra_link", Role::ExtraLink),
    ] {
        defs.push(case(leaver, role, &RESIDUE_LOG));
        defs.push(case(checker, Role::Fresh, &RESIDUE_LOG));
    }
    let cases = expand(&defs);
    let options = RunOptions {
        threads: Some(1),
        namespaces: Namespaces::Reuse,
        ..RunOptions::default()
    };
    let ran = run_all(&cases, &probes, &options, |_| {});
    for result in &ran.results {
        assert_eq!(
            result.outcome,
            Outcome::Pass,
            "{}: {:?}",
            result.name,
            result.outcome
        );
    }
    let order = RESIDUE_LOG.lock().unwrap().clone();
    for (position, (name, cookie)) in order.iter().enumerate() {
        if name.starts_with("leaves/") {
            let later: Vec<_> = order[position + 1..]
                .iter()
                .filter(|(_, c)| c == cookie)
                .collect();
            assert!(
                later.is_empty(),
                "{name} left residue, yet {later:?} ran in its namespace"
            );
        }
    }
    let note = ran.notes.join("\n");
    assert!(note.contains("dropped"), "{note}");
    for kind in ["for TIME_WAIT", "for sysctl", "for rtnetlink object"] {
        assert!(note.contains(kind), "no namespace dropped {kind}: {note}");
    }
}

/// Runs 30 cases that each log their namespace's cookie into `log`, on
/// `threads` threads with `namespaces`; every case must pass. Gives the
/// run and how many distinct namespaces the cases saw.
fn distinct_namespaces(
    prefix: &str,
    log: &'static Log,
    threads: usize,
    namespaces: Namespaces,
) -> Option<(harness::runner::Ran, usize)> {
    let Ok(probes) = Probes::setup() else {
        require::skip_or_fail(require::Requirement::Root, "no namespaces here");
        return None;
    };
    let defs: Vec<_> = (0..30)
        .map(|i| {
            let name: &'static str = Box::leak(format!("{prefix}/{i}").into_boxed_str());
            case(name, Role::Fresh, log)
        })
        .collect();
    let options = RunOptions {
        threads: Some(threads),
        namespaces,
        ..RunOptions::default()
    };
    let ran = run_all(&expand(&defs), &probes, &options, |_| {});
    assert!(
        ran.results.iter().all(|r| r.outcome == Outcome::Pass),
        "{:?}",
        ran.results
    );
    let mut cookies: Vec<u64> = log.lock().unwrap().iter().map(|(_, c)| *c).collect();
    cookies.sort_unstable();
    cookies.dedup();
    Some((ran, cookies.len()))
}

#[test]
fn clean_cases_share_namespaces() {
    let Some((ran, distinct)) = distinct_namespaces("share", &SHARE_LOG, 1, Namespaces::Reuse)
    else {
        return;
    };
    assert!(
        distinct < 30,
        "30 cases ran in {distinct} namespaces: none reused ({:?})",
        ran.notes
    );
}

#[test]
fn namespaces_made_ahead_go_to_one_case_each() {
    let Some((ran, distinct)) = distinct_namespaces("ahead", &AHEAD_LOG, 2, Namespaces::Ahead)
    else {
        return;
    };
    assert_eq!(distinct, 30, "{:?}", ran.notes);
    assert!(
        ran.notes
            .iter()
            .any(|n| n.starts_with("namespaces: 30 case(s) in a namespace made ahead; ")),
        "{:?}",
        ran.notes
    );
}
