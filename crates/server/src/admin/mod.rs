//! The admin endpoint: the inspector page, metrics, object diagnostics and actions.
//!
//! - `auth`: who may use it (loopback, the token, actions from the page itself only).
//! - `api`: the inspector's JSON; `live`: its feeds (counts, an object's log); `value`: stored
//!   bytes made readable; `page`: the page itself.

mod api;
pub(crate) mod auth;
mod live;
mod page;
mod value;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dormouse_runtime::{Runtime, RuntimeError};
use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use api::Target;
pub(crate) use auth::Access;

use crate::per_address::{AddressLimit, RefusedUpgrades};

/// The admin routes:
/// - `GET /`: the inspector page (namespaces, objects, an object's sockets and storage).
/// - `GET /metrics`: the runtime's metrics and the server's, as OpenMetrics text.
/// - `GET /healthz`: `ok`.
/// - `GET /objects`: every known object as JSON, with what keeps it from hibernating.
/// - `POST /objects/hibernate`: hibernates every object that can.
/// - `POST /objects/{binding}/{id}/hibernate`: hibernates one object (`id`: 64 hex digits, or
///   `name:<name>`); 409 with the reasons if it cannot.
/// - `POST /objects/{binding}/{id}/reset`: resets one object (its sockets close with 1011).
/// - `POST /objects/{binding}/{id}/alarm/delete`: deletes its alarm.
/// - `GET /api/summary`, `GET /api/objects`, `GET /api/objects/{binding}/{id}`: the inspector's
///   JSON; `GET /api/live`: its Server-Sent Events of counts;
///   `GET /api/objects/{binding}/{id}/log`: an object's live log, as Server-Sent Events.
///
/// Every route passes [`auth::check`] first. Server-Sent Events end when `stop` is cancelled.
pub(crate) fn router(
    runtime: Runtime,
    address_limit: Option<Arc<AddressLimit>>,
    access: Access,
    collectors: Vec<Arc<dyn Collector>>,
    stop: CancellationToken,
) -> Router {
    let mut metrics_registry = Registry::default();
    metrics_registry.register_collector(Box::new(runtime.metrics_collector()));
    metrics_registry.register_collector(Box::new(RefusedUpgrades(address_limit)));
    for collector in collectors {
        metrics_registry.register_collector(Box::new(Embedded(collector)));
    }
    let registry = Arc::new(metrics_registry);
    Router::new()
        .route("/", get(page::index))
        .route("/metrics", get(move || metrics(registry.clone())))
        .route("/healthz", get(|| async { "ok" }))
        .route("/objects", get(objects))
        .route("/objects/hibernate", post(hibernate_all))
        .route("/objects/{binding}/{id}/hibernate", post(hibernate_one))
        .route("/objects/{binding}/{id}/reset", post(reset_one))
        .route("/objects/{binding}/{id}/alarm/delete", post(delete_alarm))
        .route("/api/summary", get(api::get_summary))
        .route("/api/objects", get(api::get_objects))
        .route("/api/objects/{binding}/{id}", get(api::get_object))
        .route(
            "/api/live",
            get({
                let stop = stop.clone();
                move |State(runtime): State<Runtime>| live::feed(runtime, stop.clone())
            }),
        )
        .route(
            "/api/objects/{binding}/{id}/log",
            get(move |State(runtime): State<Runtime>, target: Target| {
                object_log(runtime, target, stop.clone())
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(access, auth::check))
        .with_state(runtime)
}

/// The OpenMetrics content type, which Prometheus asks for first and reads.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(registry: Arc<Registry>) -> Response {
    let mut text = String::with_capacity(8192);
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn object_log(runtime: Runtime, target: Target, stop: CancellationToken) -> Response {
    match runtime.watch_events(&target.binding, &target.id) {
        Ok(watch) => live::object_log(watch, stop).into_response(),
        Err(error) => (StatusCode::NOT_FOUND, error.to_string()).into_response(),
    }
}

async fn objects(State(runtime): State<Runtime>) -> Response {
    let owner = runtime.node();
    let objects: Vec<_> = runtime
        .objects()
        .iter()
        .map(|object| {
            let mut json = api::status_json(object);
            // In a cluster, the objects a node holds are the ones it owns.
            if let Some(owner) = owner {
                json["owner"] = owner.into();
            }
            json
        })
        .collect();
    axum::Json(objects).into_response()
}

async fn hibernate_all(State(runtime): State<Runtime>) -> Response {
    let report = runtime.hibernate_all().await;
    let refused: Vec<_> = report
        .refused
        .iter()
        .map(|(binding, id, reason)| json!({"binding": binding, "id": id, "reason": reason}))
        .collect();
    axum::Json(json!({"hibernated": report.hibernated, "refused": refused})).into_response()
}

async fn hibernate_one(State(runtime): State<Runtime>, target: Target) -> Response {
    answer(runtime.hibernate_now(&target.binding, &target.id).await)
}

async fn reset_one(State(runtime): State<Runtime>, target: Target) -> Response {
    answer(runtime.reset_object(&target.binding, &target.id).await)
}

async fn delete_alarm(State(runtime): State<Runtime>, target: Target) -> Response {
    answer(runtime.delete_alarm(&target.binding, &target.id).await)
}

/// An action's outcome: 204 when done, 409 with the reasons when the object cannot do it now.
fn answer(outcome: Result<(), RuntimeError>) -> Response {
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error @ RuntimeError::NotHibernatable(_)) => {
            (StatusCode::CONFLICT, error.to_string()).into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// A collector the embedder registered (a cluster node's figures), shared with it.
#[derive(Debug)]
struct Embedded(Arc<dyn Collector>);

impl Collector for Embedded {
    fn encode(
        &self,
        encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        self.0.encode(encoder)
    }
}
