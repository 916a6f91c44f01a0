//! Counters per namespace and their Prometheus text rendering.
//!
//! Counters are atomics bumped on the hot path. Gauges (objects active or hibernated, sockets
//! open) are read from the registry when metrics are scraped, so they can never drift from the
//! truth.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use dormouse_holder::SocketCounters;

/// Upper bounds (seconds) of the wake-latency histogram buckets: wakes are expected to take tens of
/// microseconds, so the buckets are fine-grained there.
const WAKE_BUCKETS: [f64; 10] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05, 0.25,
];

/// Counters of one namespace.
#[derive(Debug, Default)]
pub(crate) struct NamespaceMetrics {
    /// Instances constructed, for any reason.
    pub(crate) starts: AtomicU64,
    /// Instances constructed for an object that was hibernated (had open sockets, no instance).
    pub(crate) wakes: AtomicU64,
    /// Instances dropped because they were idle and could hibernate.
    pub(crate) hibernations: AtomicU64,
    /// Instances dropped because they were idle for `evict_after` and could not hibernate.
    pub(crate) evictions: AtomicU64,
    /// Objects reset by a panic or a timeout.
    pub(crate) resets: AtomicU64,
    /// Handler invocations, by event kind.
    pub(crate) events: EventCounters,
    /// Requests refused because the mailbox was full.
    pub(crate) overloaded: AtomicU64,
    /// Alarm attempts that failed and were scheduled again (or given up).
    pub(crate) alarm_retries: AtomicU64,
    /// Alarm handler invocations.
    pub(crate) alarms: AtomicU64,
    /// Turns whose writes were committed to be flushed (full durability).
    pub(crate) commits: AtomicU64,
    /// Flushes that made commits durable; `commits / flushes` is the turns per flush.
    pub(crate) flushes: AtomicU64,
    wake_latency: Histogram,
}

/// Handler invocations by kind.
#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    pub(crate) fetch: AtomicU64,
    /// RPC calls of a guest's methods.
    pub(crate) call: AtomicU64,
    pub(crate) message: AtomicU64,
    pub(crate) close: AtomicU64,
    pub(crate) error: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; WAKE_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl NamespaceMetrics {
    /// Records the time from an event's arrival at a hibernated object to its handler starting.
    pub(crate) fn observe_wake(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in WAKE_BUCKETS.iter().zip(&self.wake_latency.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.wake_latency.count.fetch_add(1, Relaxed);
        self.wake_latency
            .sum_nanos
            .fetch_add(latency.as_nanos() as u64, Relaxed);
    }
}

/// Gauges of one namespace, counted from the registry at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct NamespaceGauges {
    /// Objects with an instance in memory.
    pub active: u64,
    /// Objects without an instance whose sockets are still open.
    pub hibernated: u64,
    /// Open sockets accepted by objects of the namespace.
    pub websockets: u64,
}

/// One namespace's metrics, as rendered: (binding, counters, its sockets' counters, gauges).
pub(crate) type NamespaceRow<'a> = (
    &'a str,
    &'a NamespaceMetrics,
    &'a SocketCounters,
    NamespaceGauges,
);

/// A gauge: name, help text, how to read it.
type GaugeSpec = (&'static str, &'static str, fn(&NamespaceGauges) -> u64);

/// A counter: name, help text, where it is.
type CounterSpec = (
    &'static str,
    &'static str,
    fn(&NamespaceMetrics) -> &AtomicU64,
);

/// A counter of the socket holder: name, help text, where it is.
type SocketCounterSpec = (
    &'static str,
    &'static str,
    fn(&SocketCounters) -> &AtomicU64,
);

/// Renders every namespace's metrics in the Prometheus text exposition format.
pub(crate) fn render(namespaces: &[NamespaceRow<'_>]) -> String {
    let mut out = String::with_capacity(4096);
    let gauges: [GaugeSpec; 3] = [
        (
            "dormouse_objects_active",
            "Objects with an instance in memory.",
            |g| g.active,
        ),
        (
            "dormouse_objects_hibernated",
            "Objects without an instance whose hibernatable sockets are open.",
            |g| g.hibernated,
        ),
        (
            "dormouse_websockets_open",
            "Accepted WebSockets that are open.",
            |g| g.websockets,
        ),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (ns, _, _, g) in namespaces {
            let _ = writeln!(out, "{name}{{namespace=\"{ns}\"}} {}", get(g));
        }
    }
    let counters: [CounterSpec; 11] = [
        (
            "dormouse_object_starts_total",
            "Object instances constructed.",
            |m| &m.starts,
        ),
        (
            "dormouse_object_wakes_total",
            "Instances constructed for hibernated objects.",
            |m| &m.wakes,
        ),
        (
            "dormouse_object_hibernations_total",
            "Idle instances dropped while their sockets stayed open.",
            |m| &m.hibernations,
        ),
        (
            "dormouse_object_evictions_total",
            "Idle instances dropped that could not hibernate.",
            |m| &m.evictions,
        ),
        (
            "dormouse_object_resets_total",
            "Objects reset after a panic or a timeout.",
            |m| &m.resets,
        ),
        (
            "dormouse_mailbox_overloaded_total",
            "Requests refused because an object's mailbox was full.",
            |m| &m.overloaded,
        ),
        ("dormouse_alarms_total", "Alarm handler invocations.", |m| {
            &m.alarms
        }),
        (
            "dormouse_alarm_retries_total",
            "Failed alarm attempts scheduled again.",
            |m| &m.alarm_retries,
        ),
        (
            "dormouse_storage_commits_total",
            "Turns whose writes were committed and handed to a flush.",
            |m| &m.commits,
        ),
        (
            "dormouse_storage_flushes_total",
            "Flushes of the log that made commits durable (several turns each under load).",
            |m| &m.flushes,
        ),
        (
            "dormouse_events_fetch_total",
            "fetch handler invocations.",
            |m| &m.events.fetch,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (ns, m, _, _) in namespaces {
            let _ = writeln!(out, "{name}{{namespace=\"{ns}\"}} {}", get(m).load(Relaxed));
        }
    }
    let socket_counters: [SocketCounterSpec; 5] = [
        (
            "dormouse_websocket_auto_responses_total",
            "Messages answered by an auto-response without waking the object.",
            |s| &s.auto_responses,
        ),
        (
            "dormouse_websocket_pongs_total",
            "Protocol pings answered by the runtime.",
            |s| &s.pongs,
        ),
        (
            "dormouse_websockets_accepted_total",
            "WebSockets accepted.",
            |s| &s.accepted,
        ),
        (
            "dormouse_websocket_compressed_sent_total",
            "Messages sent compressed (permessage-deflate), per recipient.",
            |s| &s.compressed_sent,
        ),
        (
            "dormouse_websocket_compressed_received_total",
            "Messages received compressed (permessage-deflate) and inflated.",
            |s| &s.compressed_received,
        ),
    ];
    for (name, help, get) in socket_counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (ns, _, sockets, _) in namespaces {
            let _ = writeln!(
                out,
                "{name}{{namespace=\"{ns}\"}} {}",
                get(sockets).load(Relaxed)
            );
        }
    }
    let name = "dormouse_events_total";
    let _ = writeln!(
        out,
        "# HELP {name} Handler invocations by event kind.\n# TYPE {name} counter"
    );
    for (ns, m, _, _) in namespaces {
        for (kind, counter) in [
            ("fetch", &m.events.fetch),
            ("call", &m.events.call),
            ("websocket_message", &m.events.message),
            ("websocket_close", &m.events.close),
            ("websocket_error", &m.events.error),
        ] {
            let _ = writeln!(
                out,
                "{name}{{namespace=\"{ns}\",kind=\"{kind}\"}} {}",
                counter.load(Relaxed)
            );
        }
    }
    let name = "dormouse_websockets_dropped_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections the runtime dropped, by cause.\n# TYPE {name} counter"
    );
    for (ns, _, sockets, _) in namespaces {
        for (cause, counter) in [
            ("slow_reader", &sockets.dropped_slow_reader),
            ("unresponsive", &sockets.dropped_unresponsive),
            ("close_timeout", &sockets.dropped_close_timeout),
        ] {
            let _ = writeln!(
                out,
                "{name}{{namespace=\"{ns}\",cause=\"{cause}\"}} {}",
                counter.load(Relaxed)
            );
        }
    }
    let name = "dormouse_object_wake_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from an event's arrival at a hibernated object to its handler starting.\n# TYPE {name} histogram"
    );
    for (ns, m, _, _) in namespaces {
        let h = &m.wake_latency;
        for (bound, bucket) in WAKE_BUCKETS.iter().zip(&h.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{namespace=\"{ns}\",le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = h.count.load(Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{namespace=\"{ns}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "{name}_sum{{namespace=\"{ns}\"}} {}",
            h.sum_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{namespace=\"{ns}\"}} {count}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_series() {
        let metrics = NamespaceMetrics::default();
        let sockets = SocketCounters::default();
        metrics.wakes.fetch_add(3, Relaxed);
        sockets.dropped_slow_reader.fetch_add(1, Relaxed);
        metrics.observe_wake(Duration::from_micros(40));
        let gauges = NamespaceGauges {
            active: 1,
            hibernated: 2,
            websockets: 5,
        };
        let text = render(&[("ROOMS", &metrics, &sockets, gauges)]);
        assert!(text.contains("dormouse_object_wakes_total{namespace=\"ROOMS\"} 3"));
        assert!(text.contains("dormouse_objects_hibernated{namespace=\"ROOMS\"} 2"));
        assert!(text.contains("dormouse_websockets_open{namespace=\"ROOMS\"} 5"));
        assert!(text.contains(
            "dormouse_websockets_dropped_total{namespace=\"ROOMS\",cause=\"slow_reader\"} 1"
        ));
        assert!(
            text.contains(
                "dormouse_object_wake_seconds_bucket{namespace=\"ROOMS\",le=\"0.00005\"} 1"
            )
        );
        assert!(text.contains(
            "dormouse_object_wake_seconds_bucket{namespace=\"ROOMS\",le=\"0.000025\"} 0"
        ));
    }
}
