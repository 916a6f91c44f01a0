//! Durable Objects with hibernatable WebSockets, self-hosted.
//!
//! An application is a set of [`DurableObject`] classes plus a Worker: an axum [`Router`] that
//! routes requests to objects through the [`Env`]. [`App`] puts them together and serves them,
//! with the command-line flags every Dormouse binary shares (`--listen`, `--admin-listen`,
//! `--hibernate-after`, `--data-dir`, …).
//!
//! ```no_run
//! use dormouse::prelude::*;
//! use dormouse::axum::{Router, routing::get, extract::{Path, State as Shared}};
//!
//! struct Room {
//!     state: State,
//! }
//!
//! impl DurableObject for Room {
//!     fn new(state: State, _env: Env) -> Self {
//!         Room { state }
//!     }
//!
//!     async fn fetch(&mut self, _req: Request) -> Result<Response> {
//!         let pair = WebSocketPair::new()?;
//!         self.state.accept_web_socket(&pair.server)?;
//!         Response::from_websocket(pair.client)
//!     }
//!
//!     async fn websocket_message(&mut self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
//!         if let WebSocketIncomingMessage::String(text) = message {
//!             self.state.broadcast(None, text.as_str(), Some(&ws));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! async fn room(Shared(env): Shared<Env>, Path(name): Path<String>, req: Request) -> Result<Response> {
//!     env.durable_object("ROOMS")?.get_by_name(&name)?.fetch(req).await
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     App::new()
//!         .durable_object::<Room>("ROOMS")
//!         .worker(|env| Router::new().route("/room/{name}", get(room)).with_state(env))
//!         .main()
//! }
//! ```
//!
//! # Layout
//! - [`App`]: classes + Worker → a server; [`App::main`] for binaries, [`App::serve`] for tests.
//! - [`prelude`] — the SDK names (`DurableObject`, `State`, `WebSocket`, …) and [`App`].
//! - Re-exports: [`sdk`] (the API objects use), [`runtime`], [`server`], and [`axum`] / [`http`]
//!   so that applications need no version alignment of their own.

mod app;

pub use app::{App, Running};
pub use dormouse_runtime as runtime;
pub use dormouse_runtime::{Durability, Migration};
pub use dormouse_sdk as sdk;
pub use dormouse_sdk::*;
pub use dormouse_server as server;
pub use dormouse_server::ServeArgs;
pub use {axum, http};

/// Everything an application usually needs: `use dormouse::prelude::*;`.
pub mod prelude {
    pub use crate::App;
    pub use dormouse_sdk::prelude::*;
}

/// The README's example, compiled as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
