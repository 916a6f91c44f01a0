//! The task that runs one object's turns while it is in memory.
//!
//! Started by the first delivery to a dormant object, it constructs the instance lazily (on the
//! first envelope that needs one), runs one envelope at a time to completion, and ends when the
//! object hibernates, is evicted, or the runtime shuts down. A panic or a timed-out event resets
//! the object: its instance is dropped and its sockets are closed with 1011; other objects never
//! notice.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use dormouse_sdk::host::{self, ObjectHost};
use dormouse_sdk::{Error, ErrorKind, Guest, State};
use dormouse_ws::close;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use super::context::ReplySlot;
use super::guard::{Outcome, guard, panic_message};
use super::{Control, Envelope, NotHibernatable, ObjectCell, ObjectContext, Phase};
use crate::event_log::EventKind;
use crate::runtime::Shared;

/// Reason sent to sockets closed because the server stops.
pub(crate) const SHUTDOWN_REASON: &str = "server shutting down";

/// Reason sent to standard sockets closed because their object's code was reloaded.
const REFRESHED_REASON: &str = "Durable Object code was updated";

/// Reason sent to standard sockets closed because their idle object was evicted.
const EVICTED_REASON: &str = "Durable Object evicted after inactivity";

pub(super) async fn run(cell: Arc<ObjectCell>) {
    let Some(shared) = cell.namespace.shared.upgrade() else {
        return;
    };
    let span = tracing::info_span!(parent: None, "object", namespace = %cell.namespace.binding, id = %cell.id());
    Runner {
        cell,
        shared,
        instance: None,
        context: None,
        idle_since: Instant::now(),
    }
    .run()
    .instrument(span)
    .await
}

enum Flow {
    Continue,
    /// The task ends: the object hibernated.
    Exit,
}

pub(super) struct Runner {
    pub(super) cell: Arc<ObjectCell>,
    pub(super) shared: Arc<Shared>,
    pub(super) instance: Option<Box<dyn Guest>>,
    /// The instance's context; dropped (and its `wait_until` work cancelled) with the instance.
    pub(super) context: Option<Arc<ObjectContext>>,
    /// When the object last became idle; hibernation and eviction count from here.
    idle_since: Instant,
}

impl Runner {
    async fn run(mut self) {
        let cell = self.cell.clone();
        // One timer for the task's whole life. Activity only pushes the idle deadline later, so
        // the timer is moved when it fires early rather than on every event, which would cost
        // more than a small event itself.
        let idle_timer = tokio::time::sleep_until(self.idle_deadline());
        tokio::pin!(idle_timer);
        loop {
            let notified = cell.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.commit_between_turns().await;
            if let Some(envelope) = self.cell.pop() {
                let event = !matches!(envelope, Envelope::Control(_));
                let logged = if self.cell.is_logged() {
                    envelope.describe().map(|entry| (entry, Instant::now()))
                } else {
                    None
                };
                if let Flow::Exit = self.handle(envelope).await {
                    return;
                }
                let now = Instant::now();
                if let Some((entry, started)) = logged {
                    self.cell.log_handled(entry, now - started);
                }
                if event {
                    self.cell.note_event(now.into_std());
                }
                self.idle_since = now;
                continue;
            }
            // The deadline moves earlier when what kept the object in memory is gone (its
            // `wait_until` work ended, its last standard socket closed).
            let deadline = self.idle_deadline();
            if deadline < idle_timer.deadline() {
                idle_timer.as_mut().reset(deadline);
            }
            tokio::select! {
                () = &mut notified => self.idle_since = Instant::now(),
                () = &mut idle_timer => {
                    self.settle().await;
                    if self.sleep_if_idle() {
                        return;
                    }
                    idle_timer.as_mut().reset(self.idle_deadline());
                }
            }
        }
    }

    /// Waits until what the object committed is durable, so that its output has left: before it
    /// leaves memory, stops, or answers a close. Resets it if a flush failed.
    pub(super) async fn settle(&mut self) {
        self.settle_writes().await;
        self.reset_if_storage_failed().await;
    }

    /// Commits the batch and waits for flushes until no write is left waiting (or one failed).
    pub(super) async fn settle_writes(&mut self) {
        loop {
            if let Some(context) = &self.context {
                let _ = context.commit_if_due();
            }
            self.cell.gate.settle().await;
            if !self.cell.gate.has_batched() || self.cell.gate.has_failed() {
                return;
            }
        }
    }

    /// Between turns: commits the batch if a flush returned meanwhile; resets the object if a
    /// commit or a flush failed.
    async fn commit_between_turns(&mut self) {
        if self.cell.gate.batch_is_full() {
            self.cell.gate.settle().await;
        }
        if let Some(context) = &self.context {
            let _ = context.commit_if_due();
        }
        self.reset_if_storage_failed().await;
    }

    /// When the object may leave memory if nothing happens before.
    fn idle_deadline(&self) -> Instant {
        let config = &self.shared.config;
        let blockers = self.cell.blockers(&self.cell.state());
        let after = if blockers.wait_until > 0 {
            config.wait_until_limit.max(config.evict_after)
        } else if blockers.standard_sockets > 0 {
            config.evict_after
        } else {
            config.hibernate_after
        };
        self.idle_since + after
    }

    /// At the idle deadline: hibernate if possible, evict if the object cannot hibernate.
    /// Returns true when the task must end.
    fn sleep_if_idle(&mut self) -> bool {
        if Instant::now() < self.idle_deadline() {
            return false;
        }
        let mut state = self.cell.state();
        let blockers = self.cell.blockers(&state);
        if blockers.queued > 0 {
            return false;
        }
        let evicted = blockers.pin_instance();
        let hibernated = !evicted && self.instance.is_some() && blockers.any_socket;
        state.go_dormant(hibernated, blockers.any_socket);
        drop(state);
        let metrics = &self.cell.namespace.metrics;
        if evicted {
            metrics.evictions.fetch_add(1, Relaxed);
            tracing::debug!("evicting idle object that cannot hibernate");
            self.cell
                .log(EventKind::Evicted, || blockers.words().join("; "));
            self.cell
                .sockets
                .terminate_standard(close::GOING_AWAY, EVICTED_REASON);
        } else if hibernated {
            metrics.hibernations.fetch_add(1, Relaxed);
            tracing::debug!("hibernating");
            self.cell.log(EventKind::Hibernated, || "idle".to_owned());
        } else if self.instance.is_some() {
            self.cell.log(EventKind::Unloaded, || "idle".to_owned());
        }
        self.drop_instance();
        self.shared.registry.retire_if_empty(&self.cell);
        self.shared.after_instance_dropped();
        true
    }

    async fn handle(&mut self, envelope: Envelope) -> Flow {
        match envelope {
            Envelope::Control(Control::Hibernate(reply)) => {
                self.settle().await;
                let outcome = self.hibernate_on_request();
                let exit = outcome.is_ok();
                let _ = reply.send(outcome);
                if exit {
                    return Flow::Exit;
                }
            }
            Envelope::Control(Control::Shutdown { code, done }) => {
                self.settle().await;
                self.shut_down(code);
                let _ = done.send(());
                return Flow::Exit;
            }
            Envelope::Control(Control::Refresh(done)) => {
                self.settle().await;
                self.refresh();
                let _ = done.send(());
            }
            Envelope::Control(Control::Inspector(inspection)) => {
                self.settle().await;
                self.serve_inspector(inspection).await;
                if self.rest_after_inspection() {
                    return Flow::Exit;
                }
            }
            Envelope::Fetch { request, reply } => self.handle_fetch(request, reply).await,
            Envelope::Call {
                method,
                args,
                reply,
            } => self.handle_call(method, args, reply).await,
            Envelope::Resume => self.handle_resume().await,
            Envelope::Socket { socket, event } => self.handle_socket_event(socket, event).await,
            Envelope::Alarm {
                scheduled_ms,
                retry,
            } => self.handle_alarm(scheduled_ms, retry).await,
        }
        Flow::Continue
    }

    /// One HTTP request, as one turn; the response goes out once the writes of the turn that
    /// answered are durable.
    async fn handle_fetch(
        &mut self,
        request: dormouse_sdk::Request,
        reply: oneshot::Sender<dormouse_sdk::Result<dormouse_sdk::Response>>,
    ) {
        let slot = ReplySlot::new(reply);
        if let Err(error) = self.start_turn().await {
            return slot.fail(error);
        }
        self.cell
            .namespace
            .metrics
            .events
            .fetch
            .fetch_add(1, Relaxed);
        let context = self.context_concrete();
        let instance = self.instance.as_mut().expect("a turn has an instance");
        let serve = instance.serve(request, slot.reply(&context));
        match guard(context, serve, None).await {
            Outcome::Done(()) => {}
            Outcome::Panicked(message) => {
                slot.fail(Error::new(
                    ErrorKind::Reset,
                    "Durable Object was reset: its fetch handler panicked",
                ));
                return self
                    .reset(&format!("fetch handler panicked: {message}"))
                    .await;
            }
            Outcome::TimedOut => unreachable!("fetch runs without a timeout"),
        }
        if self.reset_if_broken().await {
            return;
        }
        let _ = self.finish_turn().await;
    }

    /// One call of a guest's method, as one turn; answered like [`Runner::handle_fetch`].
    async fn handle_call(
        &mut self,
        method: String,
        args: bytes::Bytes,
        reply: oneshot::Sender<dormouse_sdk::Result<bytes::Bytes>>,
    ) {
        let slot = ReplySlot::new(reply);
        if let Err(error) = self.start_turn().await {
            return slot.fail(error);
        }
        self.cell
            .namespace
            .metrics
            .events
            .call
            .fetch_add(1, Relaxed);
        let context = self.context_concrete();
        let instance = self.instance.as_mut().expect("a turn has an instance");
        let call = instance.call(method, args, slot.reply(&context));
        if let Outcome::Panicked(message) = guard(context, call, None).await {
            slot.fail(Error::new(
                ErrorKind::Reset,
                "Durable Object was reset: its method panicked",
            ));
            return self.reset(&format!("method panicked: {message}")).await;
        }
        if self.reset_if_broken().await {
            return;
        }
        let _ = self.finish_turn().await;
    }

    /// A turn the instance asked for, to run work of its own. Never constructs an instance: work
    /// of an instance that is gone went with it.
    async fn handle_resume(&mut self) {
        if self.instance.is_none() || self.start_turn().await.is_err() {
            return;
        }
        let context = self.context_host();
        let instance = self.instance.as_mut().expect("a turn has an instance");
        if let Outcome::Panicked(message) = guard(context, instance.resume(), None).await {
            return self.reset(&format!("guest work panicked: {message}")).await;
        }
        if self.reset_if_broken().await {
            return;
        }
        let _ = self.finish_turn().await;
    }

    /// Resets the object if its guest reports that the instance broke during the last call.
    pub(super) async fn reset_if_broken(&mut self) -> bool {
        let fault = self
            .instance
            .as_mut()
            .and_then(|instance| instance.take_fault());
        match fault {
            Some(reason) => {
                self.reset(&reason).await;
                true
            }
            None => false,
        }
    }

    /// Starts a turn, constructing the instance first if there is none (the constructor is part
    /// of the turn: what it writes commits with it). Fails if the constructor panicked or threw
    /// (the object was reset), with the error to answer a waiting caller with.
    pub(super) async fn start_turn(&mut self) -> Result<(), Error> {
        if let Some(context) = &self.context {
            context.begin_turn();
            return Ok(());
        }
        let context = ObjectContext::new(self.cell.clone(), self.shared.config.wait_until_limit);
        context.begin_turn();
        let host: Arc<dyn ObjectHost> = context.clone();
        let state = State::from_host(host.clone());
        let env = self.shared.env.clone();
        let factory = self.cell.namespace.factory.clone();
        let constructed = std::panic::catch_unwind(AssertUnwindSafe(|| {
            host::sync_scope_object(host, || factory(state, env))
        }));
        let failure = match constructed {
            Ok(Ok(instance)) => {
                self.instance = Some(instance);
                self.context = Some(context);
                let metrics = &self.cell.namespace.metrics;
                metrics.starts.fetch_add(1, Relaxed);
                let woken_at = self.cell.state().woken_at.take();
                if let Some(arrived) = woken_at {
                    let latency = arrived.elapsed();
                    metrics.wakes.fetch_add(1, Relaxed);
                    metrics.observe_wake(latency);
                    self.cell.log(EventKind::Woken, || {
                        format!("{} µs after the event arrived", latency.as_micros())
                    });
                } else {
                    self.cell.log(EventKind::Started, String::new);
                }
                return Ok(());
            }
            Ok(Err(thrown)) => (
                format!("constructor threw: {thrown}"),
                format!("Durable Object's constructor threw: {thrown}"),
            ),
            Err(panic) => (
                format!("constructor panicked: {}", panic_message(&*panic)),
                "Durable Object's constructor panicked".to_owned(),
            ),
        };
        context.cancel_wait_until();
        context.abort_turn(None);
        self.reset(&failure.0).await;
        Err(Error::new(ErrorKind::Reset, failure.1))
    }

    /// Ends the turn: commits its writes and puts its output behind the gate, which releases it
    /// once they are durable. If the commit fails the object is reset and the output dropped:
    /// nothing the turn sent may outlive its writes.
    pub(super) async fn finish_turn(&mut self) -> dormouse_sdk::Result<()> {
        let Some(context) = self.context.clone() else {
            return Ok(());
        };
        match context.end_turn().await {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.reset(&failure.to_string()).await;
                Err(Error::new(
                    ErrorKind::Reset,
                    format!("Durable Object was reset: {failure}"),
                ))
            }
        }
    }

    pub(super) fn context_host(&self) -> Arc<dyn ObjectHost> {
        self.context_concrete()
    }

    pub(super) fn context_concrete(&self) -> Arc<ObjectContext> {
        self.context
            .clone()
            .expect("context exists with the instance")
    }

    /// Serves [`Control::Hibernate`]: hibernates unless something prevents it.
    fn hibernate_on_request(&mut self) -> Result<(), NotHibernatable> {
        let mut state = self.cell.state();
        let blockers = self.cell.blockers(&state);
        if !blockers.is_empty() {
            return Err(NotHibernatable(blockers));
        }
        let any = blockers.any_socket;
        let counted = any && self.instance.is_some();
        state.go_dormant(counted, any);
        drop(state);
        if counted {
            self.cell
                .namespace
                .metrics
                .hibernations
                .fetch_add(1, Relaxed);
            self.cell
                .log(EventKind::Hibernated, || "on request".to_owned());
        } else if self.instance.is_some() {
            self.cell
                .log(EventKind::Unloaded, || "on request".to_owned());
        }
        self.drop_instance();
        self.shared.registry.retire_if_empty(&self.cell);
        self.shared.after_instance_dropped();
        Ok(())
    }

    /// Stops the object for a runtime shutdown: its sockets close with `code` (no events), queued
    /// requests are refused, the instance is dropped (its writes were committed turn by turn).
    fn shut_down(&mut self, code: u16) {
        self.cell.sockets.terminate_all(code, SHUTDOWN_REASON);
        let queued: Vec<Envelope> = {
            let mut state = self.cell.state();
            state.phase = Phase::Dormant;
            state.mailbox_bytes = 0;
            state.mailbox.drain(..).collect()
        };
        for envelope in queued {
            if let Envelope::Fetch { reply, .. } = envelope {
                let _ = reply.send(Err(Error::new(
                    ErrorKind::Internal,
                    "the server is shutting down",
                )));
            }
        }
        self.drop_instance();
        self.shared.registry.retire_if_empty(&self.cell);
    }

    /// Serves [`Control::Refresh`]: drops the instance whatever keeps it in memory, so that the
    /// next event constructs one from the guest's new code. Standard sockets belong to the old
    /// instance and close with 1012 (service restart); hibernatable sockets stay open.
    fn refresh(&mut self) {
        if self.instance.is_none() {
            return;
        }
        self.cell
            .sockets
            .terminate_standard(close::SERVICE_RESTART, REFRESHED_REASON);
        tracing::debug!("instance dropped for new code");
        self.drop_instance();
        self.shared.after_instance_dropped();
    }

    /// Drops the instance (catching a panicking `Drop`) and cancels its `wait_until` work.
    pub(super) fn drop_instance(&mut self) {
        if let Some(context) = self.context.take() {
            context.retire();
            context.cancel_wait_until();
        }
        if let Some(instance) = self.instance.take()
            && std::panic::catch_unwind(AssertUnwindSafe(move || drop(instance))).is_err()
        {
            tracing::error!("object's Drop panicked");
        }
    }
}
