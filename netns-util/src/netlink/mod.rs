//! rtnetlink requests made from inside a namespace.
//!
//! Shaped like rtnetlink itself: a [`Netlink`] connection hands out one
//! handle per object ([`link`](Netlink::link), [`address`](Netlink::address),
//! [`route`](Netlink::route), [`rule`](Netlink::rule)); each verb is a
//! builder that ends in `execute().await`. Links are named by their names,
//! not indices, and every error names the object and the kernel's answer.

mod address;
mod link;
mod route;
mod rule;

use rtnetlink::Handle;
use rtnetlink::sys::AsyncSocket;

pub use address::{AddressAddRequest, AddressHandle};
pub use link::{Link, LinkHandle, VethAddRequest};
pub use route::{MAIN_TABLE, RouteHandle, RouteRequest};
pub use rule::{Rule, RuleAddRequest, RuleHandle};

use crate::Error;

/// An rtnetlink connection opened inside one namespace.
///
/// Obtained through [`Netns::netlink`](crate::Netns::netlink); every request
/// it makes concerns the namespace it was opened in.
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Runs `f` with a new connection on a current-thread runtime built on
    /// the calling thread (which must already be inside the namespace).
    pub(crate) fn block_on<T>(
        f: impl AsyncFnOnce(&Netlink) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        runtime.block_on(async {
            let (mut connection, handle, _) =
                rtnetlink::new_connection().map_err(Error::Runtime)?;
            // Ask for the kernel's explanation with every refusal; a kernel
            // without extended acks simply sends none.
            let _ = connection.socket_mut().socket_mut().set_ext_ack(true);
            tokio::spawn(connection);
            f(&Netlink { handle }).await
        })
    }

    /// Requests about links (`ip link`).
    pub fn link(&self) -> LinkHandle<'_> {
        LinkHandle::new(self)
    }

    /// Requests about addresses (`ip address`).
    pub fn address(&self) -> AddressHandle<'_> {
        AddressHandle::new(self)
    }

    /// Requests about routes (`ip route`).
    pub fn route(&self) -> RouteHandle<'_> {
        RouteHandle::new(self)
    }

    /// Requests about policy routing rules (`ip rule`).
    pub fn rule(&self) -> RuleHandle<'_> {
        RuleHandle::new(self)
    }
}

/// Turns rtnetlink's error into ours, naming the request and keeping the
/// kernel's extended-ack text.
pub(crate) fn refused(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let what = what.into();
    move |source| {
        let extack = match &source {
            rtnetlink::Error::NetlinkError(message) => extack_text(&message.header),
            _ => None,
        };
        Error::Netlink {
            what,
            source,
            extack,
        }
    }
}

/// The `NLMSGERR_ATTR_MSG` text of an `NLMSG_ERROR` payload.
///
/// rtnetlink keeps everything after the error code as raw bytes: the
/// original request (its header says how long it was) followed, when the
/// kernel had something to say, by attributes.
fn extack_text(payload: &[u8]) -> Option<String> {
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let original_len = u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut rest = payload.get(original_len.next_multiple_of(4)..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::extack_text;

    #[test]
    fn extack_message_follows_the_original_request() {
        // A 20-byte original request (header says 20), then NLMSGERR_ATTR_MSG
        // "bad\0" (len 8) padded to 4 bytes.
        let mut payload = vec![0u8; 20];
        payload[..4].copy_from_slice(&20u32.to_ne_bytes());
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(b"bad\0");
        assert_eq!(extack_text(&payload).as_deref(), Some("bad"));
    }

    #[test]
    fn no_extack_without_attributes() {
        let mut payload = vec![0u8; 16];
        payload[..4].copy_from_slice(&16u32.to_ne_bytes());
        assert_eq!(extack_text(&payload), None);
    }
}
