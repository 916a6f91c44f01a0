//! The SDK's [`SocketHost`] for a record: what `WebSocket` methods do, with Cloudflare's errors.

use std::any::Any;
use std::cell::OnceCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use dormouse_sdk::host::SocketHost;
use dormouse_sdk::{Error, ErrorKind, EventStream, Outgoing, ReadyState, WebSocketId};
use dormouse_ws::close::{self, CloseFrame};
use dormouse_ws::frame::Opcode;
use dormouse_ws::{deflate, encode};

use super::SocketRecord;
use super::output::WriteNow;
use super::state::{DISCONNECTED, Link, Mode, Reporting};
use crate::config::SocketLimits;
use crate::events;
use crate::owner::{SocketEvent, deliver_waiting};

/// Cloudflare's error for sending on (or closing) a socket nobody accepted.
const NOT_ACCEPTED: &str = "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.";

impl SocketHost for SocketRecord {
    fn id(&self) -> WebSocketId {
        self.id
    }

    fn send(&self, message: Outgoing<'_>) -> dormouse_sdk::Result<()> {
        let mut inner = self.lock();
        if matches!(inner.mode, Mode::Unaccepted) {
            return Err(Error::new(ErrorKind::Type, NOT_ACCEPTED));
        }
        if inner.closed_by_app {
            return Err(Error::new(
                ErrorKind::Type,
                "Can't call WebSocket send() after close().",
            ));
        }
        // After the peer (or the runtime) closed the connection, sends are dropped silently.
        if inner.handshake.output_ended() {
            return Ok(());
        }
        let compress = inner.compresses();
        let (opcode, payload) = opcode_and_payload(message);
        let direct = inner.group.take_direct_send();
        let plain = !compress || payload.len() < deflate::MIN_COMPRESSED_BYTES;
        if direct && plain && inner.held.is_none() && !inner.group.gate.is_closed() {
            let max = inner.max_outbound();
            match inner.write_now(opcode, payload, max) {
                WriteNow::Done => return Ok(()),
                WriteNow::NeedsDriver => {
                    drop(inner);
                    self.schedule();
                    return Ok(());
                }
                WriteNow::NotStarted => {}
            }
        }
        let frame = encode::message_frame(opcode, payload, compress);
        inner.count_if_compressed(&frame);
        self.send_app(&mut inner, frame, !direct);
        Ok(())
    }

    fn close(&self, code: Option<u16>, reason: Option<&str>) -> dormouse_sdk::Result<()> {
        if let Some(code) = code
            && !close::is_valid_application_code(code)
        {
            return Err(Error::new(
                ErrorKind::InvalidAccess,
                format!("Invalid WebSocket close code: {code}."),
            ));
        }
        if reason.is_some_and(|r| r.len() > close::MAX_REASON_BYTES) {
            return Err(Error::new(
                ErrorKind::Syntax,
                "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded.",
            ));
        }
        if reason.is_some() && code.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidAccess,
                "If you specify a WebSocket close reason, you must also specify a code.",
            ));
        }
        let mut inner = self.lock();
        if inner.handshake.output_ended() {
            return Ok(());
        }
        if matches!(inner.mode, Mode::Unaccepted) {
            return Err(Error::new(ErrorKind::Type, NOT_ACCEPTED));
        }
        let close = code.map(|code| CloseFrame {
            code,
            reason: reason.unwrap_or_default().to_owned(),
        });
        // The close frame is application output: it waits behind the gate like a message.
        self.send_app(&mut inner, encode::close_frame(close.as_ref(), None), false);
        let timeout = inner.group.settings.close_timeout;
        inner.handshake = inner.handshake.sent(super::output::deadline_after(timeout));
        inner.closed_by_app = true;
        drop(inner);
        // The driver finishes the socket once the peer answers (or flushes a pending close).
        self.schedule();
        Ok(())
    }

    fn ready_state(&self) -> ReadyState {
        self.lock().handshake.ready_state()
    }

    fn protocol(&self) -> Option<String> {
        self.lock().protocol.as_deref().cloned()
    }

    fn set_attachment(&self, serialized: Vec<u8>) -> dormouse_sdk::Result<()> {
        let mut inner = self.lock();
        let max = inner.group.settings.limits.max_attachment_bytes;
        if serialized.len() > max {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "A WebSocket 'attachment' cannot be larger than {max} bytes.'attachment' was {} bytes.",
                    serialized.len()
                ),
            ));
        }
        inner.attachment = Some(Arc::from(serialized));
        self.report_state(&mut inner);
        Ok(())
    }

    fn attachment(&self) -> Option<Bytes> {
        self.lock().attachment.clone().map(Bytes::from_owner)
    }

    fn tags(&self) -> dormouse_sdk::Result<Vec<String>> {
        match &self.lock().mode {
            Mode::Hibernatable { tags } => Ok(tags.iter().map(|t| t.to_string()).collect()),
            Mode::Standard(_) => Err(not_hibernatable()),
            Mode::Unaccepted => Err(Error::new(
                ErrorKind::InvalidState,
                "you must call 'acceptWebSocket()' before attempting to access the tags of a WebSocket.",
            )),
        }
    }

    fn add_tag(&self, tag: &str) -> dormouse_sdk::Result<()> {
        let mut inner = self.lock();
        let limits = inner.group.settings.limits.clone();
        check_tag_length(tag, &limits)?;
        let Mode::Hibernatable { tags } = &mut inner.mode else {
            return Err(not_hibernatable());
        };
        if tags.iter().any(|t| &**t == tag) {
            return Ok(());
        }
        if tags.len() >= limits.max_tags {
            return Err(too_many_tags(&limits));
        }
        let mut grown = std::mem::take(tags).into_vec();
        grown.push(tag.into());
        *tags = grown.into_boxed_slice();
        self.report_state(&mut inner);
        Ok(())
    }

    fn remove_tag(&self, tag: &str) -> dormouse_sdk::Result<bool> {
        let mut inner = self.lock();
        let Mode::Hibernatable { tags } = &mut inner.mode else {
            return Err(not_hibernatable());
        };
        let before = tags.len();
        let kept: Vec<Box<str>> = std::mem::take(tags)
            .into_vec()
            .into_iter()
            .filter(|t| &**t != tag)
            .collect();
        *tags = kept.into_boxed_slice();
        let removed = tags.len() != before;
        if removed {
            self.report_state(&mut inner);
        }
        Ok(removed)
    }

    fn accept(self: Arc<Self>) -> dormouse_sdk::Result<()> {
        let group = self.group();
        let mut sockets = group.sockets();
        let mut inner = self.lock();
        match inner.mode {
            Mode::Hibernatable { .. } => Err(Error::new(
                ErrorKind::Type,
                "Can't accept() WebSocket after enabling hibernation.",
            )),
            Mode::Standard(_) => Ok(()),
            Mode::Unaccepted => {
                inner.mode = Mode::Standard(Arc::new(events::Channel::new()));
                sockets.insert(self.clone(), false);
                group
                    .settings
                    .counters
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                drop(inner);
                drop(sockets);
                // Frames may already be waiting: start reading them.
                self.schedule();
                Ok(())
            }
        }
    }

    fn events(&self) -> dormouse_sdk::Result<EventStream> {
        match &self.lock().mode {
            Mode::Standard(channel) => channel.take_stream(),
            Mode::Hibernatable { .. } => Err(Error::new(
                ErrorKind::InvalidState,
                "events() is not available on a hibernatable WebSocket: its events go to the object's handlers",
            )),
            Mode::Unaccepted => Err(Error::new(
                ErrorKind::InvalidState,
                "call accept() before events()",
            )),
        }
    }

    fn couple(&self) -> dormouse_sdk::Result<()> {
        let mut inner = self.lock();
        match inner.link {
            Link::Pending => {
                inner.link = Link::Coupled;
                Ok(())
            }
            _ => Err(Error::new(
                ErrorKind::Type,
                "Can't return WebSocket that was already used in a response.",
            )),
        }
    }

    fn abandon(self: Arc<Self>) {
        let owner = {
            let mut inner = self.lock();
            if !matches!(inner.link, Link::Pending | Link::Coupled) {
                return;
            }
            inner.link = Link::Detached;
            inner.lose_connection();
            let report = inner.reporting == Reporting::Open
                && matches!(inner.mode, Mode::Hibernatable { .. });
            if report {
                inner.reporting = Reporting::Ended;
            }
            report.then(|| inner.group.owner()).flatten()
        };
        // Every accepted socket ends with exactly one event, even one that never connected.
        if let Some(owner) = owner
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let event = SocketEvent::Close {
                code: close::ABNORMAL,
                reason: DISCONNECTED.into(),
                was_clean: false,
            };
            runtime.spawn(deliver_waiting(owner, self, event));
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

fn opcode_and_payload(message: Outgoing<'_>) -> (Opcode, &[u8]) {
    match message {
        Outgoing::Text(text) => (Opcode::Text, text.as_bytes()),
        Outgoing::Binary(data) => (Opcode::Binary, data),
    }
}

/// One message sent to many sockets: encoded once plainly and, for the recipients that agreed
/// to permessage-deflate, compressed once, on first need.
#[derive(Debug)]
pub(crate) struct BroadcastFrames<'a> {
    opcode: Opcode,
    payload: &'a [u8],
    plain: OnceCell<Bytes>,
    compressed: OnceCell<Bytes>,
}

impl<'a> BroadcastFrames<'a> {
    /// The frames of `message`, encoded as recipients need them.
    pub(crate) fn new(message: Outgoing<'a>) -> Self {
        let (opcode, payload) = opcode_and_payload(message);
        BroadcastFrames {
            opcode,
            payload,
            plain: OnceCell::new(),
            compressed: OnceCell::new(),
        }
    }

    /// The frame for a connection that does (`compress`) or does not compress.
    pub(crate) fn frame(&self, compress: bool) -> Bytes {
        let plain = || encode::frame(true, self.opcode, self.payload, None);
        if compress {
            self.compressed
                .get_or_init(|| encode::message_frame(self.opcode, self.payload, true))
                .clone()
        } else {
            self.plain.get_or_init(plain).clone()
        }
    }
}

/// Validates tags given at accept time, with Cloudflare's rules and messages: duplicates are
/// dropped; once the maximum number of distinct tags is reached, any further tag fails.
pub(crate) fn validate_tags(
    tags: &[&str],
    limits: &SocketLimits,
) -> dormouse_sdk::Result<Box<[Box<str>]>> {
    let mut distinct: Vec<Box<str>> = Vec::with_capacity(tags.len().min(limits.max_tags));
    for tag in tags {
        if distinct.len() >= limits.max_tags {
            return Err(too_many_tags(limits));
        }
        check_tag_length(tag, limits)?;
        if !distinct.iter().any(|t| &**t == *tag) {
            distinct.push((*tag).into());
        }
    }
    Ok(distinct.into_boxed_slice())
}

fn check_tag_length(tag: &str, limits: &SocketLimits) -> dormouse_sdk::Result<()> {
    if tag.len() > limits.max_tag_bytes {
        return Err(Error::new(
            ErrorKind::InvalidState,
            format!(
                "\"{tag}\" is longer than the max tag length ({} characters).",
                limits.max_tag_bytes
            ),
        ));
    }
    Ok(())
}

fn too_many_tags(limits: &SocketLimits) -> Error {
    Error::new(
        ErrorKind::InvalidState,
        format!(
            "a Hibernatable WebSocket cannot have more than {} tags",
            limits.max_tags
        ),
    )
}

fn not_hibernatable() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "only hibernatable websockets can have tags.",
    )
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
