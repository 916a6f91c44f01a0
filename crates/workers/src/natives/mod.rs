//! The Rust side of the prelude: the functions the prelude's JavaScript calls (`native.*`),
//! one module per area, and the handles (native classes) it holds.
//!
//! # Layout
//! - [`platform`] — encoding, base64, URL, crypto, console, timers, clocks, structured clone.
//! - [`http`] — requests, responses, bodies, the outbound `fetch`.
//! - [`sockets`] — WebSockets.
//! - [`state`] — `ctx` and `ctx.storage`.
//! - [`namespace`] — namespaces and stubs (`fetch`, RPC).
//! - [`dispatch`] — `settle`: handlers' outcomes back to whoever waits.
//! - [`ops`] — asynchronous operations and timers.
//! - [`errors`], [`bytes`] — errors and bytes across the boundary.

pub(crate) mod bytes;
pub(crate) mod dispatch;
pub(crate) mod errors;
pub(crate) mod http;
pub(crate) mod namespace;
pub(crate) mod ops;
pub(crate) mod platform;
pub(crate) mod sockets;
pub(crate) mod state;

use rquickjs::{Ctx, Function, Object};

/// What each module's `install` registers its natives with: `f(name, function)` puts the function
/// on `native` under `name`, which it also carries as its JavaScript name (for stack traces).
pub(crate) fn registrar<'a, 'js>(
    native: &'a Object<'js>,
) -> impl Fn(&str, rquickjs::Result<Function<'js>>) -> rquickjs::Result<()> + 'a {
    move |name, function| native.set(name, function?.with_name(name)?)
}

/// Puts every native on `native`, the object the prelude's files receive.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    platform::install(ctx, native)?;
    http::install(ctx, native)?;
    sockets::install(ctx, native)?;
    state::install(ctx, native)?;
    namespace::install(ctx, native)?;
    dispatch::install(ctx, native)?;
    Ok(())
}
