//! A storage probe: runs a JSON list of storage operations and answers their results, over HTTP
//! (`POST /store/{name}`) or over its WebSocket (`GET /store/{name}`, one list per message).

use std::time::Duration;

use dormouse::axum::Router;
use dormouse::axum::extract::{Request as AxumRequest, State as Extract};
use dormouse::http::StatusCode;
use dormouse::prelude::*;
use dormouse::{AlarmInfo, ListOptions, SqlStorageValue};
use serde_json::{Value, json};

use super::{hold, record};

pub const STORE: &str = "STORE";

pub struct StoreProbe {
    state: State,
    name: String,
}

impl std::fmt::Debug for StoreProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProbe")
            .field("name", &self.name)
            .finish()
    }
}

impl DurableObject for StoreProbe {
    fn new(state: State, _env: Env) -> Self {
        let name = state.id().name().unwrap_or("unnamed").to_owned();
        // Constructors may read storage synchronously.
        let boots: u64 = state
            .storage()
            .and_then(|s| s.get("boots"))
            .ok()
            .flatten()
            .unwrap_or(0);
        record(&name, format!("new boots={boots}"));
        StoreProbe { state, name }
    }

    async fn fetch(&mut self, req: Request) -> Result<Response> {
        if req.headers().get("upgrade").is_some() {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server)?;
            return Response::from_websocket(pair.client);
        }
        if let Some(gate) = req.query_param("hold") {
            record(&self.name, "held".to_owned());
            hold(&gate).await;
        }
        let body = dormouse::axum::body::to_bytes(req.into_body(), 8 << 20)
            .await
            .map_err(|e| Error::message(e.to_string()))?;
        let ops: Value = serde_json::from_slice(&body)?;
        let results = self.run_all(&ops)?;
        Ok(response::text(StatusCode::OK, results.to_string()))
    }

    async fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let ops: Value = serde_json::from_str(&text)?;
        let results = self.run_all(&ops)?;
        ws.send_with_str(results.to_string())
    }

    async fn alarm(&mut self, info: AlarmInfo) -> Result<()> {
        let storage = self.state.storage()?;
        let during = storage.get_alarm()?;
        let runs: u64 = storage.get("alarm_runs")?.unwrap_or(0) + 1;
        storage.put("alarm_runs", runs)?;
        record(
            &self.name,
            format!("alarm:{}:{}:{during:?}", info.retry_count, info.is_retry),
        );
        let mode: Option<String> = storage.get("alarm_mode")?;
        match mode.as_deref() {
            Some("fail") => Err(Error::message("alarm fails on request")),
            Some("panic") => panic!("alarm panics on request"),
            Some(mode) if mode.starts_with("fail_times:") => {
                let times: u64 = mode["fail_times:".len()..].parse().unwrap();
                if runs <= times {
                    Err(Error::message("failing for now"))
                } else {
                    Ok(())
                }
            }
            Some(mode) if mode.starts_with("again_in:") => {
                storage.put("alarm_mode", "done")?;
                storage.set_alarm(Duration::from_millis(
                    mode["again_in:".len()..].parse().unwrap(),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl StoreProbe {
    fn run_all(&self, ops: &Value) -> Result<Value> {
        let storage = self.state.storage()?;
        let mut results = Vec::new();
        for op in ops.as_array().into_iter().flatten() {
            if op["op"] == "fail_request" {
                // The handler fails after its writes: they are committed all the same.
                return Err(Error::message("request fails on request"));
            }
            results.push(match run(&storage, op) {
                Ok(value) => json!({ "ok": value }),
                Err(error) => {
                    json!({ "error": error.text(), "kind": format!("{:?}", error.kind()) })
                }
            });
        }
        Ok(Value::Array(results))
    }
}

fn text(op: &Value, field: &str) -> String {
    op[field].as_str().unwrap_or_default().to_owned()
}

fn binding(value: &Value) -> SqlStorageValue {
    match value {
        Value::Null => SqlStorageValue::Null,
        Value::Bool(b) => SqlStorageValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => SqlStorageValue::Integer(n.as_i64().unwrap()),
        Value::Number(n) => SqlStorageValue::Float(n.as_f64().unwrap()),
        Value::String(s) => SqlStorageValue::String(s.clone()),
        Value::Object(o) => {
            SqlStorageValue::Blob(serde_json::from_value(o["blob"].clone()).unwrap())
        }
        Value::Array(_) => panic!("arrays are not bindings"),
    }
}

fn sql_json(value: SqlStorageValue) -> Value {
    match value {
        SqlStorageValue::Null => Value::Null,
        SqlStorageValue::Boolean(b) => json!(b),
        SqlStorageValue::Integer(i) => json!(i),
        SqlStorageValue::Float(f) => json!(f),
        SqlStorageValue::String(s) => json!(s),
        SqlStorageValue::Blob(b) => json!({ "blob": b }),
    }
}

fn run(storage: &Storage, op: &Value) -> Result<Value> {
    let keys = || -> Vec<String> { serde_json::from_value(op["keys"].clone()).unwrap_or_default() };
    Ok(match op["op"].as_str().unwrap_or_default() {
        "put" => {
            storage.put(&text(op, "key"), op["value"].clone())?;
            Value::Null
        }
        "get" => storage
            .get::<Value>(&text(op, "key"))?
            .unwrap_or(Value::Null),
        "get_multiple" => {
            let keys = keys();
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            json!(storage.get_multiple::<Value>(&refs)?)
        }
        "put_multiple" => {
            let entries: Vec<(String, Value)> = op["entries"]
                .as_object()
                .unwrap()
                .clone()
                .into_iter()
                .collect();
            storage.put_multiple(entries)?;
            Value::Null
        }
        "delete" => json!(storage.delete(&text(op, "key"))?),
        "delete_multiple" => {
            let keys = keys();
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            json!(storage.delete_multiple(&refs)?)
        }
        "list" => {
            let mut options = ListOptions::new().reverse(op["reverse"].as_bool().unwrap_or(false));
            for (field, set) in [
                (
                    "start",
                    ListOptions::start as fn(ListOptions, String) -> ListOptions,
                ),
                ("start_after", ListOptions::start_after),
                ("end", ListOptions::end),
                ("prefix", ListOptions::prefix),
            ] {
                if let Some(value) = op[field].as_str() {
                    options = set(options, value.to_owned());
                }
            }
            if let Some(limit) = op["limit"].as_u64() {
                options = options.limit(limit as usize);
            }
            json!(storage.list_with_options::<Value>(options)?)
        }
        "delete_all" => {
            storage.delete_all()?;
            Value::Null
        }
        "sql" => {
            let bindings: Vec<SqlStorageValue> = op["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(binding)
                .collect();
            let mut cursor = storage.sql().exec(&text(op, "query"), bindings)?;
            let columns = cursor.column_names().to_vec();
            let (read, written) = (cursor.rows_read(), cursor.rows_written());
            let rows: Vec<Vec<Value>> = cursor
                .raw()
                .into_iter()
                .map(|row| row.into_iter().map(sql_json).collect())
                .collect();
            json!({ "columns": columns, "rows": rows, "rows_read": read, "rows_written": written })
        }
        "sql_one" => storage
            .sql()
            .exec(&text(op, "query"), None)?
            .one::<Value>()?,
        "size" => json!(storage.sql().database_size()?),
        "txn" => {
            let fail = op["fail"].as_bool().unwrap_or(false);
            let nested = op["ops"].clone();
            let outcome = storage.transaction_sync(|inner| {
                let mut results = Vec::new();
                for op in nested.as_array().into_iter().flatten() {
                    results.push(run(inner, op)?);
                }
                if fail {
                    Err(Error::message("rolled back on request"))
                } else {
                    Ok(results)
                }
            });
            json!(outcome?)
        }
        "set_alarm" => {
            match (op["in_ms"].as_u64(), op["at_ms"].as_i64()) {
                (Some(delay), _) => storage.set_alarm(Duration::from_millis(delay))?,
                (_, Some(at)) => storage.set_alarm(at)?,
                _ => unreachable!("set_alarm needs in_ms or at_ms"),
            }
            Value::Null
        }
        "get_alarm" => json!(storage.get_alarm()?),
        "delete_alarm" => {
            storage.delete_alarm()?;
            Value::Null
        }
        "sync" => {
            storage.sync()?;
            Value::Null
        }
        "panic" => panic!("storage probe panics on request"),
        "fail" => return Err(Error::message("operation fails on request")),
        other => return Err(Error::message(format!("unknown op {other}"))),
    })
}

/// The storage probe application: `/store/{name}`.
pub fn app() -> App {
    App::new()
        .durable_object::<StoreProbe>(STORE)
        .worker(|env| Router::new().fallback(route).with_state(env))
}

async fn route(Extract(env): Extract<Env>, req: AxumRequest) -> Result<Response> {
    let Some(rest) = req.uri().path().strip_prefix("/store/") else {
        return Ok(response::text(StatusCode::NOT_FOUND, "no such route"));
    };
    let name = rest.split('/').next().unwrap_or_default().to_owned();
    match env
        .durable_object(STORE)?
        .get_by_name(&name)?
        .fetch(req)
        .await
    {
        Ok(reply) => Ok(reply),
        Err(error) => Ok(response::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{:?}: {error}", error.kind()),
        )),
    }
}
