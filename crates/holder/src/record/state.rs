//! The states a socket moves through: how it was accepted, where its connection is, how far its
//! close handshake got, whether it still reports events, and why the runtime ended it.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use dormouse_ws::close;

use crate::config::{SocketCounters, SocketLimits};
use crate::events;
use crate::io::Connection;

/// The reason reported when a connection ends without a close frame (Cloudflare's text).
pub(crate) const DISCONNECTED: &str = "WebSocket disconnected without sending Close frame.";

/// A time on the holder's clock ([`crate::clock_ms`]), in milliseconds; never zero, so that
/// `Option<Tick>` costs no more than the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(NonZeroU64);

impl Tick {
    pub(crate) fn at(ms: u64) -> Tick {
        Tick(NonZeroU64::new(ms.max(1)).expect("at least 1"))
    }

    pub(crate) fn ms(self) -> u64 {
        self.0.get()
    }
}

/// How a socket is accepted.
pub(crate) enum Mode {
    /// Not yet accepted: sends fail, frames are not read.
    Unaccepted,
    /// Accepted with `State::accept_web_socket`: events go to the owner.
    Hibernatable { tags: Box<[Box<str>]> },
    /// Accepted with `WebSocket::accept`: events go to the socket's own stream.
    Standard(Arc<events::Channel>),
}

/// Where the socket's network connection is.
pub(crate) enum Link {
    /// The client end has not been returned in a response yet.
    Pending,
    /// The client end is in a 101 response on its way to a connection.
    Coupled,
    /// Connected.
    Attached(Connection),
    /// The connection is closed (or never came).
    Detached,
}

/// The close handshake (RFC 6455 §7), as far as it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// No close frame either way.
    Open,
    /// Our close frame is queued or sent; the peer's has not come.
    Sent { deadline: Tick },
    /// The peer's close frame came (or reading stopped for good); ours is not sent yet: the
    /// owner answers after its handler ([`crate::CloseReply::AfterHandler`]).
    Received { deadline: Tick },
    /// Both ways: what is queued is flushed, then the connection is dropped.
    Complete { deadline: Tick },
    /// The connection is lost (or the runtime dropped it): nothing more is sent or read.
    Lost,
}

impl Handshake {
    /// Nothing more is read: the peer's close came, or reading stopped for good.
    pub(crate) fn input_ended(self) -> bool {
        matches!(
            self,
            Handshake::Received { .. } | Handshake::Complete { .. } | Handshake::Lost
        )
    }

    /// No more frames may be sent: a close frame went out, or the connection is gone.
    pub(crate) fn output_ended(self) -> bool {
        matches!(
            self,
            Handshake::Sent { .. } | Handshake::Complete { .. } | Handshake::Lost
        )
    }

    /// When the connection is dropped if the handshake has not ended.
    pub(crate) fn deadline(self) -> Option<Tick> {
        match self {
            Handshake::Sent { deadline }
            | Handshake::Received { deadline }
            | Handshake::Complete { deadline } => Some(deadline),
            Handshake::Open | Handshake::Lost => None,
        }
    }

    /// Our close frame is queued; a handshake under way keeps its deadline.
    pub(crate) fn sent(self, deadline: Tick) -> Handshake {
        match self {
            Handshake::Open => Handshake::Sent { deadline },
            Handshake::Received { deadline } => Handshake::Complete { deadline },
            other => other,
        }
    }

    /// Nothing more will be read (the peer's close frame, or the runtime stopped reading).
    pub(crate) fn received(self, deadline: Tick) -> Handshake {
        match self {
            Handshake::Open => Handshake::Received { deadline },
            Handshake::Sent { deadline } => Handshake::Complete { deadline },
            other => other,
        }
    }

    pub(crate) fn ready_state(self) -> dormouse_sdk::ReadyState {
        use dormouse_sdk::ReadyState;
        match self {
            Handshake::Open => ReadyState::Open,
            Handshake::Sent { .. } | Handshake::Received { .. } => ReadyState::Closing,
            Handshake::Complete { .. } | Handshake::Lost => ReadyState::Closed,
        }
    }
}

/// Whether the socket still reports events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporting {
    /// Events flow to the owner (or the standard stream).
    Open,
    /// The last event (close or error) was produced; nothing more is read.
    Ended,
    /// The owner was reset or the socket terminated: no event is delivered any more.
    Silenced,
}

/// Why the runtime dropped a connection, reported in the owner's close event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum EndCause {
    /// The connection ended without a close frame (or could not be written to).
    #[default]
    Lost,
    /// The client stopped reading while output piled up.
    Overflow,
    /// The peer stopped answering pings.
    Silent,
    /// The close handshake did not complete in time.
    CloseTimeout,
}

impl EndCause {
    /// The counter of connections dropped for this cause; none when the peer went away itself.
    pub(crate) fn drop_counter(self, counters: &SocketCounters) -> Option<&AtomicU64> {
        match self {
            EndCause::Lost => None,
            EndCause::Overflow => Some(&counters.dropped_slow_reader),
            EndCause::Silent => Some(&counters.dropped_unresponsive),
            EndCause::CloseTimeout => Some(&counters.dropped_close_timeout),
        }
    }

    /// The close code and reason the owner is told.
    pub(crate) fn close(self, limits: &SocketLimits) -> (u16, String) {
        match self {
            EndCause::Lost => (close::ABNORMAL, DISCONNECTED.to_owned()),
            EndCause::Overflow => (
                close::POLICY_VIOLATION,
                format!(
                    "the client is not reading: over {} bytes were waiting to be sent",
                    limits.max_outbound_bytes
                ),
            ),
            EndCause::Silent => (
                close::ABNORMAL,
                "WebSocket peer stopped answering pings.".to_owned(),
            ),
            EndCause::CloseTimeout => (
                close::ABNORMAL,
                "WebSocket close handshake was not completed in time.".to_owned(),
            ),
        }
    }
}
