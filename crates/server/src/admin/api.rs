//! The inspector's JSON: the namespaces at a glance, the objects table (searched, sorted,
//! paged) and one object's sockets and storage.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use dormouse_runtime::{
    InspectLimits, ObjectDetail, ObjectState, ObjectStatus, Runtime, SqlValue, StorageView,
};
use dormouse_sdk::ObjectId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::value::show;

/// Rows of the objects table per page, at most: the page stays quick with 10,000 objects.
const MAX_PAGE_ROWS: usize = 500;

/// Sockets listed per object page, at most.
const MAX_SOCKET_ROWS: usize = 500;

pub(crate) fn state_name(state: ObjectState) -> &'static str {
    match state {
        ObjectState::Active => "active",
        ObjectState::Hibernated => "hibernated",
        ObjectState::Idle => "idle",
    }
}

pub(crate) fn status_json(o: &ObjectStatus) -> Value {
    json!({
        "binding": o.binding, "id": o.id, "name": o.name, "state": state_name(o.state),
        "hibernatable_sockets": o.hibernatable_sockets, "standard_sockets": o.standard_sockets,
        "queued_events": o.queued_events, "hibernation_blockers": o.hibernation_blockers,
        "last_event_ms": o.last_event_ms,
    })
}

/// The namespaces with their counts, as the live feed sends them.
pub(crate) fn summary(runtime: &Runtime) -> Value {
    let namespaces: Vec<Value> = runtime
        .namespace_summaries()
        .into_iter()
        .map(|n| {
            json!({
                "binding": n.binding, "active": n.active, "hibernated": n.hibernated,
                "websockets": n.websockets, "events": n.events, "wakes": n.wakes,
                "hibernations": n.hibernations, "resets": n.resets,
            })
        })
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    json!({ "namespaces": namespaces, "time_ms": now_ms })
}

pub(crate) async fn get_summary(State(runtime): State<Runtime>) -> Response {
    Json(summary(&runtime)).into_response()
}

/// The objects table's query: `q` matches a name or id; `sort` is a column.
#[derive(Debug, Deserialize)]
pub(crate) struct ObjectsQuery {
    #[serde(default)]
    q: String,
    binding: Option<String>,
    #[serde(default)]
    sort: Sort,
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Sort {
    #[default]
    LastEvent,
    Name,
    State,
    Sockets,
    Queued,
}

pub(crate) async fn get_objects(
    State(runtime): State<Runtime>,
    Query(query): Query<ObjectsQuery>,
) -> Response {
    let needle = query.q.to_lowercase();
    let mut objects: Vec<ObjectStatus> = runtime
        .objects()
        .into_iter()
        .filter(|o| query.binding.as_ref().is_none_or(|b| *b == o.binding))
        .filter(|o| {
            needle.is_empty()
                || o.id.contains(&needle)
                || o.name
                    .as_ref()
                    .is_some_and(|name| name.to_lowercase().contains(&needle))
        })
        .collect();
    match query.sort {
        Sort::LastEvent => objects.sort_by_key(|o| std::cmp::Reverse(o.last_event_ms)),
        Sort::Name => objects.sort_by(|a, b| label(a).cmp(label(b))),
        Sort::State => objects
            .sort_by(|a, b| (state_name(a.state), label(a)).cmp(&(state_name(b.state), label(b)))),
        Sort::Sockets => {
            objects.sort_by_key(|o| std::cmp::Reverse(o.hibernatable_sockets + o.standard_sockets))
        }
        Sort::Queued => objects.sort_by_key(|o| std::cmp::Reverse(o.queued_events)),
    }
    if query.reverse {
        objects.reverse();
    }
    let total = objects.len();
    let limit = query.limit.unwrap_or(100).min(MAX_PAGE_ROWS);
    let page: Vec<Value> = objects
        .iter()
        .skip(query.offset)
        .take(limit)
        .map(status_json)
        .collect();
    Json(json!({ "total": total, "offset": query.offset, "objects": page })).into_response()
}

/// What the objects table shows and sorts an object by: its name, or its id if it has none.
fn label(o: &ObjectStatus) -> &str {
    o.name.as_deref().unwrap_or(&o.id)
}

/// An object's page: which sockets, and where its KV listing starts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    kv_after: Option<String>,
    #[serde(default)]
    sockets_offset: usize,
}

pub(crate) async fn get_object(
    State(runtime): State<Runtime>,
    Target { binding, id }: Target,
    Query(query): Query<DetailQuery>,
) -> Response {
    let limits = InspectLimits {
        kv_start_after: query.kv_after,
        ..InspectLimits::default()
    };
    let sockets = query.sockets_offset..query.sockets_offset.saturating_add(MAX_SOCKET_ROWS);
    match runtime.inspect(&binding, &id, limits, sockets).await {
        Ok(detail) => Json(detail_json(&detail)).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

fn detail_json(detail: &ObjectDetail) -> Value {
    let sockets: Vec<Value> = detail
        .sockets
        .iter()
        .map(|s| {
            json!({
                "id": s.id.to_string(), "hibernatable": s.hibernatable, "tags": s.tags,
                "attachment": s.attachment.as_deref().map(show),
                "auto_response_ms": s.auto_response_ms, "waiting_bytes": s.waiting_bytes,
                "ready_state": s.ready_state, "protocol": s.protocol,
            })
        })
        .collect();
    json!({
        "status": status_json(&detail.status),
        "socket_count": detail.socket_count,
        "sockets": sockets,
        "storage": detail.storage.as_ref().map(storage_json),
    })
}

fn storage_json(storage: &StorageView) -> Value {
    let kv: Vec<Value> = storage
        .kv
        .iter()
        .map(|(key, value)| json!({ "key": key, "value": show(value) }))
        .collect();
    let tables: Vec<Value> = storage
        .tables
        .iter()
        .map(|t| {
            let rows: Vec<Vec<Value>> = t
                .rows
                .iter()
                .map(|row| row.iter().map(cell_json).collect())
                .collect();
            json!({ "name": t.name, "columns": t.columns, "row_count": t.row_count, "rows": rows })
        })
        .collect();
    json!({
        "size_bytes": storage.size_bytes, "alarm_ms": storage.alarm_ms,
        "kv_count": storage.kv_count, "kv": kv, "tables": tables,
    })
}

fn cell_json(value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => json!(i),
        SqlValue::Real(r) => json!(r),
        SqlValue::Text(text) => json!(text),
        SqlValue::Blob(bytes) => json!(show(bytes).text),
    }
}

/// The object a route's path names: `/{binding}/{id}`, the id as 64 hex digits or `name:<name>`.
pub(crate) struct Target {
    pub(crate) binding: String,
    pub(crate) id: ObjectId,
}

impl FromRequestParts<Runtime> for Target {
    type Rejection = (StatusCode, String);

    async fn from_request_parts(
        parts: &mut Parts,
        runtime: &Runtime,
    ) -> Result<Self, Self::Rejection> {
        let Path((binding, id)) = Path::<(String, String)>::from_request_parts(parts, runtime)
            .await
            .map_err(|rejection| (StatusCode::BAD_REQUEST, rejection.body_text()))?;
        let namespace = runtime
            .env()
            .durable_object(&binding)
            .map_err(|error| (StatusCode::NOT_FOUND, error.to_string()))?;
        let id = match id.strip_prefix("name:") {
            Some(name) => namespace.id_from_name(name),
            None => namespace.id_from_string(&id),
        }
        .map_err(|error| (StatusCode::BAD_REQUEST, error.to_string()))?;
        Ok(Target { binding, id })
    }
}
