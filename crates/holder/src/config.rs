//! What the sockets of one owner kind share: their limits, how they close, their counters and
//! the drivers that poll them. Given when a group is built; the holder never looks further up.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::driver::Drivers;

/// Per-socket limits. The runtime fills them from its own (Cloudflare's defaults).
#[derive(Debug, Clone)]
pub struct SocketLimits {
    /// Distinct tags per hibernatable socket.
    pub max_tags: usize,
    /// Bytes per tag, UTF-8.
    pub max_tag_bytes: usize,
    /// Hibernatable sockets per owner.
    pub max_sockets_per_owner: usize,
    /// Serialized bytes of a socket attachment.
    pub max_attachment_bytes: usize,
    /// Bytes of a received message; larger ones close the socket with 1009.
    pub max_message_bytes: usize,
    /// Bytes waiting to be sent on one socket; past it the peer is taken as not reading and its
    /// connection is dropped.
    pub max_outbound_bytes: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            max_tags: 10,
            max_tag_bytes: 256,
            max_sockets_per_owner: 32_768,
            max_attachment_bytes: 16_384,
            max_message_bytes: dormouse_ws::DEFAULT_MAX_MESSAGE_SIZE,
            max_outbound_bytes: 4 << 20,
        }
    }
}

/// When a client's close frame is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseReply {
    /// At once, with the client's code and reason, before the object hears of it (Cloudflare
    /// from compatibility date 2026-04-07, `web_socket_auto_reply_to_close`). `readyState` is
    /// `CLOSED` in `websocket_close`, and a `close()` there is ignored.
    #[default]
    Immediate,
    /// After the object's close handler ran: a `close(code, reason)` in the handler is the
    /// answer (older Cloudflare code does this); if the handler sent none, the runtime answers
    /// with the client's code and reason then, so a client never waits for one that never comes.
    /// `readyState` is `CLOSING` in the handler.
    AfterHandler,
}

/// Counters the holder bumps; the runtime renders them.
#[derive(Debug, Default)]
pub struct SocketCounters {
    /// Sockets accepted (hibernatable or standard).
    pub accepted: AtomicU64,
    /// Text or binary messages answered by an auto-response, without the owner.
    pub auto_responses: AtomicU64,
    /// Protocol pings answered with a pong.
    pub pongs: AtomicU64,
    /// Messages sent compressed (permessage-deflate), per recipient.
    pub compressed_sent: AtomicU64,
    /// Messages received compressed, inflated.
    pub compressed_received: AtomicU64,
    /// Connections dropped because the client stopped reading while output piled up.
    pub dropped_slow_reader: AtomicU64,
    /// Connections dropped because the client stopped answering pings.
    pub dropped_unresponsive: AtomicU64,
    /// Connections dropped because the client did not complete a close handshake.
    pub dropped_close_timeout: AtomicU64,
}

/// Everything a group of sockets is given when it is built.
#[derive(Debug)]
pub struct SocketSettings {
    /// The limits of each socket.
    pub limits: SocketLimits,
    /// How long a close handshake may take before the connection is dropped.
    pub close_timeout: Duration,
    /// When clients' close frames are answered.
    pub close_reply: CloseReply,
    /// What the holder counts.
    pub counters: SocketCounters,
    /// The drivers that poll the sockets.
    pub drivers: Arc<Drivers>,
}

/// What the HTTP handshake settled for one connection.
#[derive(Debug, Default)]
pub struct Negotiated {
    /// The subprotocol the owner chose among the client's offers.
    pub protocol: Option<String>,
    /// permessage-deflate without context takeover was agreed: messages the client compressed
    /// are inflated, and messages worth it are compressed.
    pub compression: bool,
    /// Held as long as the connection is open (a per-address count, say), dropped with it.
    pub lease: Option<ConnectionLease>,
    /// The connection is a peer node relaying the socket for its client (cluster mode): it is
    /// told the socket's tags and attachment, and that the object moved, in relay frames.
    pub relayed: bool,
}

/// Something kept alive for as long as a connection is open; dropping it is the signal that the
/// connection closed.
pub struct ConnectionLease(#[allow(dead_code, reason = "held for its drop")] Box<dyn Send + Sync>);

impl ConnectionLease {
    /// A lease holding `value` until the connection closes.
    pub fn new(value: impl Send + Sync + 'static) -> Self {
        ConnectionLease(Box::new(value))
    }
}

impl std::fmt::Debug for ConnectionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionLease(..)")
    }
}
