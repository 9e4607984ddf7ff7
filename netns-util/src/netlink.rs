//! rtnetlink requests made from inside a namespace.

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec};

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
            .build()
            .map_err(Error::Runtime)?;
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().map_err(Error::Runtime)?;
            tokio::spawn(connection);
            f(&Netlink { handle }).await
        })
    }

    /// The interface index of the link called `name`.
    pub async fn link_index(&self, name: &str) -> Result<u32, Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(Error::NoSuchLink(name.to_owned())),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => {
                Err(Error::NoSuchLink(name.to_owned()))
            }
            Err(source) => Err(Error::Netlink {
                what: format!("get link {name}"),
                source,
            }),
        }
    }

    /// Sets the link called `name` administratively up.
    pub async fn link_up(&self, name: &str) -> Result<(), Error> {
        let index = self.link_index(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                what: format!("set link {name} up"),
                source,
            })
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}
