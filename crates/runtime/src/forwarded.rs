//! What a node serves for its peers (cluster mode): requests they forwarded to objects it owns,
//! and sockets they relay, adopted by an object when it moved here from a node that died or
//! drained.

use std::sync::Arc;

use dormouse_holder::SocketRecord;
use dormouse_sdk::host::{NamespaceHost, SocketHost};
use dormouse_sdk::response::ResponseExt;
use dormouse_sdk::{Error, ErrorKind, ObjectId, Request, Response, WebSocket};
use http::{HeaderValue, StatusCode, header};

use crate::namespace::Namespace;
use crate::object::{Control, Envelope, Phase};
use crate::placement::{AdoptedSocket, WRONG_OWNER_HEADER};
use crate::routing::{self, Placed};
use crate::runtime::Runtime;

impl Runtime {
    /// Serves a request that a peer forwarded to the object `id` (64 hex digits) of `binding`:
    /// here, never forwarded again. If this node does not own the object (the peer's view was
    /// stale), the answer is 421 with [`WRONG_OWNER_HEADER`] and the object saw nothing.
    pub async fn fetch_forwarded(&self, binding: &str, id: &str, request: Request) -> Response {
        let fetched = async {
            let (namespace, id) = self.owned_here(binding, id).await?;
            let shared = self.shared.clone();
            Ok::<_, Refusal>(routing::fetch_here(shared, &namespace, &id, request).await?)
        };
        answer(fetched.await)
    }

    /// Adopts a socket a peer relays for the object `id` of `binding`, whose previous owner died
    /// or drained: the socket joins the object's hibernatable sockets with its tags and
    /// attachment, and the answer is a 101 carrying it, for the server to attach to the peer's
    /// connection. The object's next instance sees it in `get_websockets()`: an instance already
    /// running is dropped (its hibernatable sockets stay), as when its code is reloaded. 421 if
    /// this node does not own the object.
    pub async fn adopt_forwarded(
        &self,
        binding: &str,
        id: &str,
        socket: AdoptedSocket,
    ) -> Response {
        let adopted = async {
            let (namespace, id) = self.owned_here(binding, id).await?;
            Ok::<_, Refusal>(self.adopt(&namespace, &id, socket)?)
        };
        answer(adopted.await)
    }

    fn adopt(
        &self,
        namespace: &Arc<Namespace>,
        id: &ObjectId,
        socket: AdoptedSocket,
    ) -> dormouse_sdk::Result<Response> {
        let cell = self.shared.registry.get_or_create(namespace, id);
        let record = cell.sockets.new_socket();
        let tags: Vec<&str> = socket.tags.iter().map(String::as_str).collect();
        record.accept_hibernatable(&tags)?;
        if let Some(attachment) = socket.attachment {
            record.set_attachment(attachment)?;
        }
        // A cell retired between the lookup and the accept holds nothing: move the socket to the
        // object's cell as it is now.
        let mut cell = cell;
        while cell.phase() == Phase::Retired {
            cell = self.shared.registry.get_or_create(namespace, id);
            record
                .rebind(&cell.sockets)
                .map_err(|error| Error::new(ErrorKind::Internal, error.to_string()))?;
        }
        // An instance built before the socket arrived does not know it: the next event builds
        // one that finds it in `get_websockets()`, as after hibernation.
        if cell.phase() == Phase::Running {
            let (done, _) = tokio::sync::oneshot::channel();
            let refresh = Envelope::Control(Control::Refresh(done));
            let _ = cell.try_deliver(refresh, &namespace.config.limits);
        }
        let host: Arc<SocketRecord> = record;
        let mut response = Response::from_websocket(WebSocket::client_from_host(host))?;
        if let Some(protocol) = socket.protocol
            && let Ok(value) = HeaderValue::from_str(&protocol)
        {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        tracing::debug!(object = %id, "adopted a relayed socket");
        Ok(response)
    }

    /// The namespace and id of a forwarded request's object, if this node owns it (claiming it
    /// if nobody does); the 421 to answer otherwise.
    async fn owned_here(
        &self,
        binding: &str,
        id: &str,
    ) -> Result<(Arc<Namespace>, ObjectId), Refusal> {
        let namespace = self.shared.namespace(binding).cloned().ok_or_else(|| {
            Refusal::Error(Error::new(
                ErrorKind::Type,
                format!("no Durable Object binding named {binding:?}"),
            ))
        })?;
        let id = NamespaceHost::id_from_string(&*namespace, id).map_err(Refusal::Error)?;
        match routing::place(&self.shared, &namespace, &id).await {
            Ok(Placed::Here) => Ok((namespace, id)),
            Ok(Placed::Peer(peer, _)) => Err(Refusal::WrongOwner(peer)),
            Err(error) => Err(Refusal::Error(error)),
        }
    }
}

/// Why a forwarded request is not served here.
enum Refusal {
    /// Another node owns the object.
    WrongOwner(Arc<str>),
    /// The request itself is wrong, or the cluster cannot place the object.
    Error(Error),
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Error(error)
    }
}

fn answer(result: Result<Response, Refusal>) -> Response {
    match result {
        Ok(response) => response,
        Err(Refusal::Error(error)) => {
            dormouse_sdk::response::text(error.status(), error.to_string())
        }
        Err(Refusal::WrongOwner(peer)) => {
            let mut response = dormouse_sdk::response::text(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this node does not own the Durable Object; {peer} does"),
            );
            response.headers_mut().insert(
                WRONG_OWNER_HEADER,
                HeaderValue::from_str(&peer).unwrap_or(HeaderValue::from_static("unknown")),
            );
            response
        }
    }
}
