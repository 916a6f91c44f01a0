//! What the object's live log says of its envelopes and of its lifecycle, in words; described
//! only while somebody watches the object.

use std::time::Duration;

use dormouse_holder::SocketEvent;
use dormouse_sdk::WebSocketIncomingMessage;

use super::{Envelope, ObjectCell};
use crate::event_log::{EventKind, LoggedEvent};

impl Envelope {
    /// The log entry's kind and detail for this envelope, if it is an event of the object's.
    pub(super) fn describe(&self) -> Option<(EventKind, String)> {
        Some(match self {
            Envelope::Fetch { request, .. } => (
                EventKind::Fetch,
                format!("{} {}", request.method(), request.uri()),
            ),
            Envelope::Call { method, args, .. } => (
                EventKind::Call,
                format!("{method}(), {} bytes of arguments", args.len()),
            ),
            Envelope::Socket { socket, event } => {
                let socket = socket.id();
                match event {
                    SocketEvent::Message(WebSocketIncomingMessage::String(text)) => (
                        EventKind::Message,
                        format!("socket {socket}: text, {} bytes", text.len()),
                    ),
                    SocketEvent::Message(WebSocketIncomingMessage::Binary(data)) => (
                        EventKind::Message,
                        format!("socket {socket}: binary, {} bytes", data.len()),
                    ),
                    SocketEvent::Close {
                        code,
                        reason,
                        was_clean,
                    } => {
                        let mut detail = format!("socket {socket}: code {code}");
                        if !reason.is_empty() {
                            detail.push_str(", ");
                            detail.push_str(reason);
                        }
                        if !was_clean {
                            detail.push_str(" (connection lost)");
                        }
                        (EventKind::Close, detail)
                    }
                    SocketEvent::Error(error) => {
                        (EventKind::Error, format!("socket {socket}: {error}"))
                    }
                }
            }
            Envelope::Alarm {
                scheduled_ms,
                retry,
            } => {
                let mut detail = format!("set for {scheduled_ms} ms since the epoch");
                if *retry > 0 {
                    detail.push_str(&format!(", retry {retry}"));
                }
                (EventKind::Alarm, detail)
            }
            Envelope::Resume | Envelope::Control(_) => return None,
        })
    }
}

impl ObjectCell {
    /// Adds an entry to the object's live log, if somebody watches it; `detail` is only built
    /// then.
    pub(super) fn log(&self, kind: EventKind, detail: impl FnOnce() -> String) {
        self.namespace
            .event_log
            .record(&self.raw, || LoggedEvent::now(kind, detail()));
    }

    /// Adds the entry of an envelope whose handling took `took`, dated from its start.
    pub(super) fn log_handled(&self, (kind, detail): (EventKind, String), took: Duration) {
        self.namespace.event_log.record(&self.raw, || {
            let ended = LoggedEvent::now(kind, detail);
            LoggedEvent {
                at_ms: ended.at_ms.saturating_sub(took.as_millis() as u64),
                took: Some(took),
                ..ended
            }
        });
    }

    /// Whether somebody watches this object's log: only then are its envelopes described.
    pub(super) fn is_logged(&self) -> bool {
        self.namespace.event_log.watches(&self.raw)
    }
}
