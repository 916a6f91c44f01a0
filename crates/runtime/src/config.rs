//! Runtime configuration: timeouts and limits, each with its default and the reason for it.

use std::sync::Arc;
use std::time::Duration;

/// How long an idle object that can hibernate stays in memory (Cloudflare: 10 s).
pub const DEFAULT_HIBERNATE_AFTER: Duration = Duration::from_secs(10);

/// How long an idle object that cannot hibernate (it holds standard sockets) stays in memory
/// (Cloudflare: 70–140 s; workerd's cleanup loop runs every 70 s).
pub const DEFAULT_EVICT_AFTER: Duration = Duration::from_secs(70);

/// Longest `wait_until` work keeps an object in memory (Cloudflare: 15 minutes); past it the work
/// is cancelled.
pub const DEFAULT_WAIT_UNTIL_LIMIT: Duration = Duration::from_secs(15 * 60);

/// First delay before retrying a failed alarm; it doubles with each retry (Cloudflare: 2 s).
pub const DEFAULT_ALARM_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Retries of a failing alarm before it is given up (Cloudflare: 6).
pub const ALARM_RETRIES: u32 = 6;

/// Longest an alarm handler may run before it counts as failed (Cloudflare: 15 minutes).
pub const ALARM_WALL_TIME: Duration = Duration::from_secs(15 * 60);

/// How long a socket may stay silent before the runtime pings it.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);

/// How long a pinged socket (or one whose close handshake started) may take to answer before its
/// connection is dropped as dead.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest accepted event timeout: 7 days, Cloudflare's bound for
/// `setHibernatableWebSocketEventTimeout`.
pub const MAX_EVENT_TIMEOUT: Duration = Duration::from_millis(604_800_000);

/// Limits applied to applications. The defaults are Cloudflare's, so that code written for Workers
/// behaves the same; each can be raised or lowered per server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Distinct tags per hibernatable socket (Cloudflare: 10).
    pub max_tags: usize,
    /// Bytes per tag, UTF-8 (Cloudflare: 256).
    pub max_tag_bytes: usize,
    /// Hibernatable sockets per object (Cloudflare: 32,768).
    pub max_sockets_per_object: usize,
    /// Bytes of an auto-response request or response (Cloudflare: 2,048).
    pub max_auto_response_bytes: usize,
    /// Auto-response pairs per object (Cloudflare allows one; Dormouse allows a few more).
    pub max_auto_response_pairs: usize,
    /// Serialized bytes of a socket attachment (Cloudflare: 16,384).
    pub max_attachment_bytes: usize,
    /// Bytes of a received message (Cloudflare: 32 MiB); larger ones close the socket with 1009.
    pub max_message_bytes: usize,
    /// Bytes waiting to be sent on one socket. A client that stops reading is disconnected once
    /// this much is queued for it (the object hears `websocket_close(1008, ..)`), so one stalled
    /// reader cannot make the server's memory grow nor slow a broadcast down.
    pub max_outbound_bytes: usize,
    /// Events waiting in one object's mailbox. Past it, HTTP requests get 503 ("overloaded") and
    /// sockets stop being read until the object catches up, so a slow object cannot make the
    /// server queue without bound.
    pub mailbox_capacity: usize,
    /// Bytes of message payload waiting in one object's mailbox, for the same reason.
    pub mailbox_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tags: 10,
            max_tag_bytes: 256,
            max_sockets_per_object: 32_768,
            max_auto_response_bytes: 2_048,
            max_auto_response_pairs: 8,
            max_attachment_bytes: 16_384,
            max_message_bytes: dormouse_ws::DEFAULT_MAX_MESSAGE_SIZE,
            max_outbound_bytes: 4 << 20,
            mailbox_capacity: 4_096,
            mailbox_bytes: 64 << 20,
        }
    }
}

/// Everything the runtime needs to know, fixed at start.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Idle time after which an object that can hibernate is dropped from memory while its
    /// hibernatable sockets stay open. Default 10 s; may be as short as a millisecond.
    pub hibernate_after: Duration,
    /// Idle time after which an object that cannot hibernate is evicted (its standard sockets are
    /// closed with 1001). Default 70 s.
    pub evict_after: Duration,
    /// Longest `wait_until` work keeps an object in memory. Default 15 min.
    pub wait_until_limit: Duration,
    /// First delay before a failed alarm is retried; doubles with each retry. Default 2 s.
    pub alarm_retry_delay: Duration,
    /// Silence after which a socket is pinged; zero disables pings. Default 30 s.
    pub ping_interval: Duration,
    /// Time a pinged socket has to answer, and a close handshake to complete, before the
    /// connection is dropped (reported as 1006). Default 10 s.
    pub ping_timeout: Duration,
    /// Limits applied to applications.
    pub limits: Limits,
    /// Consulted before every flush of committed writes; a flush it fails fails as if the disk
    /// had. `None` (the default) in production: for tests of what clients see when storage is
    /// lost.
    pub flush_fault: Option<FlushFault>,
}

/// Decides, before each flush, whether it fails (see [`RuntimeConfig::flush_fault`]).
#[derive(Clone)]
pub struct FlushFault(Arc<FaultDecision>);

type FaultDecision = dyn Fn(&FlushAttempt) -> Result<(), String> + Send + Sync;

/// A flush about to run, as [`FlushFault`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FlushAttempt {
    /// Turns with writes the object committed since it was loaded; the flush covers them all.
    pub writes: u64,
}

impl FlushFault {
    /// A fault that runs `decide` before each flush: `Err(message)` fails that flush.
    pub fn new(
        decide: impl Fn(&FlushAttempt) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        FlushFault(Arc::new(decide))
    }

    pub(crate) fn check(&self, attempt: &FlushAttempt) -> Result<(), String> {
        (self.0)(attempt)
    }
}

impl std::fmt::Debug for FlushFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushFault(..)")
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            hibernate_after: DEFAULT_HIBERNATE_AFTER,
            evict_after: DEFAULT_EVICT_AFTER,
            wait_until_limit: DEFAULT_WAIT_UNTIL_LIMIT,
            alarm_retry_delay: DEFAULT_ALARM_RETRY_DELAY,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            limits: Limits::default(),
            flush_fault: None,
        }
    }
}
