//! [`WorkerService`]: the Worker (the module's default export) as the server's `tower::Service`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use dormouse_sdk::{Request, Response};

use crate::engine::Engine;

/// Serves each request with the Worker's `fetch` on the engine's thread.
#[derive(Clone, Debug)]
pub struct WorkerService {
    engine: Engine,
}

impl WorkerService {
    /// The Worker of `engine`'s loaded code.
    pub fn new(engine: Engine) -> Self {
        WorkerService { engine }
    }
}

impl tower_service::Service<Request> for WorkerService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let engine = self.engine.clone();
        Box::pin(async move { Ok(engine.fetch(request).await) })
    }
}
