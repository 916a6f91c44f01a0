//! The natives behind `ctx` (DurableObjectState) and `ctx.storage`: each takes the instance's
//! handle and works through the runtime's object and storage hosts.

use std::sync::Arc;
use std::time::Duration;

use dormouse_sdk::host::{ObjectHost, StorageHost};
use dormouse_sdk::{ListOptions, SqlStorageValue, WebSocketRequestResponsePair};
use rquickjs::class::Trace;
use rquickjs::function::Opt;
use rquickjs::prelude::List;
use rquickjs::{Array, Class, Ctx, Function, JsLifetime, Object, Value};

use super::sockets::{SocketHandle, js_key};
use super::{bytes, errors};
use crate::engine::state::engine;

/// An instance, as its `ctx` holds it: the engine's id of the instance.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeState")]
pub(crate) struct StateHandle {
    #[qjs(skip_trace)]
    id: u64,
}

impl StateHandle {
    pub(crate) fn new(id: u64) -> Self {
        StateHandle { id }
    }
}

type Handle<'js> = Class<'js, StateHandle>;

/// The runtime's host of the instance behind `handle`.
fn host(ctx: &Ctx<'_>, handle: &Handle<'_>) -> rquickjs::Result<Arc<dyn ObjectHost>> {
    let id = handle.borrow().id;
    engine()
        .and_then(|engine| engine.with_instance(id, |i| i.host.clone()))
        .ok_or_else(|| {
            errors::plain_error(
                ctx,
                "this Durable Object instance is gone (it was reset or hibernated)",
            )
        })
}

fn storage(ctx: &Ctx<'_>, handle: &Handle<'_>) -> rquickjs::Result<Arc<dyn StorageHost>> {
    let host = host(ctx, handle)?;
    let storage = host.storage().map_err(|e| errors::throw(ctx, &e))?;
    Ok(storage.host().clone())
}

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let f = super::registrar(native);
    f("stateId", Function::new(ctx.clone(), state_id))?;
    f("stateAccept", Function::new(ctx.clone(), state_accept))?;
    f("stateSockets", Function::new(ctx.clone(), state_sockets))?;
    f(
        "stateSocketHandles",
        Function::new(ctx.clone(), state_socket_handles),
    )?;
    f(
        "stateSocketsChanges",
        Function::new(ctx.clone(), state_sockets_changes),
    )?;
    f(
        "stateSetAutoResponse",
        Function::new(ctx.clone(), state_set_auto_response),
    )?;
    f(
        "stateAutoResponse",
        Function::new(ctx.clone(), state_auto_response),
    )?;
    f(
        "stateSetEventTimeout",
        Function::new(ctx.clone(), state_set_event_timeout),
    )?;
    f(
        "stateEventTimeout",
        Function::new(ctx.clone(), state_event_timeout),
    )?;
    f(
        "stateKeepAwake",
        Function::new(ctx.clone(), state_keep_awake),
    )?;
    f("stateGate", Function::new(ctx.clone(), state_gate))?;
    f("stateAbort", Function::new(ctx.clone(), state_abort))?;
    f("kvGet", Function::new(ctx.clone(), kv_get))?;
    f("kvPut", Function::new(ctx.clone(), kv_put))?;
    f("kvDelete", Function::new(ctx.clone(), kv_delete))?;
    f("kvList", Function::new(ctx.clone(), kv_list))?;
    f(
        "storageDeleteAll",
        Function::new(ctx.clone(), storage_delete_all),
    )?;
    f(
        "storageTransactionSync",
        Function::new(ctx.clone(), storage_transaction_sync),
    )?;
    f("storageApply", Function::new(ctx.clone(), storage_apply))?;
    f("storageSync", Function::new(ctx.clone(), storage_sync))?;
    f("sqlExec", Function::new(ctx.clone(), sql_exec))?;
    f(
        "sqlDatabaseSize",
        Function::new(ctx.clone(), sql_database_size),
    )?;
    f("alarmGet", Function::new(ctx.clone(), alarm_get))?;
    f("alarmSet", Function::new(ctx.clone(), alarm_set))?;
    Ok(())
}

// ---------------------------------------------------------------------- ctx

fn state_id<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
) -> rquickjs::Result<List<(String, Option<String>)>> {
    let id = host(&ctx, &handle)?.id();
    Ok(List((id.to_string(), id.name().map(str::to_owned))))
}

fn state_accept<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    socket: Class<'js, SocketHandle>,
    tags: Vec<String>,
) -> rquickjs::Result<()> {
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let ws = socket.borrow().ws.clone();
    host(&ctx, &handle)?
        .accept_websocket(&ws, &tags)
        .map_err(|e| errors::throw(&ctx, &e))
}

/// The keys ([`js_key`]) of the instance's hibernatable sockets (all, or with `tag`).
fn state_sockets<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    tag: Option<String>,
) -> rquickjs::Result<Vec<f64>> {
    Ok(host(&ctx, &handle)?
        .websockets(tag.as_deref())
        .iter()
        .map(|ws| js_key(ws.id()))
        .collect())
}

/// A number that changes whenever a socket joins or leaves the instance's sockets.
fn state_sockets_changes<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<f64> {
    Ok(host(&ctx, &handle)?.websockets_changes() as f64)
}

/// Handles on the instance's hibernatable sockets (all, or with `tag`), in the order of
/// [`state_sockets`]: for wrapping them again after a wake, in one pass.
fn state_socket_handles<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    tag: Option<String>,
) -> rquickjs::Result<Vec<Class<'js, SocketHandle>>> {
    host(&ctx, &handle)?
        .websockets(tag.as_deref())
        .into_iter()
        .map(|ws| Class::instance(ctx.clone(), SocketHandle::new(ws)))
        .collect()
}

fn state_set_auto_response<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    request: Option<String>,
    response: Option<String>,
) -> rquickjs::Result<()> {
    let pairs = match (request, response) {
        (Some(request), Some(response)) => {
            vec![WebSocketRequestResponsePair::new(request, response)]
        }
        _ => Vec::new(),
    };
    host(&ctx, &handle)?
        .set_auto_responses(pairs)
        .map_err(|e| errors::throw(&ctx, &e))
}

fn state_auto_response<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
) -> rquickjs::Result<Option<List<(String, String)>>> {
    Ok(host(&ctx, &handle)?
        .auto_responses()
        .into_iter()
        .find(|pair| !pair.is_binary())
        .map(|pair| List((pair.request(), pair.response()))))
}

fn state_set_event_timeout<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    ms: f64,
) -> rquickjs::Result<()> {
    if ms.is_nan() || ms < 0.0 {
        return Err(errors::type_error(
            &ctx,
            "The event timeout must be a non-negative number of milliseconds.",
        ));
    }
    let timeout = (ms > 0.0).then(|| Duration::from_millis(ms as u64));
    host(&ctx, &handle)?
        .set_event_timeout(timeout)
        .map_err(|e| errors::throw(&ctx, &e))
}

fn state_event_timeout<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<Option<f64>> {
    Ok(host(&ctx, &handle)?
        .event_timeout()
        .map(|t| t.as_millis() as f64))
}

fn state_keep_awake<'js>(handle: Handle<'js>, delta: i32) {
    let id = handle.borrow().id;
    if let Some(engine) = engine() {
        engine.keep_awake(id, delta);
    }
}

/// `blockConcurrencyWhile` opens (+1) or closes (-1): while the count is positive the instance
/// takes no other events.
fn state_gate<'js>(handle: Handle<'js>, delta: i32) {
    let id = handle.borrow().id;
    if let Some(engine) = engine() {
        engine.with_instance(id, |instance| {
            instance.gate = if delta > 0 {
                instance.gate + 1
            } else {
                instance.gate.saturating_sub(1)
            };
        });
        engine.wake(id);
    }
}

/// Breaks the instance: the runtime resets the object when the running event ends.
fn state_abort<'js>(handle: Handle<'js>, reason: String) {
    let id = handle.borrow().id;
    if let Some(engine) = engine() {
        engine.break_instance(id, reason);
    }
}

// ---------------------------------------------------------------------- KV

fn entries_to_js<'js>(
    ctx: &Ctx<'js>,
    entries: Vec<(String, Vec<u8>)>,
) -> rquickjs::Result<Array<'js>> {
    let out = Array::new(ctx.clone())?;
    for (index, (key, value)) in entries.into_iter().enumerate() {
        let pair = Array::new(ctx.clone())?;
        pair.set(0, key)?;
        pair.set(1, bytes::uint8_array(ctx, &value)?)?;
        out.set(index, pair)?;
    }
    Ok(out)
}

fn kv_get<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    keys: Vec<String>,
) -> rquickjs::Result<Array<'js>> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found = storage(&ctx, &handle)?
        .get(&keys)
        .map_err(|e| errors::throw(&ctx, &e))?;
    entries_to_js(&ctx, found)
}

/// `[[key, bytes], …]` from JavaScript.
fn entries_from_js<'js>(
    ctx: &Ctx<'js>,
    entries: Array<'js>,
) -> rquickjs::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries.iter::<Array<'js>>() {
        let entry = entry?;
        let key: String = entry.get(0)?;
        let value: Value<'js> = entry.get(1)?;
        let value = bytes::copy(&value)
            .ok_or_else(|| errors::type_error(ctx, "expected serialized bytes"))?;
        out.push((key, value));
    }
    Ok(out)
}

fn kv_put<'js>(ctx: Ctx<'js>, handle: Handle<'js>, entries: Array<'js>) -> rquickjs::Result<()> {
    let entries = entries_from_js(&ctx, entries)?;
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    storage(&ctx, &handle)?
        .put(&borrowed)
        .map_err(|e| errors::throw(&ctx, &e))
}

fn kv_delete<'js>(ctx: Ctx<'js>, handle: Handle<'js>, keys: Vec<String>) -> rquickjs::Result<f64> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    storage(&ctx, &handle)?
        .delete(&keys)
        .map(|n| n as f64)
        .map_err(|e| errors::throw(&ctx, &e))
}

/// `options` is `[start, startAfter, end, prefix, reverse, limit]` (the prelude checked them).
fn kv_list<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    options: Array<'js>,
) -> rquickjs::Result<Array<'js>> {
    let limit: Option<f64> = options.get(5)?;
    let options = ListOptions {
        start: options.get(0)?,
        start_after: options.get(1)?,
        end: options.get(2)?,
        prefix: options.get(3)?,
        reverse: options.get(4)?,
        limit: limit.map(|l| l.max(0.0) as usize),
    };
    let entries = storage(&ctx, &handle)?
        .list(&options)
        .map_err(|e| errors::throw(&ctx, &e))?;
    entries_to_js(&ctx, entries)
}

/// `deleteAll()`; with `keep_alarm` (compatibility dates before 2026-02-24) the alarm survives.
fn storage_delete_all<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    keep_alarm: bool,
) -> rquickjs::Result<()> {
    let storage = storage(&ctx, &handle)?;
    let alarm = if keep_alarm {
        storage.get_alarm().map_err(|e| errors::throw(&ctx, &e))?
    } else {
        None
    };
    storage.delete_all().map_err(|e| errors::throw(&ctx, &e))?;
    if alarm.is_some() {
        storage
            .set_alarm(alarm)
            .map_err(|e| errors::throw(&ctx, &e))?;
    }
    Ok(())
}

/// `transactionSync(fn)`: `fn` runs inside a SQLite transaction, rolled back if it throws.
fn storage_transaction_sync<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    body: Function<'js>,
) -> rquickjs::Result<Value<'js>> {
    let storage = storage(&ctx, &handle)?;
    let mut outcome: Option<rquickjs::Result<Value<'js>>> = None;
    let result = storage.transaction(&mut || {
        let value = body.call::<_, Value<'js>>(());
        let failed = value.is_err();
        outcome = Some(value);
        if failed {
            Err(dormouse_sdk::Error::new(
                dormouse_sdk::ErrorKind::User,
                "the transaction's callback threw",
            ))
        } else {
            Ok(())
        }
    });
    match (outcome, result) {
        (Some(Err(error)), _) => Err(error),
        (_, Err(error)) => Err(errors::throw(&ctx, &error)),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (None, Ok(())) => Ok(Value::new_undefined(ctx)),
    }
}

/// Applies an async transaction's writes (`puts` as `[[key, bytes]]`, `deletes` as keys)
/// atomically.
fn storage_apply<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    puts: Array<'js>,
    deletes: Vec<String>,
) -> rquickjs::Result<()> {
    let puts = entries_from_js(&ctx, puts)?;
    let storage = storage(&ctx, &handle)?;
    storage
        .transaction(&mut || {
            if !puts.is_empty() {
                let borrowed: Vec<(&str, &[u8])> = puts
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                storage.put(&borrowed)?;
            }
            if !deletes.is_empty() {
                let keys: Vec<&str> = deletes.iter().map(String::as_str).collect();
                storage.delete(&keys)?;
            }
            Ok(())
        })
        .map_err(|e| errors::throw(&ctx, &e))
}

fn storage_sync<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<()> {
    storage(&ctx, &handle)?
        .sync()
        .map_err(|e| errors::throw(&ctx, &e))
}

// ---------------------------------------------------------------------- SQL

/// A JavaScript binding as an SQL value: numbers (integers stay integers), strings, booleans,
/// `null`, bigints, and bytes.
fn sql_value<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> rquickjs::Result<SqlStorageValue> {
    if value.is_null() || value.is_undefined() {
        return Ok(SqlStorageValue::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(SqlStorageValue::Boolean(b));
    }
    if let Some(i) = value.as_int() {
        return Ok(SqlStorageValue::Integer(i64::from(i)));
    }
    if let Some(f) = value.as_float() {
        let integral = f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15;
        return Ok(if integral {
            SqlStorageValue::Integer(f as i64)
        } else {
            SqlStorageValue::Float(f)
        });
    }
    if let Some(s) = value.as_string() {
        return Ok(SqlStorageValue::String(s.to_string()?));
    }
    if let Some(big) = value.as_big_int() {
        return big
            .clone()
            .to_i64()
            .map(SqlStorageValue::Integer)
            .map_err(|_| errors::type_error(ctx, "a BigInt binding must fit in 64 bits"));
    }
    if let Some(data) = bytes::copy(value) {
        return Ok(SqlStorageValue::Blob(data));
    }
    Err(errors::type_error(
        ctx,
        format!(
            "Unsupported SQL binding of type {}: use a string, number, boolean, null, bigint or ArrayBuffer",
            value.type_name()
        ),
    ))
}

fn sql_value_to_js<'js>(ctx: &Ctx<'js>, value: SqlStorageValue) -> rquickjs::Result<Value<'js>> {
    Ok(match value {
        SqlStorageValue::Null => Value::new_null(ctx.clone()),
        SqlStorageValue::Boolean(b) => Value::new_number(ctx.clone(), f64::from(u8::from(b))),
        SqlStorageValue::Integer(i) => Value::new_number(ctx.clone(), i as f64),
        SqlStorageValue::Float(f) => Value::new_number(ctx.clone(), f),
        SqlStorageValue::String(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
        SqlStorageValue::Blob(b) => bytes::array_buffer(ctx, &b)?,
    })
}

/// `sql.exec(query, ...bindings)`: `[columns, rows (arrays), rowsRead, rowsWritten]`.
fn sql_exec<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    query: String,
    bindings: Array<'js>,
) -> rquickjs::Result<Array<'js>> {
    let mut values = Vec::with_capacity(bindings.len());
    for binding in bindings.iter::<Value<'js>>() {
        values.push(sql_value(&ctx, &binding?)?);
    }
    let mut cursor = storage(&ctx, &handle)?
        .exec(&query, &values)
        .map_err(|e| errors::throw(&ctx, &e))?;
    let out = Array::new(ctx.clone())?;
    out.set(0, cursor.column_names().to_vec())?;
    let (read, written) = (cursor.rows_read(), cursor.rows_written());
    let rows = Array::new(ctx.clone())?;
    for (index, row) in cursor.raw().into_iter().enumerate() {
        let cells = Array::new(ctx.clone())?;
        for (column, value) in row.into_iter().enumerate() {
            cells.set(column, sql_value_to_js(&ctx, value)?)?;
        }
        rows.set(index, cells)?;
    }
    out.set(1, rows)?;
    out.set(2, read as f64)?;
    out.set(3, written as f64)?;
    Ok(out)
}

fn sql_database_size<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<f64> {
    storage(&ctx, &handle)?
        .database_size()
        .map(|n| n as f64)
        .map_err(|e| errors::throw(&ctx, &e))
}

// ---------------------------------------------------------------------- alarms

fn alarm_get<'js>(ctx: Ctx<'js>, handle: Handle<'js>) -> rquickjs::Result<Option<f64>> {
    storage(&ctx, &handle)?
        .get_alarm()
        .map(|at| at.map(|ms| ms as f64))
        .map_err(|e| errors::throw(&ctx, &e))
}

fn alarm_set<'js>(
    ctx: Ctx<'js>,
    handle: Handle<'js>,
    at: Opt<Option<f64>>,
) -> rquickjs::Result<()> {
    let at = at.0.flatten().map(|ms| ms as i64);
    storage(&ctx, &handle)?
        .set_alarm(at)
        .map_err(|e| errors::throw(&ctx, &e))
}
