//! The traffic: echo services on the server, flows from the clients, the
//! exhaustion of one slice, and a sniffer per client that sees every TCP
//! segment and UDP datagram arriving there.
//!
//! Every function that opens a client socket must run inside that
//! client's namespace (the socket belongs to it for life); the I/O can
//! then happen on any thread.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use harness::sockopt::{IP_BIND_ADDRESS_NO_PORT, set_port_range, set_raw};
use netns_util::IpVersion;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::plan::{Plan, Purpose, server_addr, server_port, shared};

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl From<Proto> for harness::Proto {
    fn from(proto: Proto) -> Self {
        match proto {
            Proto::Tcp => harness::Proto::Tcp,
            Proto::Udp => harness::Proto::Udp,
        }
    }
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// `tcp4`, `udp6`, ...
pub fn label(proto: Proto, version: IpVersion) -> String {
    let v = match version {
        IpVersion::V4 => 4,
        IpVersion::V6 => 6,
    };
    format!("{}{v}", proto.name())
}

/// One flow as the client saw it.
#[derive(Debug)]
pub struct Flow {
    /// Its protocol.
    pub proto: Proto,
    /// Its family.
    pub version: IpVersion,
    /// The local port the kernel chose, when it chose one.
    pub port: Option<u16>,
    /// Why it failed (connect refused, timed out, no reply), if it did.
    pub error: Option<FlowError>,
    /// Whether the reply came back (TCP: handshake and echo; UDP: echo).
    pub replied: bool,
    /// The socket, kept open while the flow must hold its port.
    pub socket: Option<Socket>,
}

/// A failed flow: the errno when the kernel gave one, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    /// The errno, for errors the kernel returned.
    pub errno: Option<i32>,
    /// `connect: EADDRNOTAVAIL (...)`, `no echo within 5s`.
    pub text: String,
}

impl FlowError {
    fn io(what: &str, error: &io::Error) -> Self {
        FlowError {
            errno: error.raw_os_error(),
            text: format!("{what}: {}", harness::describe(error)),
        }
    }

    fn timeout(what: &str, wait: Duration) -> Self {
        FlowError {
            errno: None,
            text: format!("{what} within {:.1}s", wait.as_secs_f64()),
        }
    }

    /// The errno's name (`EAGAIN`), or the text.
    pub fn short(&self) -> String {
        match self.errno {
            Some(code) => format!("{:?}", nix::errno::Errno::from_raw(code)),
            None => self.text.clone(),
        }
    }
}

fn domain(version: IpVersion) -> Domain {
    match version {
        IpVersion::V4 => Domain::IPV4,
        IpVersion::V6 => Domain::IPV6,
    }
}

/// A socket of host `k` with its range set, bound to the shared address
/// without a port: the port is chosen at connect() time, from the range.
fn client_socket(plan: &Plan, k: usize, version: IpVersion, proto: Proto) -> io::Result<Socket> {
    let (kind, protocol) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let socket = Socket::new(domain(version), kind, Some(protocol))?;
    let (lo, hi) = plan.hosts[k].asked;
    set_port_range(&socket, lo, hi)?;
    set_raw(&socket, IP_BIND_ADDRESS_NO_PORT, &1i32.to_ne_bytes())?;
    socket.bind(&SocketAddr::new(shared(version), 0).into())?;
    Ok(socket)
}

fn local_port(socket: &Socket) -> Option<u16> {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .filter(|&p| p != 0)
}

fn failed(proto: Proto, version: IpVersion, port: Option<u16>, error: FlowError) -> Flow {
    Flow {
        proto,
        version,
        port,
        error: Some(error),
        replied: false,
        socket: None,
    }
}

/// Opens `count` flows with `open` (given the flow's index), recording each
/// socket or error; stops at the first error when `stop_at_error`.
fn open_flows(
    proto: Proto,
    version: IpVersion,
    count: usize,
    stop_at_error: bool,
    mut open: impl FnMut(usize) -> Result<Socket, FlowError>,
) -> Vec<Flow> {
    let mut flows = Vec::new();
    for i in 0..count {
        match open(i) {
            Ok(socket) => flows.push(Flow {
                proto,
                version,
                port: local_port(&socket),
                error: None,
                replied: false,
                socket: Some(socket),
            }),
            Err(error) => {
                flows.push(failed(proto, version, None, error));
                if stop_at_error {
                    break;
                }
            }
        }
    }
    flows
}

fn tag(k: usize, proto: Proto, version: IpVersion, i: usize) -> Vec<u8> {
    format!("host{k} {} #{i}", label(proto, version)).into_bytes()
}

/// Up to `count` TCP connections from host `k` to its `purpose` server
/// port, each echoing a tag (exhaustion connections only complete their
/// handshake); stops at the first connect() error when
/// `stop_at_error` (the exhaustion), else records it and goes on.
/// Must run inside host `k`'s namespace.
pub fn tcp_flows(
    plan: &Plan,
    k: usize,
    version: IpVersion,
    purpose: Purpose,
    count: usize,
    stop_at_error: bool,
) -> Vec<Flow> {
    let to: SockAddr = SocketAddr::new(server_addr(version), server_port(k, purpose)).into();
    let mut flows = open_flows(Proto::Tcp, version, count, stop_at_error, |_| {
        let socket = client_socket(plan, k, version, Proto::Tcp)
            .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
            .map_err(|e| FlowError::io("socket", &e))?;
        match socket.connect(&to) {
            Ok(()) => Ok(socket),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
            Err(e) => Err(FlowError::io("connect", &e)),
        }
    });
    let deadline = Instant::now() + plan.wait;
    await_handshakes(&mut flows, deadline, plan.wait);
    await_echoes(&mut flows, plan.wait, "echo", |i, socket| {
        if purpose == Purpose::Exhaust {
            // The server only holds these: the handshake is the reply.
            return Ok(true);
        }
        echo_tcp(socket, &tag(k, Proto::Tcp, version, i), deadline)
    });
    flows
}

/// Waits for each open flow's echo with `echo` (given the flow's index),
/// recording a reply, a timeout or the error (named `what`).
fn await_echoes(
    flows: &mut [Flow],
    wait: Duration,
    what: &str,
    mut echo: impl FnMut(usize, &Socket) -> io::Result<bool>,
) {
    for (i, flow) in flows.iter_mut().enumerate() {
        let Some(socket) = flow.socket.as_ref().filter(|_| flow.error.is_none()) else {
            continue;
        };
        match echo(i, socket) {
            Ok(true) => flow.replied = true,
            Ok(false) => flow.error = Some(FlowError::timeout("no echo", wait)),
            Err(e) => flow.error = Some(FlowError::io(what, &e)),
        }
    }
}

/// Waits until every started connection is established or failed.
fn await_handshakes(flows: &mut [Flow], deadline: Instant, wait: Duration) {
    loop {
        let mut pending = 0;
        for flow in flows.iter_mut().filter(|f| f.error.is_none()) {
            let Some(socket) = &flow.socket else { continue };
            match socket.take_error() {
                Ok(Some(e)) | Err(e) => flow.error = Some(FlowError::io("connect", &e)),
                Ok(None) if socket.peer_addr().is_ok() => {}
                Ok(None) => pending += 1,
            }
        }
        if pending == 0 {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    for flow in flows.iter_mut().filter(|f| f.error.is_none()) {
        if let Some(socket) = &flow.socket
            && socket.peer_addr().is_err()
        {
            flow.error = Some(FlowError::timeout("no handshake", wait));
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(50))
}

fn echo_tcp(socket: &Socket, tag: &[u8], deadline: Instant) -> io::Result<bool> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(remaining(deadline)))?;
    let mut stream = socket;
    stream.write_all(tag)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 128];
    while got.len() < tag.len() {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if timed_out(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(got == tag)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Up to `count` connected UDP sockets of host `k` to its `purpose` server
/// port, each sending a tag and waiting for its echo; stops at the first
/// connect() error when `stop_at_error`. Must run inside host `k`'s
/// namespace.
pub fn udp_flows(
    plan: &Plan,
    k: usize,
    version: IpVersion,
    purpose: Purpose,
    count: usize,
    stop_at_error: bool,
) -> Vec<Flow> {
    let to: SockAddr = SocketAddr::new(server_addr(version), server_port(k, purpose)).into();
    let mut flows = open_flows(Proto::Udp, version, count, stop_at_error, |i| {
        let socket =
            client_socket(plan, k, version, Proto::Udp).map_err(|e| FlowError::io("socket", &e))?;
        socket
            .connect(&to)
            .map_err(|e| FlowError::io("connect", &e))?;
        socket
            .send(&tag(k, Proto::Udp, version, i))
            .map_err(|e| FlowError::io("send", &e))?;
        Ok(socket)
    });
    let deadline = Instant::now() + plan.wait;
    await_echoes(&mut flows, plan.wait, "recv", |i, socket| {
        echo_udp(socket, &tag(k, Proto::Udp, version, i), deadline)
    });
    flows
}

fn echo_udp(socket: &Socket, tag: &[u8], deadline: Instant) -> io::Result<bool> {
    let mut buf = [0u8; 128];
    let mut stream = socket;
    loop {
        socket.set_read_timeout(Some(remaining(deadline)))?;
        match stream.read(&mut buf) {
            Ok(n) if &buf[..n] == tag => return Ok(true),
            Ok(_) => continue,
            Err(e) if timed_out(&e) => return Ok(false),
            // An ICMP error queued on the connected socket: no echo.
            Err(e) if e.raw_os_error().is_some() && Instant::now() < deadline => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What the server saw: a connection accepted or a datagram received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its protocol.
    pub proto: Proto,
    /// The server port it came to.
    pub port: u16,
    /// Where it came from.
    pub peer: SocketAddr,
}

/// The echo services: TCP and UDP on every host's flow and exhaustion
/// port, every family; records the source of everything that arrives.
pub struct Server {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the services. Must run inside the server's namespace.
    pub fn start(plan: &Plan) -> io::Result<Server> {
        let mut listeners = Vec::new();
        let mut datagrams = Vec::new();
        for &version in &plan.versions {
            for k in 0..plan.hosts.len() {
                for purpose in [Purpose::Flow, Purpose::Exhaust] {
                    let at = SocketAddr::new(server_addr(version), server_port(k, purpose));
                    let listener = TcpListener::bind(at)?;
                    listener.set_nonblocking(true)?;
                    listeners.push((listener, purpose));
                    let socket = UdpSocket::bind(at)?;
                    socket.set_nonblocking(true)?;
                    datagrams.push(socket);
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tcp = {
            let (stop, seen) = (stop.clone(), seen.clone());
            thread::spawn(move || serve_tcp(&listeners, &stop, &seen))
        };
        let udp = {
            let (stop, seen) = (stop.clone(), seen.clone());
            thread::spawn(move || serve_udp(&datagrams, &stop, &seen))
        };
        Ok(Server {
            stop,
            seen,
            threads: vec![tcp, udp],
        })
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("server record").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const IDLE: Duration = Duration::from_millis(1);

fn serve_tcp(listeners: &[(TcpListener, Purpose)], stop: &AtomicBool, seen: &Mutex<Vec<Seen>>) {
    // Connections to exhaustion ports only hold their 4-tuple: kept here.
    let mut held: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for (listener, purpose) in listeners {
            let Ok((stream, peer)) = listener.accept() else {
                continue;
            };
            busy = true;
            let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
            seen.lock().expect("server record").push(Seen {
                proto: Proto::Tcp,
                port,
                peer,
            });
            if stream.set_nonblocking(false).is_err() {
                continue;
            }
            match purpose {
                Purpose::Exhaust => held.push(stream),
                Purpose::Flow => {
                    thread::spawn(move || echo_stream(stream));
                }
            }
        }
        if !busy {
            thread::sleep(IDLE);
        }
    }
}

/// Echoes until the client closes (or a generous timeout).
fn echo_stream(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = [0u8; 512];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn serve_udp(sockets: &[UdpSocket], stop: &AtomicBool, seen: &Mutex<Vec<Seen>>) {
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for socket in sockets {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            busy = true;
            let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
            seen.lock().expect("server record").push(Seen {
                proto: Proto::Udp,
                port,
                peer,
            });
            let _ = socket.send_to(&buf[..n], peer);
        }
        if !busy {
            thread::sleep(IDLE);
        }
    }
}

/// A packet that arrived at a client, as its sniffer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// Its protocol.
    pub proto: Proto,
    /// Its family.
    pub version: IpVersion,
    /// Source port (the server port it came from).
    pub sport: u16,
    /// Destination port (the client port it went to).
    pub dport: u16,
}

/// Raw sockets that receive a copy of every TCP segment and UDP datagram
/// arriving in one namespace, whether or not a socket wants it.
pub struct Sniffer {
    sockets: Vec<(Socket, Proto, IpVersion)>,
}

impl Sniffer {
    /// Opens the raw sockets. Must run inside the client's namespace.
    pub fn open(versions: &[IpVersion]) -> io::Result<Sniffer> {
        let mut sockets = Vec::new();
        for &version in versions {
            for (proto, protocol) in [(Proto::Tcp, Protocol::TCP), (Proto::Udp, Protocol::UDP)] {
                let socket = Socket::new(domain(version), Type::RAW, Some(protocol))?;
                socket.set_nonblocking(true)?;
                socket.set_recv_buffer_size(4 << 20)?;
                sockets.push((socket, proto, version));
            }
        }
        Ok(Sniffer { sockets })
    }

    /// Every packet received since the last call.
    pub fn drain(&self) -> Vec<Sniffed> {
        let mut packets = Vec::new();
        let mut buf = [0u8; 2048];
        for (socket, proto, version) in &self.sockets {
            let mut reader = socket;
            while let Ok(n) = reader.read(&mut buf) {
                // IPv4 raw sockets get the IP header, IPv6 ones do not.
                let offset = match version {
                    IpVersion::V4 => usize::from(buf[0] & 0x0f) * 4,
                    IpVersion::V6 => 0,
                };
                let Some(ports) = buf[..n].get(offset..offset + 4) else {
                    continue;
                };
                packets.push(Sniffed {
                    proto: *proto,
                    version: *version,
                    sport: u16::from_be_bytes([ports[0], ports[1]]),
                    dport: u16::from_be_bytes([ports[2], ports[3]]),
                });
            }
        }
        packets
    }
}
