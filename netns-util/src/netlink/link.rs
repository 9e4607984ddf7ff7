//! Links (`ip link`): look up, list, veth pairs, move, rename, up, down,
//! delete.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use futures::TryStreamExt;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{Netlink, refused};
use crate::{Error, Netns};

/// A link as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// Whether the link is administratively up (`IFF_UP`).
    pub up: bool,
    /// Whether the link is operational (`IFF_RUNNING`: up with carrier, as
    /// the kernel's link watcher has seen it).
    pub running: bool,
}

impl Link {
    fn from_message(message: &LinkMessage) -> Self {
        let name = message
            .attributes
            .iter()
            .find_map(|attr| match attr {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Link {
            index: message.header.index,
            name,
            up: message.header.flags.contains(LinkFlags::Up),
            running: message.header.flags.contains(LinkFlags::Running),
        }
    }
}

/// Requests about the links of one namespace; from [`Netlink::link`].
pub struct LinkHandle<'a> {
    netlink: &'a Netlink,
}

impl<'a> LinkHandle<'a> {
    pub(super) fn new(netlink: &'a Netlink) -> Self {
        Self { netlink }
    }

    /// Waits until the link called `name` is operational (`IFF_RUNNING`).
    /// The kernel's link watcher marks a new veth running asynchronously,
    /// and IPv6 treats the link as ready only then; traffic sent earlier can
    /// sit in neighbour discovery for seconds on a busy machine.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.get(name).await?.running {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotRunning {
                    name: name.to_owned(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The interface index of the link called `name`;
    /// [`Error::NoSuchLink`] when there is none.
    pub async fn index(&self, name: &str) -> Result<u32, Error> {
        self.get(name).await.map(|link| link.index)
    }

    /// The link called `name`; [`Error::NoSuchLink`] when there is none.
    pub async fn get(&self, name: &str) -> Result<Link, Error> {
        let mut links = self
            .netlink
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Link::from_message(&link)),
            Ok(None) => Err(Error::NoSuchLink(name.to_owned())),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.raw_code() == -(nix::errno::Errno::ENODEV as i32) =>
            {
                Err(Error::NoSuchLink(name.to_owned()))
            }
            Err(source) => Err(refused(format!("get link {name}"))(source)),
        }
    }

    /// Every link of the namespace, in the kernel's order (by index).
    pub async fn list(&self) -> Result<Vec<Link>, Error> {
        self.netlink
            .handle
            .link()
            .get()
            .execute()
            .map_ok(|message| Link::from_message(&message))
            .try_collect()
            .await
            .map_err(refused("list links"))
    }

    /// Creates a veth pair `name` <-> `peer` (`ip link add NAME type veth
    /// peer name PEER`). Both ends start down, in this namespace unless
    /// [`VethAddRequest::peer_netns`] places the peer elsewhere.
    pub fn add_veth(&self, name: &str, peer: &str) -> VethAddRequest<'a> {
        VethAddRequest {
            netlink: self.netlink,
            name: name.to_owned(),
            peer: peer.to_owned(),
            peer_netns: None,
        }
    }

    /// Moves the link called `name` into `netns` (`ip link set NAME netns
    /// FD`). The link keeps its name and goes down.
    pub async fn set_netns(&self, name: &str, netns: &Netns) -> Result<(), Error> {
        let index = self.index(name).await?;
        self.set(
            LinkUnspec::new_with_index(index)
                .setns_by_fd(netns.as_fd().as_raw_fd())
                .build(),
            format!("move link {name} to another namespace"),
        )
        .await
    }

    /// Renames the link called `name` to `new_name` (`ip link set NAME name
    /// NEW`). Do it while the link is down: the kernel refuses to rename
    /// most running links (EBUSY).
    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), Error> {
        let index = self.index(name).await?;
        self.set(
            LinkUnspec::new_with_index(index).name(new_name).build(),
            format!("rename link {name} to {new_name}"),
        )
        .await
    }

    /// Sets the link called `name` administratively up.
    pub async fn up(&self, name: &str) -> Result<(), Error> {
        let index = self.index(name).await?;
        self.set(
            LinkUnspec::new_with_index(index).up().build(),
            format!("set link {name} up"),
        )
        .await
    }

    /// Sets the link called `name` administratively down.
    pub async fn down(&self, name: &str) -> Result<(), Error> {
        let index = self.index(name).await?;
        self.set(
            LinkUnspec::new_with_index(index).down().build(),
            format!("set link {name} down"),
        )
        .await
    }

    /// Deletes the link called `name` (both ends, for a veth).
    pub async fn del(&self, name: &str) -> Result<(), Error> {
        let index = self.index(name).await?;
        self.netlink
            .handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(refused(format!("delete link {name}")))
    }

    async fn set(&self, message: LinkMessage, what: String) -> Result<(), Error> {
        self.netlink
            .handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(refused(what))
    }
}

/// A veth pair to create; from [`LinkHandle::add_veth`].
pub struct VethAddRequest<'a> {
    netlink: &'a Netlink,
    name: String,
    peer: String,
    peer_netns: Option<&'a Netns>,
}

impl<'a> VethAddRequest<'a> {
    /// Creates the peer end directly inside `netns` (`peer name PEER netns
    /// FD`), so its name only has to be free there.
    pub fn peer_netns(mut self, netns: &'a Netns) -> Self {
        self.peer_netns = Some(netns);
        self
    }

    /// Sends the request.
    pub async fn execute(self) -> Result<(), Error> {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new().name(self.peer.clone());
        if let Some(netns) = self.peer_netns {
            peer = peer.setns_by_fd(netns.as_fd().as_raw_fd());
        }
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(self.name.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        let where_ = if self.peer_netns.is_some() {
            " in another namespace"
        } else {
            ""
        };
        self.netlink
            .handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(refused(format!(
                "add veth pair {} <-> {}{where_}",
                self.name, self.peer
            )))
    }
}
