//! Moving a relayed socket to its object's next owner: when the owner of a socket this node
//! relays goes away, the socket is offered to the object's owner as it is now. The request goes
//! to this node first, whose runtime claims the object if nobody owns it, or names the node that
//! does (421), which is asked next; an owner that cannot be reached (the dead one, until its lease
//! lapsed) is asked again after a pause, for as long as a forwarded request would be.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dormouse_runtime::AdoptedSocket;
use dormouse_runtime::placement::{Duplex, PlacedObject, Readopt};
use http::HeaderValue;

use crate::forward::NotAdopted;
use crate::placement::ClusterPlacement;

/// The first pause before asking again, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LAST_PAUSE: Duration = Duration::from_millis(500);

impl ClusterPlacement {
    /// How sockets relayed for `object` move when its owner goes away; `extensions` is the
    /// client's offer of extensions, which each new owner agrees to as the first one did.
    pub(crate) fn readopter(
        self: &Arc<Self>,
        object: PlacedObject,
        extensions: Option<HeaderValue>,
    ) -> Readopt {
        let placement = Arc::downgrade(self);
        Arc::new(move |socket: AdoptedSocket| {
            let (placement, object, extensions) =
                (placement.clone(), object.clone(), extensions.clone());
            Box::pin(async move {
                let placement = placement
                    .upgrade()
                    .ok_or_else(|| std::io::Error::other("the node is stopping"))?;
                placement
                    .readopt(&object, &socket, extensions.as_ref())
                    .await
            })
        })
    }

    async fn readopt(
        &self,
        object: &PlacedObject,
        socket: &AdoptedSocket,
        extensions: Option<&HeaderValue>,
    ) -> std::io::Result<Box<dyn Duplex>> {
        let started = Instant::now();
        let patience = self.patience();
        let mut pause = FIRST_PAUSE;
        let myself: Arc<str> = self.node().into();
        let mut peer = myself.clone();
        loop {
            match self
                .forwarder
                .adopt(&peer, object, socket, extensions)
                .await
            {
                Ok(connection) => {
                    self.metrics.moved_sockets.inc();
                    return Ok(connection);
                }
                Err(NotAdopted::OwnedBy(Some(owner))) if owner != peer => {
                    peer = owner;
                    continue;
                }
                Err(NotAdopted::Refused(why)) => return Err(std::io::Error::other(why)),
                Err(why) => {
                    if started.elapsed() >= patience {
                        return Err(std::io::Error::other(format!(
                            "no node adopted the socket within {patience:?}: {why}"
                        )));
                    }
                    tracing::debug!(%peer, %why, "socket not adopted yet; asking again");
                    peer = myself.clone();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LAST_PAUSE);
                }
            }
        }
    }
}
