//! The admin endpoint: metrics, object diagnostics, forced hibernation.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dormouse_runtime::{ObjectState, Runtime, RuntimeError};
use serde_json::json;

use crate::per_address::{self, AddressLimit};

/// The admin routes:
/// - `GET /metrics`: Prometheus text.
/// - `GET /healthz`: `ok`.
/// - `GET /objects`: every known object as JSON, with what keeps it from hibernating.
/// - `POST /objects/hibernate`: hibernates every object that can.
/// - `POST /objects/{binding}/{id}/hibernate`: hibernates one object (`id`: 64 hex digits, or
///   `name:<name>`); 409 with the reasons if it cannot.
pub(crate) fn router(runtime: Runtime, address_limit: Option<Arc<AddressLimit>>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move |State(runtime): State<Runtime>| metrics(runtime, address_limit.clone())),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/objects", get(objects))
        .route("/objects/hibernate", post(hibernate_all))
        .route("/objects/{binding}/{id}/hibernate", post(hibernate_one))
        .with_state(runtime)
}

async fn metrics(runtime: Runtime, address_limit: Option<Arc<AddressLimit>>) -> Response {
    let mut text = runtime.metrics();
    text.push_str(&per_address::render_metrics(address_limit.as_deref()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn objects(State(runtime): State<Runtime>) -> Response {
    let objects: Vec<_> = runtime
        .objects()
        .into_iter()
        .map(|o| {
            let state = match o.state {
                ObjectState::Active => "active",
                ObjectState::Hibernated => "hibernated",
                ObjectState::Idle => "idle",
            };
            json!({
                "binding": o.binding, "id": o.id, "name": o.name, "state": state,
                "hibernatable_sockets": o.hibernatable_sockets, "standard_sockets": o.standard_sockets,
                "queued_events": o.queued_events, "hibernation_blockers": o.hibernation_blockers,
            })
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

async fn hibernate_one(
    State(runtime): State<Runtime>,
    Path((binding, id)): Path<(String, String)>,
) -> Response {
    let namespace = match runtime.env().durable_object(&binding) {
        Ok(namespace) => namespace,
        Err(error) => return (StatusCode::NOT_FOUND, error.to_string()).into_response(),
    };
    let id = match id.strip_prefix("name:") {
        Some(name) => namespace.id_from_name(name),
        None => namespace.id_from_string(&id),
    };
    let id = match id {
        Ok(id) => id,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    match runtime.hibernate_now(&binding, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error @ RuntimeError::NotHibernatable(_)) => {
            (StatusCode::CONFLICT, error.to_string()).into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
