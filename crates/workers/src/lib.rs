//! Workers mode: Cloudflare Workers projects (a wrangler configuration and JavaScript or
//! TypeScript modules) run unchanged, as one more guest of the Dormouse runtime.
//!
//! The project's modules run in an embedded JavaScript engine (QuickJS), on a thread of its own
//! ([`Engine`]). Each bound Durable Object class becomes a
//! [`GuestClass`](dormouse_runtime::GuestClass) of the runtime, so the socket holder,
//! hibernation, storage and the admin endpoint are the Rust SDK's; what is JavaScript-specific
//! stays here: the module graph, TypeScript stripping, the Web APIs, structured clone, the event
//! loop, and CPU and memory limits.
//!
//! # Layout
//! - [`config`] — the wrangler configuration, `.dev.vars` and compatibility settings.
//! - [`project`] — [`Project`]: a project on disk, read.
//! - `modules`: how specifiers resolve (relative, `tsconfig` paths, `node_modules`, built-ins)
//!   and the engine's loader.
//! - `compile`: TypeScript and JSX stripped by oxc, source maps for stack traces.
//! - [`engine`] — [`Engine`]: the engine's thread, generations of code, instances and turns.
//! - `natives`: the Rust functions the prelude calls.
//! - `serialize`: structured clone in V8's format.
//! - `guest`: a JavaScript instance as the runtime's `Guest`.
//! - [`worker`] — [`WorkerService`]: the Worker as a `tower::Service`.
//! - [`error`] — [`WorkersError`].
//! - `js/`: the prelude, in JavaScript: the Web APIs and the Durable Objects API.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dormouse_runtime::{GuestClass, Runtime};
//! use dormouse_workers::{Engine, EngineOptions, Project, WorkerService};
//!
//! let project = Project::open("path/to/worker".as_ref(), None)?;
//! let engine = Engine::start(EngineOptions::default())?;
//! let mut builder = Runtime::builder();
//! for binding in &project.config.bindings {
//!     let class = GuestClass::new(&binding.name, &binding.class_name, engine.class_factory(&binding.class_name))
//!         .executor(engine.executor());
//!     builder = builder.guest_class(class);
//! }
//! let runtime = builder.build()?;
//! engine.load(&project, runtime.env()).await?;
//! let worker = WorkerService::new(engine); // serve it with dormouse_server::Server
//! # Ok(()) }
//! ```

mod compile;
pub mod config;
pub mod engine;
pub mod error;
mod guest;
mod modules;
mod natives;
pub mod project;
mod serialize;
pub mod worker;

pub use config::{Compatibility, DurableObjectBinding, Feature, StorageBackend, Var, WorkerConfig};
pub use engine::{DEFAULT_CPU_LIMIT, DEFAULT_MEMORY_LIMIT, Engine, EngineOptions};
pub use error::{Result, WorkersError};
pub use project::Project;
pub use worker::WorkerService;
