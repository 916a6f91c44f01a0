//! Asynchronous operations: a promise for JavaScript, a Rust future on the engine's thread, and
//! the promise settled in the turn of whoever started it once the future is done.

use std::future::Future;
use std::time::Duration;

use rquickjs::{Ctx, Function, Object, Persistent, Promise, Value};

use crate::engine::state::{Continuation, Owner, engine};

/// What a finished operation does in JavaScript: makes the value to resolve with, or throws
/// (the exception rejects the promise).
pub(crate) type Settle = Box<dyn for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<Value<'js>>>;

/// A [`Settle`] from a closure (which the bound makes generic over the context's lifetime).
pub(crate) fn settle(
    f: impl for<'js> FnOnce(&Ctx<'js>) -> rquickjs::Result<Value<'js>> + 'static,
) -> Settle {
    Box::new(f)
}

/// Starts `future` and returns the promise it settles. The object that started it (if any) is
/// kept in memory until it settles; its result is delivered in a turn of that object.
pub(crate) fn spawn<'js>(
    ctx: &Ctx<'js>,
    future: impl Future<Output = Settle> + 'static,
) -> rquickjs::Result<Promise<'js>> {
    let Some(current) = engine() else {
        return Err(rquickjs::Error::Unknown);
    };
    let owner = current.owner();
    let (promise, resolve, reject) = ctx.promise()?;
    let resolve = Persistent::save(ctx, resolve);
    let reject = Persistent::save(ctx, reject);
    if let Owner::Instance(id) = owner {
        current.keep_awake(id, 1);
    }
    current.spawn_local(async move {
        let settle = future.await;
        let Some(engine) = engine() else {
            return;
        };
        if let Owner::Instance(id) = owner {
            engine.keep_awake(id, -1);
        }
        let work: Continuation = Box::new(move |ctx| {
            let (Ok(resolve), Ok(reject)) = (resolve.restore(ctx), reject.restore(ctx)) else {
                return;
            };
            let outcome = settle(ctx);
            let _ = match outcome {
                Ok(value) => resolve.call::<_, ()>((value,)),
                Err(_) => {
                    let error = ctx.catch();
                    reject.call::<_, ()>((error,))
                }
            };
        });
        engine.deliver(owner, work);
    });
    Ok(promise)
}

/// `native.timerStart(id, ms, repeat)`: fires `internal.fireTimer(id)` after `ms` (every `ms`
/// when repeating), in the turn of whoever set it, which it keeps in memory until it is done.
pub(crate) fn start_timer<'js>(
    ctx: &Ctx<'js>,
    id: u64,
    ms: f64,
    repeat: bool,
) -> rquickjs::Result<()> {
    let Some(current) = engine() else {
        return Ok(());
    };
    let owner = current.owner();
    let Some(generation) = current.generation_of(owner) else {
        return Ok(());
    };
    let _ = ctx;
    let delay = Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 1.0e9));
    let interval = delay.max(Duration::from_millis(1));
    let generation_id = generation.id;
    if let Owner::Instance(instance) = owner {
        current.keep_awake(instance, 1);
        current.with_instance(instance, |i| i.timers.push(id));
    }
    let task = current.spawn_local(async move {
        let mut wait = delay;
        loop {
            tokio::time::sleep(wait).await;
            wait = interval;
            let Some(engine) = engine() else {
                return;
            };
            if !repeat {
                engine.timers.borrow_mut().remove(&(generation_id, id));
                finish_timer(owner, id);
            }
            let generation = generation.clone();
            let work: Continuation =
                Box::new(move |ctx| {
                    let fire = generation.internal.clone().restore(ctx).and_then(
                        |internal: Object<'_>| internal.get::<_, Function<'_>>("fireTimer"),
                    );
                    if let Ok(fire) = fire
                        && fire.call::<_, ()>((id,)).is_err()
                    {
                        let message = super::errors::caught(ctx);
                        super::platform::log_uncaught(&message);
                    }
                });
            engine.deliver(owner, work);
            if !repeat {
                return;
            }
        }
    });
    current
        .timers
        .borrow_mut()
        .insert((generation_id, id), (task.abort_handle(), owner));
    Ok(())
}

/// `native.timerCancel(id)`.
pub(crate) fn cancel_timer(id: u64) {
    let Some(engine) = engine() else {
        return;
    };
    let owner = engine.owner();
    let Some(generation) = engine.generation_of(owner) else {
        return;
    };
    let task = engine.timers.borrow_mut().remove(&(generation.id, id));
    if let Some((task, set_by)) = task {
        task.abort();
        finish_timer(set_by, id);
    }
}

/// A timer is done (fired once, or cancelled): it no longer keeps its object in memory.
fn finish_timer(owner: Owner, id: u64) {
    if let (Some(engine), Owner::Instance(instance)) = (engine(), owner) {
        engine.with_instance(instance, |i| i.timers.retain(|t| *t != id));
        engine.keep_awake(instance, -1);
    }
}
