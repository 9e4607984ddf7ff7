//! Routes (`ip route`): add and delete.

use std::fmt::Write;
use std::net::IpAddr;

use netlink_packet_route::route::{RouteMessage, RouteScope};
use rtnetlink::RouteMessageBuilder;

use super::{Netlink, refused};
use crate::{Error, Prefix};

/// The kernel's main routing table (`RT_TABLE_MAIN`).
pub const MAIN_TABLE: u32 = 254;

/// Requests about the routes of one namespace; from [`Netlink::route`].
pub struct RouteHandle<'a> {
    netlink: &'a Netlink,
}

impl<'a> RouteHandle<'a> {
    pub(super) fn new(netlink: &'a Netlink) -> Self {
        Self { netlink }
    }

    /// A route to `destination` (`ip route add DEST`); use
    /// [`Prefix::default_route`] for the default route. Say where it goes
    /// with [`via`](RouteRequest::via) and/or [`dev`](RouteRequest::dev).
    pub fn add(&self, destination: Prefix) -> RouteRequest<'a> {
        RouteRequest {
            netlink: self.netlink,
            destination,
            gateway: None,
            dev: None,
            table: MAIN_TABLE,
            delete: false,
        }
    }

    /// The route to `destination` to delete (`ip route del DEST`); narrow it
    /// with the same `via`, `dev` and `table` it was added with.
    pub fn del(&self, destination: Prefix) -> RouteRequest<'a> {
        RouteRequest {
            delete: true,
            ..self.add(destination)
        }
    }
}

/// A route to add or delete; from [`RouteHandle::add`] or
/// [`RouteHandle::del`].
pub struct RouteRequest<'a> {
    netlink: &'a Netlink,
    destination: Prefix,
    gateway: Option<IpAddr>,
    dev: Option<String>,
    table: u32,
    delete: bool,
}

impl RouteRequest<'_> {
    /// Through the gateway `gateway` (`via GW`). An IPv6 gateway for an
    /// IPv4 destination is sent as `RTA_VIA`.
    pub fn via(mut self, gateway: impl Into<IpAddr>) -> Self {
        self.gateway = Some(gateway.into());
        self
    }

    /// Out of the link called `link` (`dev LINK`).
    pub fn dev(mut self, link: &str) -> Self {
        self.dev = Some(link.to_owned());
        self
    }

    /// Into routing table `table` (`table T`); [`MAIN_TABLE`] by default.
    pub fn table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }

    fn describe(&self) -> String {
        let verb = if self.delete { "delete" } else { "add" };
        let mut what = format!("{verb} route {}", self.destination);
        if let Some(gateway) = self.gateway {
            let _ = write!(what, " via {gateway}");
        }
        if let Some(dev) = &self.dev {
            let _ = write!(what, " dev {dev}");
        }
        let _ = write!(what, " table {}", self.table);
        what
    }

    /// Sends the request.
    pub async fn execute(self) -> Result<(), Error> {
        let what = self.describe();
        // rtnetlink's InvalidRouteMessage is not exported: only its text
        // can be kept.
        let invalid = |e: &dyn std::error::Error| Error::InvalidRequest {
            what: what.clone(),
            reason: e.to_string(),
        };
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(self.destination.addr(), self.destination.len())
            .map_err(|e| invalid(&e))?
            .table_id(self.table);
        if let Some(gateway) = self.gateway {
            builder = builder.gateway(gateway).map_err(|e| invalid(&e))?;
        }
        if self.delete {
            // Like `ip route del`: match routes of any scope.
            builder = builder.scope(RouteScope::NoWhere);
        } else if self.gateway.is_none() && self.destination.version() == crate::IpVersion::V4 {
            // Like `ip route`: a route without a gateway is on-link.
            builder = builder.scope(RouteScope::Link);
        }
        if let Some(dev) = &self.dev {
            builder = builder.output_interface(self.netlink.link().index(dev).await?);
        }
        let message: RouteMessage = builder.build();
        let route = self.netlink.handle.route();
        let result = if self.delete {
            route.del(message).execute().await
        } else {
            route.add(message).execute().await
        };
        result.map_err(refused(what))
    }
}
