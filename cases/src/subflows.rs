//! Additional MPTCP subflows: a subflow the path manager opens from a
//! second endpoint (MP_JOIN) binds to that endpoint's address with port 0
//! (__mptcp_subflow_connect() -> kernel_bind()), after
//! mptcp_sockopt_sync_locked() copied the MPTCP socket's
//! `local_port_range` to it, so it picks its port from the socket's range,
//! not the netns range (6.8 and later; the stable-6.1 profile refuses the
//! option on MPTCP sockets, which the probes turn into a skip).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use harness::{CaseDef, CaseError, Ctx, Family, OrFail, Proto, Setup, check_eq, describe};
use socket2::Socket;

use crate::mptcp_pm::add_subflow_endpoint;
use crate::ports::{SERVER_PORT, connect_to, server_on, socket_with_range};

/// The client's one-port range, inside the netns range 40000-49999: a
/// kernel taking the join's port from the netns range lands on it by
/// chance once in 10000 runs.
const PORT: u16 = 41000;

/// The second endpoint's address (on `lo` with the rest of 127/8).
const ENDPOINT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// How long the path manager may take to open the join (its worker runs
/// once the connection is fully established).
const JOIN_WAIT: Duration = Duration::from_secs(10);

/// The cases of this module.
pub fn cases() -> Vec<CaseDef> {
    vec![
        CaseDef::new("mptcp_join/subflow_port_from_socket_range", join)
            .protos(&[Proto::Mptcp])
            .families(&[Family::V4])
            .setup(Setup::netns_range(40000, 49999)),
    ]
}

/// With the endpoint 127.0.0.2 (flag `subflow`) configured, a client with
/// the one-port range 41000 connects to a server on 127.0.0.1 and
/// exchanges a message (so the connection is fully established): its
/// first subflow leaves from 127.0.0.1:41000, and the subflow the path
/// manager adds from 127.0.0.2 from port 41000 too (the two differ by
/// address, so they do not conflict).
fn join(ctx: &Ctx) -> Result<(), CaseError> {
    let _endpoints = add_subflow_endpoint(ENDPOINT, 1).map_err(|e| {
        CaseError::Harness(format!(
            "configuring the MPTCP endpoint {ENDPOINT} (subflow): {}",
            describe(&e)
        ))
    })?;
    let server = server_on(ctx, SERVER_PORT)?;
    let client = socket_with_range(ctx, PORT, PORT)?;
    connect_to(ctx, &client, SERVER_PORT).or_fail("connect() to the server")?;
    let (child, _) = server.accept().or_fail("accept()")?;
    exchange(&client, &child)?;
    let start = Instant::now();
    let subflows = loop {
        let subflows = local_ports(&client)?;
        if subflows.len() >= 2 || start.elapsed() > JOIN_WAIT {
            break subflows;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let want = [(Ipv4Addr::LOCALHOST, PORT), (ENDPOINT, PORT)];
    check_eq!(
        subflows,
        want,
        "the client's subflows (local address, port), waiting up to {} s for the join",
        JOIN_WAIT.as_secs()
    );
    Ok(())
}

/// A message each way, so both ends see the connection fully established.
fn exchange(client: &Socket, child: &Socket) -> Result<(), CaseError> {
    client.send(b"ping").or_fail("send() from the client")?;
    let mut buf = [std::mem::MaybeUninit::new(0u8); 4];
    child
        .recv(&mut buf)
        .or_fail("recv() on the accepted socket")?;
    child
        .send(b"pong")
        .or_fail("send() from the accepted socket")?;
    client.recv(&mut buf).or_fail("recv() on the client")?;
    Ok(())
}

const SOL_MPTCP: libc::c_int = 284;
const MPTCP_SUBFLOW_ADDRS: libc::c_int = 3;
/// struct mptcp_subflow_data: four u32, aligned to 8.
const HEADER: usize = 16;
/// struct mptcp_subflow_addrs: two sockaddr_storage.
const ENTRY: usize = 256;

/// The IPv4 local address and port of each subflow of an MPTCP socket, in
/// the kernel's order (MPTCP_SUBFLOW_ADDRS).
fn local_ports(socket: &Socket) -> Result<Vec<(Ipv4Addr, u16)>, CaseError> {
    let mut buf = vec![0u8; HEADER + 4 * ENTRY];
    buf[0..4].copy_from_slice(&(HEADER as u32).to_ne_bytes());
    buf[12..16].copy_from_slice(&(ENTRY as u32).to_ne_bytes());
    let len = libc::socklen_t::try_from(buf.len()).expect("a small buffer");
    let len = harness::sockopt::get_into(socket, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, &mut buf, len)
        .map_err(|e| {
            CaseError::Harness(format!(
                "getsockopt(SOL_MPTCP, MPTCP_SUBFLOW_ADDRS): {}",
                describe(&e)
            ))
        })?;
    let count = u32::from_ne_bytes(buf[4..8].try_into().expect("4 bytes")) as usize;
    let written = (len as usize).min(buf.len());
    Ok(buf[HEADER..written]
        .chunks_exact(ENTRY)
        .take(count)
        .map(|entry| {
            // sockaddr_in: family, port (network order), address.
            let port = u16::from_be_bytes([entry[2], entry[3]]);
            let addr = Ipv4Addr::new(entry[4], entry[5], entry[6], entry[7]);
            (addr, port)
        })
        .collect())
}
