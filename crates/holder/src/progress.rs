//! How far a connection's output has got, so that a ping stuck behind a backlog is not taken for
//! a dead peer.
//!
//! A ping queued behind output cannot be answered before the peer has read what is ahead of it.
//! While it is on its way, the time to answer is restarted whenever the delay is not the peer's
//! fault: the peer acknowledged more data (it is reading), or the ping still sits in our own
//! queue while the kernel holds nothing unacknowledged (we have not written yet). A peer that
//! vanished acknowledges nothing, so its unacknowledged data stays in the kernel and it runs out
//! of time as usual.

/// Positions in the connection's output stream, in bytes since the connection started.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutputProgress {
    /// Handed to the kernel.
    written: u64,
    /// Where the last ping ends.
    ping_end: u64,
    /// Acknowledged by the peer, when last looked at.
    acknowledged: u64,
}

impl OutputProgress {
    /// The kernel took `bytes` more.
    pub(crate) fn wrote(&mut self, bytes: usize) {
        self.written += bytes as u64;
    }

    /// A ping was just queued, `queued` bytes of output (the ping included) are not written yet,
    /// and the kernel holds `unacknowledged` bytes the peer has not acknowledged.
    pub(crate) fn ping_queued(&mut self, queued: usize, unacknowledged: u64) {
        self.ping_end = self.written + queued as u64;
        self.acknowledged = self.written.saturating_sub(unacknowledged);
    }

    /// Whether the peer's time to answer the ping should restart; `unacknowledged` asks the
    /// kernel, only while the ping has not reached the peer.
    pub(crate) fn ping_held_up(&mut self, unacknowledged: impl FnOnce() -> u64) -> bool {
        if self.acknowledged >= self.ping_end {
            return false;
        }
        let unacknowledged = unacknowledged();
        let acknowledged = self.written.saturating_sub(unacknowledged);
        let peer_reading = acknowledged > self.acknowledged;
        let ours = unacknowledged == 0 && self.written < self.ping_end;
        self.acknowledged = acknowledged;
        peer_reading || ours
    }

    /// For logs: (written, acknowledged, ping end).
    pub(crate) fn positions(&self) -> (u64, u64, u64) {
        (self.written, self.acknowledged, self.ping_end)
    }
}

#[cfg(test)]
mod tests {
    use super::OutputProgress;

    #[test]
    fn a_ping_written_at_once_to_a_silent_peer_is_not_held_up() {
        let mut progress = OutputProgress::default();
        progress.wrote(10);
        progress.ping_queued(0, 10);
        assert!(!progress.ping_held_up(|| 10), "nothing acknowledged");
        // Once the peer acknowledged the ping, it has it: no more waiting for it.
        assert!(progress.ping_held_up(|| 0), "the ping arrived just now");
        assert!(!progress.ping_held_up(|| unreachable!("the ping has arrived")));
    }

    #[test]
    fn a_peer_reading_a_backlog_keeps_its_time() {
        let mut progress = OutputProgress::default();
        progress.wrote(1_000_000);
        progress.ping_queued(500_010, 900_000);
        assert!(
            progress.ping_held_up(|| 800_000),
            "100,000 more acknowledged"
        );
        assert!(!progress.ping_held_up(|| 800_000), "stalled since");
        progress.wrote(200_000);
        assert!(
            progress.ping_held_up(|| 900_000),
            "read more of what was written"
        );
    }

    #[test]
    fn a_ping_still_in_our_queue_waits_for_us_not_for_the_peer() {
        let mut progress = OutputProgress::default();
        progress.wrote(5_000);
        progress.ping_queued(300_000, 0);
        assert!(
            progress.ping_held_up(|| 0),
            "the kernel has nothing left to deliver"
        );
        // Our output now waits in the kernel, unacknowledged: the peer must make progress.
        progress.wrote(100_000);
        assert!(!progress.ping_held_up(|| 100_000));
    }

    #[test]
    fn a_vanished_peer_is_not_held_up_by_anything() {
        let mut progress = OutputProgress::default();
        progress.wrote(64_000);
        progress.ping_queued(100_000, 64_000);
        for _ in 0..3 {
            assert!(!progress.ping_held_up(|| 64_000));
        }
    }
}
