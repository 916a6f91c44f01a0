//! The JavaScript engine: one QuickJS runtime on a thread of its own, which runs the Worker and
//! every object of the project.
//!
//! QuickJS is single-threaded, so the engine's thread runs a current-thread tokio runtime, and
//! the runtime's object tasks for the project's classes are spawned there
//! ([`GuestClass::executor`](dormouse_runtime::GuestClass::executor)): an object's turn calls
//! into JavaScript directly, with no hop between threads. The rest of the server (connections,
//! socket drivers) stays on the main runtime; the Worker's requests reach the engine through a
//! channel. One engine per project, like workerd's one isolate per script: module-scope state is
//! shared by the project's objects.
//!
//! # Layout
//! - [`state`] — the engine's state on its thread: generations of code, instances, turns.
//! - `load`: a generation: a context with the prelude, the env and the main module.
//! - `dispatch`: events into JavaScript, answers out of it.
//! - `settle`: what the engine waits for from JavaScript.
//! - `heap`: the JavaScript heap's own allocator.
//! - `limits`: the CPU-time limit per event.
//! - `rejections`: promises rejected with no handler, reported after the jobs of an entry.

pub(crate) mod dispatch;
mod heap;
mod limits;
mod load;
pub(crate) mod rejections;
pub(crate) mod settle;
pub(crate) mod state;

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dormouse_sdk::{Env, Guest, Request, Response, State};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, WorkersError};
use crate::project::Project;
use state::{EngineState, engine};

/// Longest one event's JavaScript may run on the CPU (Cloudflare: 30 s, `limits.cpu_ms`).
pub const DEFAULT_CPU_LIMIT: Duration = Duration::from_secs(30);

/// Memory the engine's JavaScript heap may use (Cloudflare: 128 MB per isolate).
pub const DEFAULT_MEMORY_LIMIT: usize = 128 << 20;

/// Native stack the engine's thread gets: deep recursion in JavaScript ends in a `RangeError`
/// (the engine's own stack limit, below) long before it could overflow this.
const THREAD_STACK_BYTES: usize = 16 << 20;

/// The engine's limit on JavaScript recursion, in bytes of native stack.
const JS_STACK_BYTES: usize = 4 << 20;

/// How the engine runs JavaScript.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// CPU time one event may use before its object is reset.
    pub cpu_limit: Duration,
    /// Bytes the JavaScript heap may hold; an allocation past it fails and resets the object.
    pub memory_limit: usize,
    /// Put an uncaught exception's message and stack in the 500 response of the Worker (for
    /// `dormouse dev`); otherwise the body is only "Internal Server Error".
    pub expose_errors: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cpu_limit: DEFAULT_CPU_LIMIT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            expose_errors: false,
        }
    }
}

/// What the engine's thread is asked to do.
enum Command {
    /// Load (or reload) the project's code.
    Load {
        project: Box<Project>,
        env: Env,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Serve a request with the Worker.
    Fetch {
        request: Box<Request>,
        reply: oneshot::Sender<Response>,
    },
}

/// A handle to the engine; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    handle: tokio::runtime::Handle,
    commands: mpsc::UnboundedSender<Command>,
    /// Dropping the sender stops the thread; joined on drop.
    stop: Mutex<Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.stop.lock().expect("engine stop lock").take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the engine's thread (with no code loaded yet).
    pub fn start(options: EngineOptions) -> Result<Engine> {
        let (commands, mut receiver) = mpsc::unbounded_channel::<Command>();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dormouse-js".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error.to_string()));
                        return;
                    }
                };
                let local = Rc::new(tokio::task::LocalSet::new());
                let state = match new_state(options, local.clone()) {
                    Ok(state) => Rc::new(state),
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                state::install(state);
                let _ = ready.send(Ok(runtime.handle().clone()));
                local.block_on(&runtime, async move {
                    let serve = async {
                        while let Some(command) = receiver.recv().await {
                            handle(command);
                        }
                    };
                    tokio::select! {
                        () = serve => {}
                        _ = stopped => {}
                    }
                });
                // Every JavaScript value goes before the runtime that owns it.
                drop(local);
                rejections::clear();
                drop(state::uninstall());
                drop(runtime);
            })
            .map_err(|e| WorkersError::Engine(e.to_string()))?;
        let handle = started
            .recv()
            .map_err(|_| WorkersError::Engine("the engine's thread ended at start".into()))?
            .map_err(WorkersError::Engine)?;
        Ok(Engine {
            shared: Arc::new(Shared {
                handle,
                commands,
                stop: Mutex::new(Some((stop, thread))),
            }),
        })
    }

    /// Where the project's objects run: give it to their [`GuestClass`]es.
    ///
    /// [`GuestClass`]: dormouse_runtime::GuestClass
    pub fn executor(&self) -> tokio::runtime::Handle {
        self.shared.handle.clone()
    }

    /// The factory of instances of the exported class `class`, for a
    /// [`GuestClass`](dormouse_runtime::GuestClass). It is called on the engine's thread (the
    /// class's executor); a constructor that throws fails with its message and stack.
    pub fn class_factory(
        &self,
        class: &str,
    ) -> impl Fn(State, Env) -> std::result::Result<Box<dyn Guest>, String> + Send + Sync + 'static
    {
        let class = class.to_owned();
        move |state: State, _env: Env| {
            dispatch::construct(&class, state.host().clone())
                .map(|guest| Box::new(guest) as Box<dyn Guest>)
        }
    }

    /// Loads the project's code: the prelude, the env built on `env`, the main module and its
    /// imports. On success new instances and Worker requests use it; instances of earlier code
    /// keep theirs until the runtime drops them
    /// ([`Runtime::refresh_all`](dormouse_runtime::Runtime::refresh_all)). On failure the code
    /// before stays in use.
    pub async fn load(&self, project: &Project, env: Env) -> Result<()> {
        let (reply, loaded) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Load {
                project: Box::new(project.clone()),
                env,
                reply,
            })
            .map_err(|_| WorkersError::Engine("the engine stopped".into()))?;
        loaded
            .await
            .map_err(|_| WorkersError::Engine("the engine stopped while loading".into()))?
    }

    /// Serves `request` with the Worker's `fetch`.
    pub async fn fetch(&self, request: Request) -> Response {
        let (reply, answered) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::Fetch {
                request: Box::new(request),
                reply,
            })
            .is_err()
        {
            return dispatch::plain_response(503, "the JavaScript engine is not running");
        }
        answered
            .await
            .unwrap_or_else(|_| dispatch::plain_response(500, "Internal Server Error"))
    }
}

fn new_state(
    options: EngineOptions,
    local: Rc<tokio::task::LocalSet>,
) -> std::result::Result<EngineState, String> {
    let runtime = rquickjs::Runtime::new_with_alloc(heap::JsHeap).map_err(|e| e.to_string())?;
    runtime.set_memory_limit(options.memory_limit);
    runtime.set_max_stack_size(JS_STACK_BYTES);
    let cpu = limits::CpuBudget::new(options.cpu_limit);
    let budget = cpu.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || budget.should_interrupt())));
    let loader = crate::modules::Loader::default();
    runtime.set_loader(loader.clone(), loader.clone());
    let loading = loader.clone();
    runtime.set_host_promise_rejection_tracker(Some(Box::new(
        move |ctx, promise, reason, is_handled| {
            // While the Worker loads, a rejection is its import failing: the load reports it.
            if !loading.is_loading() {
                rejections::track(&ctx, promise, reason, is_handled);
            }
        },
    )));
    Ok(EngineState::new(runtime, cpu, options, loader, local))
}

fn handle(command: Command) {
    match command {
        Command::Load {
            project,
            env,
            reply,
        } => {
            let result = match engine() {
                Some(engine) => load::load(&engine, &project, &env),
                None => Err(WorkersError::Engine("no engine on this thread".into())),
            };
            let _ = reply.send(result);
        }
        Command::Fetch { request, reply } => dispatch::worker_fetch(*request, reply),
    }
}
