//! Running one handler of the guest's: as the current object, with its panics caught and its
//! time bounded.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use dormouse_sdk::host::{self, ObjectHost};
use futures_util::FutureExt;

/// How a guarded handler call ended.
pub(super) enum Outcome<T> {
    Done(T),
    Panicked(String),
    TimedOut,
}

/// Runs one handler with the object as the current one, catching panics and applying `timeout`.
pub(super) async fn guard<T>(
    context: Arc<dyn ObjectHost>,
    handler: impl Future<Output = T>,
    timeout: Option<Duration>,
) -> Outcome<T> {
    let call = host::scope_object(context, AssertUnwindSafe(handler).catch_unwind());
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => return Outcome::TimedOut,
        },
        None => call.await,
    };
    match result {
        Ok(value) => Outcome::Done(value),
        Err(panic) => Outcome::Panicked(panic_message(&*panic)),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
