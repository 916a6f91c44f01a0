//! Promises rejected with no handler, reported once an entry into JavaScript has run its jobs.
//!
//! QuickJS tells of a rejection the moment it happens, before the code that will handle it had a
//! chance to: an `async` handler that throws rejects its promise before the caller's `then` is
//! attached. So a rejection waits here until the jobs are done, and is reported only if no
//! handler came by then (what browsers and Node do at their microtask checkpoint).

use std::cell::RefCell;

use rquickjs::{Ctx, Persistent, Value};

/// A rejected promise with no handler yet, how its reason reads, and whom it ran for.
struct Pending {
    promise: Persistent<Value<'static>>,
    text: String,
    object: String,
}

thread_local! {
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
}

/// What the engine's rejection tracker hears: `promise` rejected with `reason` and no handler,
/// or (`handled`) a handler attached to a promise that had none.
pub(crate) fn track<'js>(ctx: &Ctx<'js>, promise: Value<'js>, reason: Value<'js>, handled: bool) {
    if handled {
        PENDING.with(|pending| {
            pending
                .borrow_mut()
                .retain(|held| held.promise.clone().restore(ctx).ok().as_ref() != Some(&promise));
        });
        return;
    }
    // Describing may run JavaScript (a getter, `toString`): nothing is borrowed meanwhile.
    let text = crate::natives::errors::describe(ctx, &reason);
    let object = crate::natives::platform::running_for();
    let promise = Persistent::save(ctx, promise);
    PENDING.with(|pending| {
        pending.borrow_mut().push(Pending {
            promise,
            text,
            object,
        })
    });
}

/// Logs every rejection still without a handler.
pub(crate) fn report() {
    let pending = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    for Pending { text, object, .. } in pending {
        let text = format!("Uncaught (in promise) {text}");
        crate::natives::platform::log_uncaught_for(&object, &text);
    }
}

/// Forgets every pending rejection (their promises belong to a runtime about to go).
pub(crate) fn clear() {
    PENDING.with(|pending| pending.borrow_mut().clear());
}
