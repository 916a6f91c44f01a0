//! Liveness of one socket: pings a silent peer, drops one that stopped answering or whose close
//! handshake ran past its deadline, and returns the memory of an emptied output queue.

use std::time::Duration;

use dormouse_ws::encode;

use super::SocketRecord;
use super::output::has_queued;
use super::state::{EndCause, Handshake, Link, Tick};

/// Milliseconds on a monotonic clock shared by every socket of the process; never zero.
pub fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

impl SocketRecord {
    /// Called by the liveness sweep at `now` ([`clock_ms`]): pings a socket that has been silent
    /// for `interval` (zero: never), and drops the connection of one that did not answer within
    /// `timeout`, or whose close handshake ran past its deadline.
    pub(crate) fn check_liveness(&self, now: u64, interval: Duration, timeout: Duration) {
        let mut inner = self.lock();
        if inner.handshake == Handshake::Lost || !matches!(inner.link, Link::Attached(_)) {
            return;
        }
        if !has_queued(&inner.outbound) {
            // Idle sockets hold no buffers; a busy one keeps its queue between bursts.
            inner.outbound = None;
        }
        let dead = if let Some(deadline) = inner.handshake.deadline() {
            (now >= deadline.ms()).then_some(EndCause::CloseTimeout)
        } else if interval.is_zero() {
            None
        } else if let Some(sent) = inner.ping_sent {
            if inner.ping_held_up_by_backlog() {
                inner.ping_sent = Some(Tick::at(now));
            }
            let waited = now.saturating_sub(inner.ping_sent.map_or(sent.ms(), Tick::ms));
            (waited >= timeout.as_millis() as u64).then_some(EndCause::Silent)
        } else {
            if now.saturating_sub(inner.last_heard.ms()) >= interval.as_millis() as u64 {
                inner.ping_sent = Some(Tick::at(now));
                self.enqueue(&mut inner, encode::ping_frame(b"dormouse", None));
                inner.note_ping_position();
            }
            None
        };
        if let Some(cause) = dead {
            if let Link::Attached(connection) = &inner.link {
                let (written, acknowledged, ping_end) = connection.progress.positions();
                tracing::debug!(
                    socket = %self.id,
                    ?cause,
                    written,
                    acknowledged,
                    ping_end,
                    queued = inner.outbound.as_ref().map_or(0, |outbound| outbound.bytes),
                    "dropping an unresponsive connection"
                );
            }
            inner.lose_connection();
            inner.end = cause;
            drop(inner);
            self.schedule();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clock_ms;

    #[tokio::test]
    async fn the_clock_counts_real_milliseconds_and_is_never_zero() {
        let before = clock_ms();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let after = clock_ms();
        assert!(before >= 1);
        assert!(
            (30..5_000).contains(&(after - before)),
            "{before} then {after}"
        );
    }
}
