//! The environment: bindings to Durable Object namespaces, stubs to reach objects.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::host::{EnvHost, NamespaceHost};
use crate::{Body, ObjectId, Request, Response};

/// The bindings an application was configured with. Cheap to clone; the Worker (router) and
/// every object get one.
#[derive(Clone)]
pub struct Env {
    host: Arc<dyn EnvHost>,
}

impl Env {
    /// Wraps a runtime's environment; for runtimes.
    #[doc(hidden)]
    pub fn from_host(host: Arc<dyn EnvHost>) -> Self {
        Env { host }
    }

    /// The Durable Object namespace bound as `binding` (for example `"CHAT_ROOM"`).
    pub fn durable_object(&self, binding: &str) -> Result<ObjectNamespace> {
        self.host
            .namespace(binding)
            .map(|host| ObjectNamespace { host })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Type,
                    format!("no Durable Object binding named {binding:?}"),
                )
            })
    }

    /// The runtime's side of the namespace bound as `binding`; for guests written in another
    /// language.
    #[doc(hidden)]
    pub fn namespace_host(&self, binding: &str) -> Option<Arc<dyn NamespaceHost>> {
        self.host.namespace(binding)
    }

    /// A plain-text variable from the configuration.
    pub fn var(&self, name: &str) -> Option<String> {
        self.host.var(name)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

/// One Durable Object class, as bound in the environment.
#[derive(Clone)]
pub struct ObjectNamespace {
    host: Arc<dyn NamespaceHost>,
}

impl ObjectNamespace {
    /// The deterministic id of the object called `name`.
    pub fn id_from_name(&self, name: &str) -> Result<ObjectId> {
        Ok(self.host.id_from_name(name))
    }

    /// A new random id, which will never be generated again.
    pub fn unique_id(&self) -> Result<ObjectId> {
        Ok(self.host.unique_id())
    }

    /// Parses an id from its 64 hex digits; fails for malformed ids and ids of other namespaces.
    pub fn id_from_string(&self, hex: &str) -> Result<ObjectId> {
        self.host.id_from_string(hex)
    }

    /// A stub for the object `id`. The object is created (or woken) by the first call, not here.
    pub fn get(&self, id: ObjectId) -> Result<Stub> {
        Ok(Stub {
            host: self.host.clone(),
            id,
        })
    }

    /// `get(id_from_name(name))`.
    pub fn get_by_name(&self, name: &str) -> Result<Stub> {
        self.get(self.host.id_from_name(name))
    }

    /// The binding name.
    pub fn binding(&self) -> &str {
        self.host.binding()
    }
}

impl fmt::Debug for ObjectNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectNamespace")
            .field("binding", &self.host.binding())
            .finish()
    }
}

/// A client for one object.
#[derive(Clone)]
pub struct Stub {
    host: Arc<dyn NamespaceHost>,
    id: ObjectId,
}

impl Stub {
    /// The object's id.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }

    /// The object's name, when the stub was made from one.
    pub fn name(&self) -> Option<&str> {
        self.id.name()
    }

    /// Sends an HTTP request to the object and returns its response. A WebSocket upgrade request
    /// may be forwarded as is: the object's 101 response carries the socket back to the client.
    ///
    /// Fails with [`ErrorKind::Overloaded`] when the object's mailbox is full, and with
    /// [`ErrorKind::Reset`] when the object was reset while handling the request.
    pub async fn fetch(&self, request: Request) -> Result<Response> {
        self.host.fetch(self.id.clone(), request).await
    }

    /// `fetch` of a GET request to `url`.
    pub async fn fetch_with_str(&self, url: &str) -> Result<Response> {
        let request = http::Request::get(url)
            .body(Body::empty())
            .map_err(|e| Error::new(ErrorKind::Type, format!("invalid URL {url:?}: {e}")))?;
        self.fetch(request).await
    }
}

impl fmt::Debug for Stub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stub")
            .field("binding", &self.host.binding())
            .field("id", &self.id)
            .finish()
    }
}
