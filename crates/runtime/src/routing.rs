//! Which node an object's events go to: here, unless a [`Placement`] says another node owns it.

use std::sync::Arc;

use std::time::{Duration, Instant};

use dormouse_sdk::{Error, ErrorKind, ObjectId, Request, Response};
use tokio::sync::oneshot;

use crate::namespace::{Namespace, deliver, reset_while_handling};
use crate::object::{Envelope, ObjectCell};
use crate::placement::{Placement, PlacementError, Route};
use crate::registry::CellKey;
use crate::runtime::Shared;

/// Where an object runs, as far as one delivery is concerned.
pub(crate) enum Placed {
    /// Here: deliver to its cell.
    Here,
    /// At the node at this address: forward through the placement.
    Peer(Arc<str>, Arc<dyn Placement>),
}

/// Where the object `id` of `namespace` runs. Without a placement, here; with one, here if this
/// node owns it or has just claimed it.
pub(crate) async fn place(
    shared: &Shared,
    namespace: &Namespace,
    id: &ObjectId,
) -> dormouse_sdk::Result<Placed> {
    let Some(placement) = &shared.placement else {
        return Ok(Placed::Here);
    };
    if placement.is_here(&namespace.binding, id.as_bytes()) {
        return Ok(Placed::Here);
    }
    match placement.route(namespace.placed(id.as_bytes())).await {
        Ok(Route::Here) => Ok(Placed::Here),
        Ok(Route::Claimed { alarm_ms }) => {
            if let Some(at) = alarm_ms {
                let key = CellKey {
                    namespace: namespace.index,
                    raw: *id.as_bytes(),
                };
                shared.alarms.load([(key, at)]);
                shared.alarms.wake();
            }
            Ok(Placed::Here)
        }
        Ok(Route::Peer(peer)) => Ok(Placed::Peer(peer, placement.clone())),
        Err(error) => Err(unavailable(&error)),
    }
}

/// Serves `request` by the object `id` of `namespace`, here or at its owner. A request its owner
/// provably did not get is routed again (the owner may have died, and another node take over)
/// until the placement's patience runs out.
pub(crate) async fn fetch(
    shared: Arc<Shared>,
    namespace: Arc<Namespace>,
    id: ObjectId,
    mut request: Request,
) -> dormouse_sdk::Result<Response> {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let (peer, placement) = match place(&shared, &namespace, &id).await? {
            Placed::Here => return fetch_here(shared, &namespace, &id, request).await,
            Placed::Peer(peer, placement) => (peer, placement),
        };
        let object = namespace.placed(id.as_bytes());
        match placement.forward(peer.clone(), object, request).await {
            Ok(answer) => return answer,
            Err(undelivered) => {
                if started.elapsed() >= placement.forward_patience() {
                    return Err(Error::new(
                        ErrorKind::Overloaded,
                        format!(
                            "the Durable Object's node {peer} cannot be reached: {}",
                            undelivered.why
                        ),
                    ));
                }
                tracing::debug!(%peer, why = %undelivered.why, "forward not delivered; routing again");
                request = undelivered.request;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LAST_PAUSE);
            }
        }
    }
}

/// The first pause before an undelivered request is routed again, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LAST_PAUSE: Duration = Duration::from_millis(500);

/// Serves `request` by the object on this node.
pub(crate) async fn fetch_here(
    shared: Arc<Shared>,
    namespace: &Arc<Namespace>,
    id: &ObjectId,
    request: Request,
) -> dormouse_sdk::Result<Response> {
    let (reply, response) = oneshot::channel();
    deliver(&shared, namespace, id, Envelope::Fetch { request, reply })?;
    drop(shared);
    response
        .await
        .unwrap_or_else(|_| Err(reset_while_handling()))
}

/// Whether this node owns the object of `cell` now, in cluster mode (always, on a single node).
pub(crate) fn is_placed_here(cell: &ObjectCell) -> bool {
    let placement = cell
        .namespace
        .shared
        .upgrade()
        .and_then(|shared| shared.placement.clone());
    match placement {
        None => true,
        Some(placement) => placement.is_here(&cell.namespace.binding, &cell.key().raw),
    }
}

/// The error a caller sees when the cluster cannot place an object: retryable, like overload.
pub(crate) fn unavailable(error: &PlacementError) -> Error {
    Error::new(ErrorKind::Overloaded, error.to_string())
}

/// JavaScript RPC travels between objects of one node only, for now.
pub(crate) fn call_elsewhere(peer: &str) -> Error {
    Error::new(
        ErrorKind::Overloaded,
        format!(
            "the Durable Object runs on another node ({peer}); method calls are not forwarded between nodes, use fetch"
        ),
    )
}
