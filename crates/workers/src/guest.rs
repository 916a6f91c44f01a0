//! [`JsGuest`]: a JavaScript object instance as the runtime drives it (the SDK's
//! [`Guest`]).
//!
//! Each call runs on the engine's thread, in the object's turn: it waits while the instance's
//! gate is closed (`blockConcurrencyWhile`), hands the event to the handler, runs what the
//! handler's synchronous part and its promise jobs queued, and waits again while the gate is
//! closed. Then the turn ends, even if the handler still awaits something else (another object,
//! a timer, a fetch): other events of the object may run meanwhile, as on Cloudflare, and the
//! handler's answer goes out from the turn in which it settles.

use bytes::Bytes;
use dormouse_sdk::host::{BoxFuture, Reply};
use dormouse_sdk::{
    AlarmInfo, Error, ErrorKind, Guest, Request, Response, Result, WebSocket,
    WebSocketIncomingMessage,
};
use tokio::sync::oneshot;

use crate::engine::dispatch::{self, Event};
use crate::engine::state::{EngineState, engine};

/// An instance of a JavaScript class, by its id in the engine.
#[derive(Debug)]
pub(crate) struct JsGuest {
    id: u64,
}

impl JsGuest {
    pub(crate) fn new(id: u64) -> Self {
        JsGuest { id }
    }
}

/// Runs one event in the current turn (see the module's documentation).
async fn run(id: u64, event: Event) {
    EngineState::pump(id, |instance| instance.gate == 0).await;
    let Some(token) = dispatch::dispatch(id, event) else {
        return;
    };
    EngineState::pump(id, |instance| instance.gate == 0).await;
    dispatch::after_turn(token);
}

impl Guest for JsGuest {
    fn fetch(&mut self, req: Request) -> BoxFuture<'_, Result<Response>> {
        let id = self.id;
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            run(
                id,
                Event::Fetch(req, Reply::new(move |r| drop(reply.send(r)))),
            )
            .await;
            answer.await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Reset,
                    "the object went away before it answered",
                ))
            })
        })
    }

    fn serve(&mut self, req: Request, reply: Reply<Response>) -> BoxFuture<'_, ()> {
        Box::pin(run(self.id, Event::Fetch(req, reply)))
    }

    fn call(&mut self, method: String, args: Bytes, reply: Reply<Bytes>) -> BoxFuture<'_, ()> {
        Box::pin(run(self.id, Event::Call(method, args, reply)))
    }

    fn websocket_message(
        &mut self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> BoxFuture<'_, Result<()>> {
        let id = self.id;
        Box::pin(async move {
            run(id, Event::Message(ws, message)).await;
            Ok(())
        })
    }

    fn websocket_close(
        &mut self,
        ws: WebSocket,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> BoxFuture<'_, Result<()>> {
        let id = self.id;
        Box::pin(async move {
            run(id, Event::Close(ws, code, reason, was_clean)).await;
            Ok(())
        })
    }

    fn websocket_error(&mut self, ws: WebSocket, error: Error) -> BoxFuture<'_, Result<()>> {
        let id = self.id;
        Box::pin(async move {
            run(id, Event::Error(ws, error.text().to_owned())).await;
            Ok(())
        })
    }

    /// An alarm holds its turn until its handler settles: its outcome decides the retry.
    fn alarm(&mut self, info: AlarmInfo) -> BoxFuture<'_, Result<()>> {
        let id = self.id;
        Box::pin(async move {
            EngineState::pump(id, |instance| instance.gate == 0).await;
            if dispatch::dispatch(id, Event::Alarm(info.retry_count)).is_none() {
                return Err(Error::new(ErrorKind::Reset, "the object is gone"));
            }
            EngineState::pump(id, |instance| {
                instance.alarm_outcome.is_some() && instance.gate == 0
            })
            .await;
            let outcome = engine()
                .and_then(|engine| {
                    engine.with_instance(id, |instance| instance.alarm_outcome.take())
                })
                .flatten();
            match outcome {
                Some(Ok(())) => Ok(()),
                Some(Err(message)) => Err(Error::new(ErrorKind::User, message)),
                None => Err(Error::new(
                    ErrorKind::Reset,
                    "the alarm handler did not finish",
                )),
            }
        })
    }

    fn resume(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(EngineState::resume(self.id))
    }

    fn take_fault(&mut self) -> Option<String> {
        engine()
            .and_then(|engine| engine.with_instance(self.id, |instance| instance.fault.take()))
            .flatten()
    }
}

impl Drop for JsGuest {
    fn drop(&mut self) {
        if let Some(engine) = engine() {
            engine.remove_instance(self.id);
        }
    }
}
