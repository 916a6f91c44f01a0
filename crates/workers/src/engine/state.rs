//! The engine on its thread: the JavaScript runtime, the loaded code (a [`Generation`] per load,
//! so that a reload never disturbs instances of the code before it), the object instances, and
//! the work each waits for.
//!
//! Everything here lives on the engine's thread and is reached through [`engine`]. Nothing is
//! borrowed while JavaScript runs: natives called from JavaScript borrow the tables they need
//! and let go before returning.
//!
//! # Turns
//! JavaScript of an object runs only inside a turn of that object (the runtime's input and
//! output gates): a handler runs in the turn of its event, and work that comes back later (a
//! timer, a settled fetch or call) is queued on the instance, which asks the runtime for a turn
//! ([`ObjectHost::schedule_turn`]) and runs it there. The Worker (the stateless `fetch` in front)
//! has no turns: its work runs when it comes back.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use dormouse_sdk::host::ObjectHost;
use rquickjs::{Ctx, Object, Persistent};
use tokio::sync::{Notify, oneshot};

use super::limits::CpuBudget;
use super::settle::Settlement;
use crate::compile::SourceMaps;
use crate::config::StorageBackend;

thread_local! {
    static ENGINE: RefCell<Option<Rc<EngineState>>> = const { RefCell::new(None) };
}

/// The engine of this thread, if this is an engine's thread.
pub(crate) fn engine() -> Option<Rc<EngineState>> {
    ENGINE.with(|slot| slot.borrow().clone())
}

/// Makes `state` this thread's engine (on the engine's thread, once).
pub(crate) fn install(state: Rc<EngineState>) {
    ENGINE.with(|slot| *slot.borrow_mut() = Some(state));
}

/// Removes this thread's engine, so that it is dropped (with every JavaScript value) before the
/// thread ends.
pub(crate) fn uninstall() -> Option<Rc<EngineState>> {
    ENGINE.with(|slot| slot.borrow_mut().take())
}

/// Work that came back for JavaScript: it runs with the context of the code it belongs to.
pub(crate) type Continuation = Box<dyn for<'js> FnOnce(&Ctx<'js>)>;

/// On whose behalf JavaScript runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The Worker, with the generation of code it runs.
    Worker(u64),
    /// An object instance.
    Instance(u64),
}

/// One load of the Worker's code: its context (globals, module graph) and the prelude's
/// internals there.
pub(crate) struct Generation {
    pub(crate) id: u64,
    /// The prelude's internal object: the entry points the engine calls.
    pub(crate) internal: Persistent<Object<'static>>,
    /// How each bound class keeps its data.
    pub(crate) backends: HashMap<String, StorageBackend>,
    /// Last, so that the values above are released first.
    pub(crate) context: rquickjs::Context,
}

/// One object instance's JavaScript side.
pub(crate) struct Instance {
    pub(crate) generation: Rc<Generation>,
    /// The prelude's controller of the instance (the object, its `ctx`, its sockets by id);
    /// `None` while the constructor runs.
    pub(crate) ctl: Option<Persistent<Object<'static>>>,
    pub(crate) host: Arc<dyn ObjectHost>,
    /// Work that came back for this instance, run in its turns in order.
    queue: VecDeque<Continuation>,
    /// Wakes a turn that waits for the instance's work (see [`EngineState::pump`]).
    notify: Arc<Notify>,
    /// A turn waits on `notify`: new work goes to it rather than asking for another turn.
    pumping: bool,
    /// A turn was asked for and has not run yet.
    turn_requested: bool,
    /// `blockConcurrencyWhile` calls in progress: while positive, the instance takes no events.
    pub(crate) gate: u32,
    /// Work that keeps the instance in memory (pending handlers, timers, `waitUntil`).
    busy: u32,
    /// Completes the runtime's keep-awake registration when `busy` drops to zero.
    awake: Option<oneshot::Sender<()>>,
    /// Why the instance broke (CPU or memory limit, `abort`, a failed `blockConcurrencyWhile`);
    /// the runtime resets the object when it sees it.
    pub(crate) fault: Option<String>,
    /// Timers the instance set, by their JavaScript id, to cancel with it.
    pub(crate) timers: Vec<u64>,
    /// How the running alarm handler ended, once it did.
    pub(crate) alarm_outcome: Option<Result<(), String>>,
}

/// The engine's state.
pub(crate) struct EngineState {
    current: RefCell<Option<Rc<Generation>>>,
    /// Every generation still in use (by instances or Worker requests), by id.
    generations: RefCell<HashMap<u64, Weak<Generation>>>,
    instances: RefCell<HashMap<u64, Instance>>,
    pub(crate) settlements: RefCell<HashMap<u64, Settlement>>,
    /// Running timers by (generation, JavaScript id), with who set them.
    pub(crate) timers: RefCell<HashMap<(u64, u64), (tokio::task::AbortHandle, Owner)>>,
    owner: Cell<Owner>,
    /// Entries into JavaScript in progress (a native may enter again).
    depth: Cell<u32>,
    /// Worker work that came back while JavaScript was running; run when it stops.
    deferred: RefCell<VecDeque<(Rc<Generation>, Continuation)>>,
    pub(crate) cpu: Rc<CpuBudget>,
    pub(crate) source_maps: RefCell<SourceMaps>,
    pub(crate) options: super::EngineOptions,
    /// The module loader the runtime uses; told which project it loads for.
    pub(crate) loader: crate::modules::Loader,
    next_id: Cell<u64>,
    /// The engine thread's local tasks (operations, timers, standard sockets' events). Object
    /// turns are tasks of the thread's runtime, outside this set, so local tasks are spawned on
    /// it directly rather than through `tokio::task::spawn_local`.
    local: Rc<tokio::task::LocalSet>,
    /// Whether a garbage collection is already planned (after instances left memory).
    collection_planned: Cell<bool>,
    /// Last: every value above is released before the runtime.
    pub(crate) runtime: rquickjs::Runtime,
}

impl EngineState {
    pub(crate) fn new(
        runtime: rquickjs::Runtime,
        cpu: Rc<CpuBudget>,
        options: super::EngineOptions,
        loader: crate::modules::Loader,
        local: Rc<tokio::task::LocalSet>,
    ) -> Self {
        EngineState {
            current: RefCell::new(None),
            generations: RefCell::new(HashMap::new()),
            instances: RefCell::new(HashMap::new()),
            settlements: RefCell::new(HashMap::new()),
            timers: RefCell::new(HashMap::new()),
            owner: Cell::new(Owner::Worker(0)),
            depth: Cell::new(0),
            deferred: RefCell::new(VecDeque::new()),
            cpu,
            source_maps: RefCell::new(SourceMaps::default()),
            options,
            loader,
            next_id: Cell::new(1),
            local,
            collection_planned: Cell::new(false),
            runtime,
        }
    }

    /// Spawns a task on the engine's thread (it may hold JavaScript values).
    pub(crate) fn spawn_local<F: std::future::Future + 'static>(
        &self,
        task: F,
    ) -> tokio::task::JoinHandle<F::Output> {
        self.local.spawn_local(task)
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// The code new instances and Worker requests use.
    pub(crate) fn current(&self) -> Option<Rc<Generation>> {
        self.current.borrow().clone()
    }

    pub(crate) fn set_current(&self, generation: Rc<Generation>) {
        let mut generations = self.generations.borrow_mut();
        generations.retain(|_, g| g.strong_count() > 0);
        generations.insert(generation.id, Rc::downgrade(&generation));
        *self.current.borrow_mut() = Some(generation);
    }

    fn generation(&self, id: u64) -> Option<Rc<Generation>> {
        self.generations
            .borrow()
            .get(&id)
            .and_then(Weak::upgrade)
            .or_else(|| self.current())
    }

    /// Who the running JavaScript works for.
    pub(crate) fn owner(&self) -> Owner {
        self.owner.get()
    }

    /// The generation of `owner`'s code.
    pub(crate) fn generation_of(&self, owner: Owner) -> Option<Rc<Generation>> {
        match owner {
            Owner::Instance(id) => self
                .instances
                .borrow()
                .get(&id)
                .map(|i| i.generation.clone()),
            Owner::Worker(id) => self.generation(id),
        }
    }

    /// Runs `f` in `generation`'s context on behalf of `owner`, then the promise jobs it
    /// queued, under the CPU budget. A limit hit meanwhile breaks the instance it ran for.
    pub(crate) fn enter<R>(
        &self,
        owner: Owner,
        generation: &Generation,
        f: impl FnOnce(&Ctx<'_>) -> R,
    ) -> R {
        let outer = self.owner.replace(owner);
        let depth = self.depth.get();
        self.depth.set(depth + 1);
        if depth == 0 {
            self.cpu.start();
        }
        let result = generation.context.with(|ctx| {
            let result = f(&ctx);
            while ctx.execute_pending_job() {}
            result
        });
        self.depth.set(depth);
        self.owner.set(outer);
        if depth == 0 {
            self.cpu.stop();
            super::rejections::report();
            if self.cpu.take_exceeded() {
                let limit = self.cpu.limit();
                self.break_owner(
                    owner,
                    format!("JavaScript exceeded its CPU time limit of {limit:?} for one event"),
                );
            }
            self.run_deferred();
        }
        result
    }

    /// Breaks the instance `owner` is (the runtime resets it); a Worker has nothing to break.
    pub(crate) fn break_owner(&self, owner: Owner, reason: String) {
        match owner {
            Owner::Instance(id) => self.break_instance(id, reason),
            Owner::Worker(_) => tracing::error!(%reason, "the Worker's JavaScript was stopped"),
        }
    }

    /// Wakes a turn of instance `id` that waits for its work or its gate.
    pub(crate) fn wake(&self, id: u64) {
        if let Some(instance) = self.instances.borrow().get(&id) {
            instance.notify.notify_one();
        }
    }

    pub(crate) fn break_instance(&self, id: u64, reason: String) {
        if let Some(instance) = self.instances.borrow_mut().get_mut(&id)
            && instance.fault.is_none()
        {
            instance.fault = Some(reason);
            instance.notify.notify_one();
        }
    }

    fn run_deferred(&self) {
        loop {
            let next = self.deferred.borrow_mut().pop_front();
            let Some((generation, work)) = next else {
                return;
            };
            self.enter(Owner::Worker(generation.id), &generation, |ctx| work(ctx));
        }
    }

    /// Hands work that came back to its owner: queued for an instance's next turn (asking the
    /// runtime for one), or run now for the Worker.
    pub(crate) fn deliver(&self, owner: Owner, work: Continuation) {
        match owner {
            Owner::Worker(id) => {
                let Some(generation) = self.generation(id) else {
                    return;
                };
                if self.depth.get() > 0 {
                    self.deferred.borrow_mut().push_back((generation, work));
                } else {
                    self.enter(Owner::Worker(generation.id), &generation, |ctx| work(ctx));
                }
            }
            Owner::Instance(id) => {
                let host = {
                    let mut instances = self.instances.borrow_mut();
                    let Some(instance) = instances.get_mut(&id) else {
                        return;
                    };
                    instance.queue.push_back(work);
                    if instance.pumping {
                        instance.notify.notify_one();
                        None
                    } else if !instance.turn_requested {
                        instance.turn_requested = true;
                        Some(instance.host.clone())
                    } else {
                        None
                    }
                };
                if let Some(host) = host {
                    host.schedule_turn();
                }
            }
        }
    }

    // ------------------------------------------------------------------ instances

    /// Registers an instance of `generation` for `host`; its controller is set once constructed.
    pub(crate) fn add_instance(
        &self,
        generation: Rc<Generation>,
        host: Arc<dyn ObjectHost>,
    ) -> u64 {
        let id = self.next_id();
        self.instances.borrow_mut().insert(
            id,
            Instance {
                generation,
                ctl: None,
                host,
                queue: VecDeque::new(),
                notify: Arc::new(Notify::new()),
                pumping: false,
                turn_requested: false,
                gate: 0,
                busy: 0,
                awake: None,
                fault: None,
                timers: Vec::new(),
                alarm_outcome: None,
            },
        );
        id
    }

    /// Reads or changes an instance's record; `None` if it is gone.
    pub(crate) fn with_instance<R>(
        &self,
        id: u64,
        f: impl FnOnce(&mut Instance) -> R,
    ) -> Option<R> {
        self.instances.borrow_mut().get_mut(&id).map(f)
    }

    /// Forgets an instance (the runtime dropped it): its queued work and timers go with it.
    pub(crate) fn remove_instance(&self, id: u64) {
        let removed = self.instances.borrow_mut().remove(&id);
        let Some(instance) = removed else {
            return;
        };
        let mut timers = self.timers.borrow_mut();
        for timer in &instance.timers {
            if let Some((task, _)) = timers.remove(&(instance.generation.id, *timer)) {
                task.abort();
            }
        }
        drop(timers);
        // Settlements of the instance can never be answered now: the runtime fails their callers.
        self.settlements
            .borrow_mut()
            .retain(|_, settlement| settlement.owner() != Owner::Instance(id));
        // The JavaScript values (its controller, queued closures) are released here, on the
        // engine's thread, with the context they belong to still alive.
        drop(instance);
        self.plan_collection();
    }

    /// Collects garbage soon, once for every instance that leaves meanwhile, and gives the
    /// freed pages back. An instance's values hold each other in cycles (the object, its `ctx`,
    /// its sockets' wrappers), which reference counting alone never frees; a hibernated object
    /// must leave nothing behind.
    fn plan_collection(&self) {
        if self.collection_planned.replace(true) {
            return;
        }
        self.spawn_local(async {
            // Let the other instances leaving in this burst go first.
            tokio::task::yield_now().await;
            if let Some(engine) = engine() {
                engine.collection_planned.set(false);
                engine.runtime.run_gc();
                super::heap::give_back();
            }
        });
    }

    /// Counts work that keeps the instance in memory (`delta` is +1 or -1). The runtime is told
    /// once per busy period, through `wait_until`.
    pub(crate) fn keep_awake(&self, id: u64, delta: i32) {
        let register = self.with_instance(id, |instance| {
            let before = instance.busy;
            instance.busy = if delta >= 0 {
                before + delta as u32
            } else {
                before.saturating_sub(delta.unsigned_abs())
            };
            match (before, instance.busy) {
                (0, n) if n > 0 => {
                    let (done, wait) = oneshot::channel::<()>();
                    instance.awake = Some(done);
                    Some((instance.host.clone(), wait))
                }
                (b, 0) if b > 0 => {
                    instance.awake = None;
                    None
                }
                _ => None,
            }
        });
        if let Some(Some((host, wait))) = register {
            host.wait_until(Box::pin(async move {
                let _ = wait.await;
            }));
        }
    }

    /// Waits, running the instance's queued work as it comes, until `done` holds for the
    /// instance (or it broke, or is gone). The turn of the calling handler stays open meanwhile:
    /// this is how `blockConcurrencyWhile` keeps other events out.
    pub(crate) async fn pump(id: u64, done: impl Fn(&Instance) -> bool) {
        loop {
            // What to wait for; everything else (the engine, queued work) is released before
            // the wait, so that the future stays `Send`.
            let notify = {
                let Some(engine) = engine() else {
                    return;
                };
                enum Step {
                    Finished,
                    Run(Rc<Generation>, Continuation),
                    Wait(Arc<Notify>),
                }
                let step = engine
                    .with_instance(id, |instance| {
                        if instance.fault.is_some() || done(instance) {
                            instance.pumping = false;
                            return Step::Finished;
                        }
                        match instance.queue.pop_front() {
                            Some(work) => Step::Run(instance.generation.clone(), work),
                            None => {
                                instance.pumping = true;
                                Step::Wait(instance.notify.clone())
                            }
                        }
                    })
                    .unwrap_or(Step::Finished);
                match step {
                    Step::Finished => return,
                    Step::Run(generation, work) => {
                        engine.enter(Owner::Instance(id), &generation, |ctx| work(ctx));
                        None
                    }
                    Step::Wait(notify) => Some(notify),
                }
            };
            if let Some(notify) = notify {
                notify.notified().await;
            }
        }
    }

    /// Runs the work queued for an instance (a turn it asked for), then waits while its gate is
    /// closed.
    pub(crate) async fn resume(id: u64) {
        EngineState::run_queued(id);
        EngineState::pump(id, |instance| instance.gate == 0).await;
    }

    /// Runs the work queued for instance `id` now, including work it queues meanwhile.
    fn run_queued(id: u64) {
        let Some(engine) = engine() else {
            return;
        };
        engine.with_instance(id, |instance| instance.turn_requested = false);
        loop {
            let next = engine.with_instance(id, |instance| {
                instance
                    .queue
                    .pop_front()
                    .map(|work| (instance.generation.clone(), work))
            });
            let Some(Some((generation, work))) = next else {
                return;
            };
            engine.enter(Owner::Instance(id), &generation, |ctx| work(ctx));
        }
    }
}
