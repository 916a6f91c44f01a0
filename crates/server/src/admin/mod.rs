//! The admin endpoint: the inspector page, metrics, object diagnostics and actions.
//!
//! - `auth`: who may use it (loopback, the token, actions from the page itself only).
//! - `api`: the inspector's JSON; `live`: its feed of counts; `value`: stored bytes made
//!   readable; `page`: the page itself.

mod api;
mod auth;
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
use serde_json::json;
use tokio_util::sync::CancellationToken;

use api::Target;
pub(crate) use auth::Access;

use crate::per_address::{self, AddressLimit};

/// The admin routes:
/// - `GET /`: the inspector page (namespaces, objects, an object's sockets and storage).
/// - `GET /metrics`: Prometheus text.
/// - `GET /healthz`: `ok`.
/// - `GET /objects`: every known object as JSON, with what keeps it from hibernating.
/// - `POST /objects/hibernate`: hibernates every object that can.
/// - `POST /objects/{binding}/{id}/hibernate`: hibernates one object (`id`: 64 hex digits, or
///   `name:<name>`); 409 with the reasons if it cannot.
/// - `POST /objects/{binding}/{id}/reset`: resets one object (its sockets close with 1011).
/// - `POST /objects/{binding}/{id}/alarm/delete`: deletes its alarm.
/// - `GET /api/summary`, `GET /api/objects`, `GET /api/objects/{binding}/{id}`: the inspector's
///   JSON; `GET /api/live`: its Server-Sent Events.
///
/// Every route passes [`auth::check`] first. Server-Sent Events end when `stop` is cancelled.
pub(crate) fn router(
    runtime: Runtime,
    address_limit: Option<Arc<AddressLimit>>,
    access: Access,
    stop: CancellationToken,
) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route(
            "/metrics",
            get(move |State(runtime): State<Runtime>| metrics(runtime, address_limit.clone())),
        )
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
            get(move |State(runtime): State<Runtime>| live::feed(runtime, stop.clone())),
        )
        .route_layer(axum::middleware::from_fn_with_state(access, auth::check))
        .with_state(runtime)
}

async fn metrics(runtime: Runtime, address_limit: Option<Arc<AddressLimit>>) -> Response {
    let mut text = runtime.metrics();
    text.push_str(&per_address::render_metrics(address_limit.as_deref()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn objects(State(runtime): State<Runtime>) -> Response {
    let objects: Vec<_> = runtime.objects().iter().map(api::status_json).collect();
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
