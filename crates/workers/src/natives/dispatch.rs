//! `native.settle(token, ok, value)`: the prelude reports how a handler ended, and the engine
//! answers whoever waits (the caller of `fetch` or of a method, the alarm, the Worker's client).

use bytes::Bytes;
use dormouse_sdk::{Error, ErrorKind};
use rquickjs::{Ctx, Function, Object, Value};

use super::namespace::{RETURNED, THREW};
use super::{bytes as js_bytes, errors, http, platform};
use crate::engine::dispatch::plain_response;
use crate::engine::settle::Settlement;
use crate::engine::state::{Owner, engine};

/// Registers this module's natives on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    native.set(
        "settle",
        Function::new(ctx.clone(), settle)?.with_name("settle")?,
    )
}

/// The settlement of `token`, taken out of the engine's table.
fn take(token: u64) -> Option<Settlement> {
    let engine = engine()?;
    let settlement = engine.settlements.borrow_mut().remove(&token)?;
    if settlement.lingering()
        && let Owner::Instance(id) = settlement.owner()
    {
        engine.keep_awake(id, -1);
    }
    Some(settlement)
}

fn settle<'js>(ctx: Ctx<'js>, token: f64, ok: bool, value: Value<'js>) {
    let Some(settlement) = take(token as u64) else {
        return;
    };
    match settlement {
        Settlement::Fetch { reply, .. } => {
            let answer = if ok {
                http::response_from_js(&ctx, value).map_err(|_| {
                    let message = errors::caught(&ctx);
                    platform::log_uncaught(&message);
                    Error::new(ErrorKind::User, message)
                })
            } else {
                let message = errors::describe(&ctx, &value);
                platform::log_uncaught(&format!("Uncaught exception in fetch: {message}"));
                Err(errors::from_js(&ctx, &value))
            };
            reply.send(answer);
        }
        Settlement::Call { reply, .. } => {
            let answer = if ok {
                js_bytes::copy(&value).map(|result| [&[RETURNED], &result[..]].concat())
            } else {
                Some(thrown_answer(&ctx, &value))
            };
            reply.send(answer.map(Bytes::from).ok_or_else(|| {
                Error::new(
                    ErrorKind::Serialization,
                    "the method's result could not be sent",
                )
            }));
        }
        Settlement::Handler { handler, .. } => {
            if !ok {
                let message = errors::describe(&ctx, &value);
                platform::log_uncaught(&format!("Uncaught exception in {handler}: {message}"));
            }
        }
        Settlement::Alarm { owner } => {
            let outcome = if ok {
                Ok(())
            } else {
                let message = errors::describe(&ctx, &value);
                platform::log_uncaught(&format!("Uncaught exception in alarm: {message}"));
                Err(headline(&ctx, &value))
            };
            if let (Some(engine), Owner::Instance(id)) = (engine(), owner) {
                engine.with_instance(id, |instance| instance.alarm_outcome = Some(outcome));
                engine.wake(id);
            }
        }
        Settlement::Worker { reply } => {
            let response = if ok {
                http::response_from_js(&ctx, value).unwrap_or_else(|_| {
                    let message = errors::caught(&ctx);
                    platform::log_uncaught(&message);
                    error_response(&message)
                })
            } else {
                let message = errors::describe(&ctx, &value);
                platform::log_uncaught(&format!(
                    "Uncaught exception in the Worker's fetch: {message}"
                ));
                error_response(&message)
            };
            let _ = reply.send(response);
        }
    }
}

/// Settles `token` with an error the engine itself met delivering the event.
pub(crate) fn fail(ctx: &Ctx<'_>, token: u64, message: &str) {
    let error = errors::to_js(ctx, &Error::new(ErrorKind::Internal, message.to_owned()));
    settle(ctx.clone(), token as f64, false, error);
}

/// A method's exception, for its caller: the value itself, structured-cloned (an `Error` keeps
/// its class, message and stack); its description when it cannot be cloned.
fn thrown_answer<'js>(ctx: &Ctx<'js>, thrown: &Value<'js>) -> Vec<u8> {
    let encoded = crate::serialize::serialize(ctx, thrown).unwrap_or_else(|_| {
        ctx.catch();
        let fallback = errors::to_js(
            ctx,
            &Error::new(ErrorKind::User, errors::describe(ctx, thrown)),
        );
        crate::serialize::serialize(ctx, &fallback).unwrap_or_default()
    });
    [&[THREW], &encoded[..]].concat()
}

/// `Name: message` of a thrown value, without its stack.
fn headline<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    let description = errors::describe(ctx, value);
    description.lines().next().unwrap_or_default().to_owned()
}

/// The Worker's answer to an exception: details only when the engine exposes errors (`dormouse
/// dev`).
fn error_response(message: &str) -> dormouse_sdk::Response {
    let expose = engine().is_some_and(|e| e.options.expose_errors);
    if expose {
        plain_response(500, message)
    } else {
        plain_response(500, "Internal Server Error")
    }
}
