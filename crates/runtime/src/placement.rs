//! Where objects run when this runtime is one node of several: the seam cluster mode fills.
//!
//! Without a [`Placement`] every object runs here, as on a single node. With one, the runtime
//! asks it before an object's first event on this node: the object is made this node's (claimed,
//! its database brought up to date) or its requests go to the node that owns it. Each commit is
//! handed to it after the local flush and before the turn's output leaves (the output gate across
//! the network), and an object that leaves this node's memory with nothing of it left here is
//! given back.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dormouse_sdk::{Request, Response};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// An object as placement names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlacedObject {
    /// The binding of its class.
    pub binding: Arc<str>,
    /// Its id.
    pub id: [u8; 32],
    /// Its database file on this node (`None` when the runtime keeps no storage).
    pub database: Option<PathBuf>,
}

/// Where an object's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns the object: it runs here.
    Here,
    /// This node has just claimed the object: it runs here.
    Claimed {
        /// Its alarm, if the cluster keeps one, in milliseconds since the epoch.
        alarm_ms: Option<i64>,
    },
    /// The node at this address owns it: requests are forwarded there.
    Peer(Arc<str>),
}

/// Why placement could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlacementError {
    /// The object is no longer this node's (another node took it, or this node's lease
    /// lapsed): what it committed since is not acknowledged, and the object must be dropped.
    #[error("the object is no longer this node's: {0}")]
    Lost(String),
    /// The cluster cannot answer now (its database is unreachable, or no node can own the
    /// object): nothing happened, and the caller may retry.
    #[error("the cluster cannot place the object now: {0}")]
    Unavailable(String),
}

/// The placement of objects among the nodes of a cluster. Given to the runtime when it is built
/// ([`RuntimeBuilder::placement`](crate::RuntimeBuilder::placement)); it knows nothing of the
/// runtime.
pub trait Placement: Send + Sync + 'static {
    /// This node, as the cluster names it (the address its peers reach it at).
    fn node(&self) -> &str;

    /// Whether the object is this node's now, by what this node knows: the fast path of every
    /// delivery, so it must not wait.
    fn is_here(&self, binding: &str, id: &[u8; 32]) -> bool;

    /// Makes the object this node's, or says which node owns it. When the answer is
    /// [`Route::Here`] or [`Route::Claimed`], the object's database file is current.
    fn route(&self, object: PlacedObject) -> BoxFuture<'static, Result<Route, PlacementError>>;

    /// Sends `request` to the object on the node at `peer`. A WebSocket upgrade that the peer
    /// accepts comes back as a 101 response carrying a [`ForwardedUpgrade`]. A request the peer
    /// provably did not get (it could not be reached, or does not own the object) comes back
    /// [`Undelivered`], and what this node knew of the owner is forgotten: the runtime routes it
    /// again, for up to [`forward_patience`](Self::forward_patience).
    fn forward(
        &self,
        peer: Arc<str>,
        object: PlacedObject,
        request: Request,
    ) -> BoxFuture<'static, Result<dormouse_sdk::Result<Response>, Undelivered>>;

    /// How long a request whose owner cannot be reached is routed and sent again before it
    /// fails: long enough for a dead owner's lease to lapse and another node to take over.
    fn forward_patience(&self) -> std::time::Duration;

    /// Makes the commits written to the object's database since the last call durable in the
    /// cluster, in order; the turns' output waits for it. An error means they are not.
    fn ship(&self, object: PlacedObject) -> BoxFuture<'static, Result<(), PlacementError>>;

    /// The object's committed alarm changed (`None`: deleted). The cluster keeps it, so that
    /// another node fires it when this one cannot.
    fn alarm_changed(&self, object: PlacedObject, at_ms: Option<i64>);

    /// The object left this node's memory and holds nothing here (no socket, no queued event):
    /// another node may take it.
    fn release(&self, object: PlacedObject);
}

/// A forwarded request that did not reach the object: it can be sent again.
#[derive(Debug)]
pub struct Undelivered {
    /// The request, as it was.
    pub request: Request,
    /// Why it was not delivered, for the log and for the error if it never is.
    pub why: String,
}

/// A socket a peer relays, as it stood on the node its object left.
#[derive(Debug, Clone, Default)]
pub struct AdoptedSocket {
    /// Its tags.
    pub tags: Vec<String>,
    /// Its serialized attachment.
    pub attachment: Option<Vec<u8>>,
    /// The subprotocol agreed when it opened.
    pub protocol: Option<String>,
}

/// A byte stream both ways: a forwarded WebSocket connection.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Duplex for T {}

/// The extension of a 101 response forwarded from the object's owner: the connection to the
/// owner once it switched protocols, and how to hand the socket to the object's next owner. The
/// server answers the client with the owner's 101 and joins the two connections; when the owner
/// goes away (it died, lost the object, or drains), the socket is re-adopted by the next owner and
/// the client's connection stays open.
#[derive(Clone)]
pub struct ForwardedUpgrade {
    connection: Arc<Mutex<Option<UpgradeToOwner>>>,
    readopt: Option<Readopt>,
}

/// The connection to an object's owner, once it switched protocols.
pub type UpgradeToOwner = BoxFuture<'static, std::io::Result<Box<dyn Duplex>>>;

/// Asks the object's owner as it is now (after a takeover, say) to adopt a socket relayed for its
/// client, with the state its previous owner last reported; the connection to the new owner.
pub type Readopt = Arc<dyn Fn(AdoptedSocket) -> UpgradeToOwner + Send + Sync>;

impl ForwardedUpgrade {
    /// Carries `connection` in a response; `readopt`, if given, moves the socket to the object's
    /// next owner.
    pub fn new(connection: UpgradeToOwner, readopt: Option<Readopt>) -> Self {
        ForwardedUpgrade {
            connection: Arc::new(Mutex::new(Some(connection))),
            readopt,
        }
    }

    /// The connection, to the first taker.
    pub fn take(&self) -> Option<UpgradeToOwner> {
        self.connection
            .lock()
            .expect("forwarded upgrade lock")
            .take()
    }

    /// How to move the socket to the object's next owner.
    pub fn readopt(&self) -> Option<Readopt> {
        self.readopt.clone()
    }
}

impl std::fmt::Debug for ForwardedUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardedUpgrade")
    }
}

/// The header of a forwarded request that names its object: `{binding}/{id}`, the id in hex.
pub const FORWARDED_OBJECT_HEADER: &str = "x-dormouse-object";

/// The header of a forwarded request that carries the cluster's secret (`--cluster-secret`): a
/// node serves a forwarded request only with it.
pub const CLUSTER_SECRET_HEADER: &str = "x-dormouse-cluster-secret";

/// The header of a forwarded WebSocket upgrade that asks the owner to adopt a socket whose object
/// moved, rather than to run the object's `fetch`: the socket's state, as a relay message
/// (`dormouse_ws::relay`), in standard base64.
pub const ADOPT_SOCKET_HEADER: &str = "x-dormouse-adopt";

/// The header of a peer's answer (421) that says it does not own the object: the request was not
/// delivered and may be sent again.
pub const WRONG_OWNER_HEADER: &str = "x-dormouse-wrong-owner";
