//! Addresses (`ip address`): add, list, delete.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};

use super::{Netlink, refused};
use crate::{Error, IpVersion, Prefix};

/// Requests about the addresses of one namespace; from [`Netlink::address`].
pub struct AddressHandle<'a> {
    netlink: &'a Netlink,
}

impl<'a> AddressHandle<'a> {
    pub(super) fn new(netlink: &'a Netlink) -> Self {
        Self { netlink }
    }

    /// Adds `prefix` (`10.0.0.1/24`, `2001:db8::1/64`) to the link called
    /// `link` (`ip address add PREFIX dev LINK`). IPv6 addresses are added
    /// with `IFA_F_NODAD`: usable at once, without waiting for duplicate
    /// address detection.
    pub fn add(&self, link: &str, prefix: Prefix) -> AddressAddRequest<'a> {
        AddressAddRequest {
            netlink: self.netlink,
            link: link.to_owned(),
            prefix,
            dad: false,
        }
    }

    /// The addresses of the link called `link`, link-local ones included.
    pub async fn list(&self, link: &str) -> Result<Vec<Prefix>, Error> {
        let index = self.netlink.link().index(link).await?;
        let messages: Vec<AddressMessage> = self
            .netlink
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(refused(format!("list addresses of link {link}")))?;
        Ok(messages.iter().filter_map(prefix_of).collect())
    }

    /// Removes `prefix` from the link called `link` (`ip address del`).
    pub async fn del(&self, link: &str, prefix: Prefix) -> Result<(), Error> {
        let index = self.netlink.link().index(link).await?;
        let what = format!("delete address {prefix} from link {link}");
        let mut messages = self
            .netlink
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(prefix.addr())
            .set_prefix_length_filter(prefix.len())
            .execute();
        let Some(message) = messages.try_next().await.map_err(refused(what.clone()))? else {
            return Err(Error::InvalidRequest {
                what,
                reason: "the link has no such address".to_owned(),
            });
        };
        self.netlink
            .handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(refused(what))
    }
}

/// The local address of a dumped address message, with its prefix length.
fn prefix_of(message: &AddressMessage) -> Option<Prefix> {
    let find = |local: bool| {
        message.attributes.iter().find_map(|attr| match attr {
            AddressAttribute::Local(addr) if local => Some(*addr),
            AddressAttribute::Address(addr) if !local => Some(*addr),
            _ => None,
        })
    };
    let addr: IpAddr = find(true).or_else(|| find(false))?;
    Prefix::new(addr, message.header.prefix_len).ok()
}

/// An address to add; from [`AddressHandle::add`].
pub struct AddressAddRequest<'a> {
    netlink: &'a Netlink,
    link: String,
    prefix: Prefix,
    dad: bool,
}

impl AddressAddRequest<'_> {
    /// Runs duplicate address detection for an IPv6 address (the address
    /// stays tentative, unusable as a source, until it completes). Off by
    /// default.
    pub fn dad(mut self, enable: bool) -> Self {
        self.dad = enable;
        self
    }

    /// Sends the request.
    pub async fn execute(self) -> Result<(), Error> {
        let index = self.netlink.link().index(&self.link).await?;
        let mut request =
            self.netlink
                .handle
                .address()
                .add(index, self.prefix.addr(), self.prefix.len());
        if self.prefix.version() == IpVersion::V6 && !self.dad {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(refused(format!(
            "add address {} to link {}",
            self.prefix, self.link
        )))
    }
}
