//! Just enough generic netlink to give the MPTCP path manager of the
//! calling thread's namespace an endpoint (`ip mptcp endpoint add ADDR
//! subflow`): the family "mptcp_pm", command MPTCP_PM_CMD_ADD_ADDR.
//!
//! Written out here rather than with netlink-packet-generic: that crate
//! knows no "mptcp_pm" attribute, so every attribute below would still be
//! written by hand, and it would add two crates (matched to the workspace's
//! netlink-packet-core) for the sixteen bytes of header they save.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The generic netlink controller's family id (GENL_ID_CTRL).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const MPTCP_PM_NAME: &str = "mptcp_pm";
const MPTCP_PM_VER: u8 = 1;
const MPTCP_PM_CMD_ADD_ADDR: u8 = 1;
const MPTCP_PM_CMD_FLUSH_ADDRS: u8 = 4;
const MPTCP_PM_ATTR_ADDR: u16 = 1;
const MPTCP_PM_ADDR_ATTR_FAMILY: u16 = 1;
const MPTCP_PM_ADDR_ATTR_ID: u16 = 2;
const MPTCP_PM_ADDR_ATTR_ADDR4: u16 = 3;
const MPTCP_PM_ADDR_ATTR_FLAGS: u16 = 6;
/// The endpoint makes the client open a subflow from it (MP_JOIN).
const MPTCP_PM_ADDR_FLAG_SUBFLOW: u32 = 1 << 1;
const NLA_F_NESTED: u16 = 1 << 15;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;

/// The namespace's MPTCP endpoints, flushed when this is dropped: a
/// namespace may be used again by later cases (`--isolation reuse`), whose
/// check for leftovers does not look at endpoints.
pub struct Endpoints {
    socket: Socket,
    family: u16,
}

impl Drop for Endpoints {
    fn drop(&mut self) {
        let flushed = self
            .socket
            .request(self.family, MPTCP_PM_CMD_FLUSH_ADDRS, MPTCP_PM_VER, &[]);
        if let Err(e) = flushed {
            eprintln!("portrange: flushing the MPTCP endpoints of a case's namespace failed: {e}");
        }
    }
}

/// Adds `addr` as endpoint `id` with the `subflow` flag: each MPTCP
/// connection of the namespace then opens an additional subflow from it
/// until the returned [`Endpoints`] is dropped.
pub fn add_subflow_endpoint(addr: Ipv4Addr, id: u8) -> io::Result<Endpoints> {
    let socket = Socket::open()?;
    let family = socket.family_id(MPTCP_PM_NAME)?;
    let mut endpoint = Vec::new();
    attr(
        &mut endpoint,
        MPTCP_PM_ADDR_ATTR_FAMILY,
        &(libc::AF_INET as u16).to_ne_bytes(),
    );
    attr(&mut endpoint, MPTCP_PM_ADDR_ATTR_ID, &[id]);
    attr(&mut endpoint, MPTCP_PM_ADDR_ATTR_ADDR4, &addr.octets());
    attr(
        &mut endpoint,
        MPTCP_PM_ADDR_ATTR_FLAGS,
        &MPTCP_PM_ADDR_FLAG_SUBFLOW.to_ne_bytes(),
    );
    let mut attrs = Vec::new();
    attr(&mut attrs, MPTCP_PM_ATTR_ADDR | NLA_F_NESTED, &endpoint);
    socket
        .request(family, MPTCP_PM_CMD_ADD_ADDR, MPTCP_PM_VER, &attrs)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{MPTCP_PM_NAME} ADD_ADDR {addr} id {id}: {e}"),
            )
        })?;
    Ok(Endpoints { socket, family })
}

/// Appends one netlink attribute, padded to 4 bytes.
fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("a small attribute");
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The attributes of a message as `(type without flags, payload)`.
fn attrs(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & !NLA_F_NESTED;
        if len < 4 || len > bytes.len() {
            break;
        }
        found.push((kind, &bytes[4..len]));
        bytes = &bytes[len.next_multiple_of(4).min(bytes.len())..];
    }
    found
}

/// A NETLINK_GENERIC socket.
struct Socket(OwnedFd);

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: a plain socket() call; the descriptor is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket() and nothing else owns it.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The id of the generic netlink family `name` (ENOENT: not in this
    /// kernel, or its module is not loaded).
    fn family_id(&self, name: &str) -> io::Result<u16> {
        let mut attrs_out = Vec::new();
        let mut text = name.as_bytes().to_vec();
        text.push(0);
        attr(&mut attrs_out, CTRL_ATTR_FAMILY_NAME, &text);
        let reply = self
            .request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, &attrs_out)
            .map_err(|e| io::Error::new(e.kind(), format!("resolving the family {name}: {e}")))?;
        attrs(reply.get(GENL_HDRLEN..).unwrap_or_default())
            .into_iter()
            .find(|&(kind, payload)| kind == CTRL_ATTR_FAMILY_ID && payload.len() >= 2)
            .map(|(_, payload)| u16::from_ne_bytes([payload[0], payload[1]]))
            .ok_or_else(|| io::Error::other(format!("the family {name} came back without an id")))
    }

    /// Sends one request with an ack asked for; returns the payload of the
    /// reply message that came before the ack (empty when none did).
    fn request(&self, kind: u16, cmd: u8, version: u8, attrs: &[u8]) -> io::Result<Vec<u8>> {
        let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
        let mut message = Vec::with_capacity(len);
        message.extend_from_slice(&u32::try_from(len).expect("a small message").to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        message.extend_from_slice(&flags.to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes());
        message.extend_from_slice(&[cmd, version, 0, 0]);
        message.extend_from_slice(attrs);
        // SAFETY: the pointer and length describe `message`; the
        // destination is the kernel (a zeroed sockaddr_nl).
        let sent = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.0.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut payload = Vec::new();
        loop {
            let mut buf = vec![0u8; 16384];
            // SAFETY: the pointer and length describe `buf`.
            let got =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            buf.truncate(got as usize);
            let mut rest = buf.as_slice();
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::other("a truncated netlink reply"));
                }
                let body = &rest[NLMSG_HDRLEN..len];
                if kind == libc::NLMSG_ERROR as u16 {
                    let code = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
                    return match code {
                        0 => Ok(payload),
                        code => Err(io::Error::from_raw_os_error(-code)),
                    };
                }
                payload = body.to_vec();
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_read_back() {
        let mut out = Vec::new();
        attr(&mut out, 3, &[127, 0, 0, 2]);
        attr(&mut out, 2, &[7]);
        attr(&mut out, 1 | NLA_F_NESTED, &[]);
        assert_eq!(out.len(), 8 + 8 + 4);
        assert_eq!(
            attrs(&out),
            vec![(3, &[127u8, 0, 0, 2][..]), (2, &[7u8][..]), (1, &[][..])]
        );
    }
}
