//! Bringing `lo` up with one rtnetlink request on a blocking socket.
//!
//! Every case's namespace needs this and nothing else from rtnetlink, so it
//! skips the tokio runtime and connection task that [`Netlink`](crate::Netlink)
//! sets up: one `RTM_SETLINK` with `NLM_F_ACK`, one read of the answer.

use std::io;

use rtnetlink::LinkUnspec;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{Socket, protocols::NETLINK_ROUTE};

use crate::Error;
use crate::netlink::refused;

/// The loopback device's index: the kernel gives it 1 in every namespace.
const LOOPBACK_INDEX: u32 = 1;

const WHAT: &str = "set link lo up";

/// Sets the calling thread's namespace's loopback device up.
pub(crate) fn up() -> Result<(), Error> {
    let socket_error = |source| Error::NetlinkSocket { what: WHAT, source };
    let socket = Socket::new(NETLINK_ROUTE).map_err(socket_error)?;
    // The kernel's explanation with a refusal; a kernel without extended
    // acks sends none.
    let _ = socket.set_ext_ack(true);
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::SetLink(
        LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build(),
    ));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    request.header.sequence_number = 1;
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(socket_error)?;
    let (answer, _) = socket.recv_from_full().map_err(socket_error)?;
    let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&answer)
        .map_err(|e| socket_error(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let (header, payload) = answer.into_parts();
    let unexpected = match payload {
        NetlinkPayload::Error(message) if message.code.is_none() => return Ok(()),
        NetlinkPayload::Error(message) => rtnetlink::Error::NetlinkError(message),
        other => rtnetlink::Error::UnexpectedMessage(NetlinkMessage::new(header, other)),
    };
    Err(refused(WHAT)(unexpected))
}
