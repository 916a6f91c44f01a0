//! The natives behind Durable Object namespaces and stubs: ids, `stub.fetch` and RPC calls.

use std::sync::Arc;

use ::bytes::Bytes;
use dormouse_sdk::ObjectId;
use dormouse_sdk::host::NamespaceHost;
use rquickjs::class::Trace;
use rquickjs::prelude::List;
use rquickjs::{Array, Class, Ctx, Function, JsLifetime, Object, Value};

use super::ops;
use super::{bytes, errors, http};

/// A namespace binding, as its `env` entry holds it.
#[derive(Trace, JsLifetime)]
#[rquickjs::class(rename = "NativeNamespace")]
pub(crate) struct NamespaceHandle {
    #[qjs(skip_trace)]
    host: Arc<dyn NamespaceHost>,
}

impl NamespaceHandle {
    pub(crate) fn new(host: Arc<dyn NamespaceHost>) -> Self {
        NamespaceHandle { host }
    }
}

type Handle<'js> = Class<'js, NamespaceHandle>;

/// How an RPC answer starts: the method returned, or threw (the rest is the thrown value).
pub(crate) const RETURNED: u8 = 0;
pub(crate) const THREW: u8 = 1;

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    let f = super::registrar(native);
    f("nsIdFromName", Function::new(ctx.clone(), id_from_name))?;
    f(
        "nsUniqueId",
        Function::new(ctx.clone(), |ns: Handle<'js>| {
            ns.borrow().host.unique_id().to_string()
        }),
    )?;
    f("nsIdFromString", Function::new(ctx.clone(), id_from_string))?;
    f("nsFetch", Function::new(ctx.clone(), ns_fetch))?;
    f("nsCall", Function::new(ctx.clone(), ns_call))?;
    Ok(())
}

fn id_from_name<'js>(ns: Handle<'js>, name: String) -> List<(String, String)> {
    let id = ns.borrow().host.id_from_name(&name);
    List((id.to_string(), name))
}

fn id_from_string<'js>(ctx: Ctx<'js>, ns: Handle<'js>, hex: String) -> rquickjs::Result<String> {
    ns.borrow()
        .host
        .id_from_string(&hex)
        .map(|id| id.to_string())
        .map_err(|e| errors::throw(&ctx, &e))
}

/// The id `hex` (checked against the namespace) with its `name`, if it had one.
fn object_id(
    ctx: &Ctx<'_>,
    host: &Arc<dyn NamespaceHost>,
    hex: &str,
    name: Option<String>,
) -> rquickjs::Result<ObjectId> {
    let id = host
        .id_from_string(hex)
        .map_err(|e| errors::throw(ctx, &e))?;
    Ok(ObjectId::from_raw(*id.as_bytes(), name.map(Arc::from)))
}

/// `stub.fetch`: `request` is `[method, url, headers, bodyKind, body]`.
fn ns_fetch<'js>(
    ctx: Ctx<'js>,
    ns: Handle<'js>,
    hex: String,
    name: Option<String>,
    request: Array<'js>,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let host = ns.borrow().host.clone();
    let id = object_id(&ctx, &host, &hex, name)?;
    let request = http::request_from_parts(&ctx, &request)?;
    let answer = host.fetch(id, request);
    ops::spawn(&ctx, async move {
        let outcome = answer.await;
        ops::settle(move |ctx| match outcome {
            Ok(response) => http::response_to_js(ctx, response).map(Array::into_value),
            Err(error) => Err(errors::throw(ctx, &error)),
        })
    })
}

fn ns_call<'js>(
    ctx: Ctx<'js>,
    ns: Handle<'js>,
    hex: String,
    name: Option<String>,
    method: String,
    args: Value<'js>,
) -> rquickjs::Result<rquickjs::Promise<'js>> {
    let host = ns.borrow().host.clone();
    let id = object_id(&ctx, &host, &hex, name)?;
    let args = bytes::copy(&args)
        .ok_or_else(|| errors::type_error(&ctx, "expected serialized arguments"))?;
    let answer = host.call(id, method, Bytes::from(args));
    ops::spawn(&ctx, async move {
        let outcome = answer.await;
        ops::settle(move |ctx| match outcome {
            Ok(answer) => match answer.split_first() {
                Some((&RETURNED, result)) => bytes::uint8_array(ctx, result),
                Some((&THREW, thrown)) => {
                    let thrown = crate::serialize::deserialize(ctx, thrown)?;
                    if let Some(object) = thrown.as_object() {
                        let _ = object.set("remote", true);
                    }
                    Err(ctx.throw(thrown))
                }
                _ => Err(errors::type_error(ctx, "a malformed RPC answer")),
            },
            Err(error) => Err(errors::throw(ctx, &error)),
        })
    })
}
