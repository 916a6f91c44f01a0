//! The liveness sweep: finds peers that went silent and close handshakes that never end, and
//! returns the memory of output queues that emptied.
//!
//! Sockets have no timers of their own (an idle socket must stay small); one task per runtime
//! walks every socket a few times per ping interval instead.

use std::sync::Weak;
use std::time::Duration;

use dormouse_holder::clock_ms;

use crate::runtime::Shared;

/// Sweeps per ping interval (or timeout, whichever is shorter): a dead peer is found at most a
/// quarter interval late.
const SWEEPS_PER_INTERVAL: u32 = 4;

/// Pause between sweeps when pings are off: they then only return emptied queues.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(5);

/// Shortest pause between sweeps, so that tiny test intervals do not spin.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(10);

pub(crate) async fn run(shared: Weak<Shared>) {
    let period = {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let config = &shared.config;
        let base = match (
            config.ping_interval.is_zero(),
            config.ping_timeout.is_zero(),
        ) {
            (true, true) => HOUSEKEEPING_PERIOD * SWEEPS_PER_INTERVAL,
            (true, false) => config.ping_timeout,
            (false, true) => config.ping_interval,
            (false, false) => config.ping_interval.min(config.ping_timeout),
        };
        (base / SWEEPS_PER_INTERVAL).max(MIN_SWEEP_PERIOD)
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (interval, timeout) = (shared.config.ping_interval, shared.config.ping_timeout);
        let now = clock_ms();
        for cell in shared.registry.cells() {
            cell.sockets.check_liveness(now, interval, timeout);
        }
    }
}
