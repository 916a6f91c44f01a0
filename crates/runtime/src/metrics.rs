//! Counters per namespace, and their encoding for Prometheus by `prometheus-client`.
//!
//! Counters are plain atomics bumped on the hot path, read only when metrics are scraped; the
//! crate encodes them (OpenMetrics text) through a collector, so an event costs what it cost
//! before. Gauges (objects active or hibernated, sockets open) are counted from the registry at
//! scrape time, so they can never drift from the truth.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use dormouse_holder::SocketCounters;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

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

/// One namespace's metrics, as encoded: (binding, counters, its sockets' counters, gauges).
pub(crate) type NamespaceRow<'a> = (
    &'a str,
    &'a NamespaceMetrics,
    &'a SocketCounters,
    NamespaceGauges,
);

/// A gauge: name, help text, how to read it.
type GaugeSpec = (&'static str, &'static str, fn(&NamespaceGauges) -> u64);

/// A counter: name (without the `_total` the encoder appends), help text, where it is.
type CounterSpec = (
    &'static str,
    &'static str,
    fn(&NamespaceMetrics) -> &AtomicU64,
);

/// A counter of the socket holder: name (without `_total`), help text, where it is.
type SocketCounterSpec = (
    &'static str,
    &'static str,
    fn(&SocketCounters) -> &AtomicU64,
);

const GAUGES: [GaugeSpec; 3] = [
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

const COUNTERS: [CounterSpec; 11] = [
    (
        "dormouse_object_starts",
        "Object instances constructed.",
        |m| &m.starts,
    ),
    (
        "dormouse_object_wakes",
        "Instances constructed for hibernated objects.",
        |m| &m.wakes,
    ),
    (
        "dormouse_object_hibernations",
        "Idle instances dropped while their sockets stayed open.",
        |m| &m.hibernations,
    ),
    (
        "dormouse_object_evictions",
        "Idle instances dropped that could not hibernate.",
        |m| &m.evictions,
    ),
    (
        "dormouse_object_resets",
        "Objects reset after a panic or a timeout.",
        |m| &m.resets,
    ),
    (
        "dormouse_mailbox_overloaded",
        "Requests refused because an object's mailbox was full.",
        |m| &m.overloaded,
    ),
    ("dormouse_alarms", "Alarm handler invocations.", |m| {
        &m.alarms
    }),
    (
        "dormouse_alarm_retries",
        "Failed alarm attempts scheduled again.",
        |m| &m.alarm_retries,
    ),
    (
        "dormouse_storage_commits",
        "Turns whose writes were committed and handed to a flush.",
        |m| &m.commits,
    ),
    (
        "dormouse_storage_flushes",
        "Flushes of the log that made commits durable (several turns each under load).",
        |m| &m.flushes,
    ),
    ("dormouse_events_fetch", "fetch handler invocations.", |m| {
        &m.events.fetch
    }),
];

const SOCKET_COUNTERS: [SocketCounterSpec; 5] = [
    (
        "dormouse_websocket_auto_responses",
        "Messages answered by an auto-response without waking the object.",
        |s| &s.auto_responses,
    ),
    (
        "dormouse_websocket_pongs",
        "Protocol pings answered by the runtime.",
        |s| &s.pongs,
    ),
    (
        "dormouse_websockets_accepted",
        "WebSockets accepted.",
        |s| &s.accepted,
    ),
    (
        "dormouse_websocket_compressed_sent",
        "Messages sent compressed (permessage-deflate), per recipient.",
        |s| &s.compressed_sent,
    ),
    (
        "dormouse_websocket_compressed_received",
        "Messages received compressed (permessage-deflate) and inflated.",
        |s| &s.compressed_received,
    ),
];

/// Encodes every namespace's metrics: a family per metric, a series per namespace.
pub(crate) fn encode(
    encoder: &mut DescriptorEncoder<'_>,
    namespaces: &[NamespaceRow<'_>],
) -> fmt::Result {
    for (name, help, get) in GAUGES {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (ns, _, _, gauges) in namespaces {
            family
                .encode_family(&[("namespace", *ns)])?
                .encode_gauge(&get(gauges))?;
        }
    }
    for (name, help, get) in COUNTERS {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (ns, metrics, _, _) in namespaces {
            counter(&mut family, &[("namespace", *ns)], get(metrics))?;
        }
    }
    for (name, help, get) in SOCKET_COUNTERS {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (ns, _, sockets, _) in namespaces {
            counter(&mut family, &[("namespace", *ns)], get(sockets))?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "dormouse_events",
        "Handler invocations by event kind.",
        None,
        MetricType::Counter,
    )?;
    for (ns, m, _, _) in namespaces {
        for (kind, value) in [
            ("fetch", &m.events.fetch),
            ("call", &m.events.call),
            ("websocket_message", &m.events.message),
            ("websocket_close", &m.events.close),
            ("websocket_error", &m.events.error),
        ] {
            counter(&mut family, &[("namespace", *ns), ("kind", kind)], value)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "dormouse_websockets_dropped",
        "Connections the runtime dropped, by cause.",
        None,
        MetricType::Counter,
    )?;
    for (ns, _, sockets, _) in namespaces {
        for (cause, value) in [
            ("slow_reader", &sockets.dropped_slow_reader),
            ("unresponsive", &sockets.dropped_unresponsive),
            ("close_timeout", &sockets.dropped_close_timeout),
        ] {
            counter(&mut family, &[("namespace", *ns), ("cause", cause)], value)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "dormouse_object_wake_seconds",
        "Time from an event's arrival at a hibernated object to its handler starting.",
        None,
        MetricType::Histogram,
    )?;
    for (ns, m, _, _) in namespaces {
        let histogram = &m.wake_latency;
        let count = histogram.count.load(Relaxed);
        // The encoder wants each bucket's own count; ours are cumulative.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = WAKE_BUCKETS
            .iter()
            .zip(&histogram.buckets)
            .map(|(bound, bucket)| {
                let cumulative = bucket.load(Relaxed);
                let own = cumulative.saturating_sub(below);
                below = cumulative;
                (*bound, own)
            })
            .collect();
        buckets.push((f64::MAX, count.saturating_sub(below)));
        family
            .encode_family(&[("namespace", *ns)])?
            .encode_histogram::<NoLabelSet>(
                histogram.sum_nanos.load(Relaxed) as f64 / 1e9,
                count,
                &buckets,
                None,
            )?;
    }
    Ok(())
}

/// One labelled series of a counter family.
fn counter(
    family: &mut MetricEncoder<'_>,
    labels: &[(&str, &str)],
    value: &AtomicU64,
) -> fmt::Result {
    family
        .encode_family(&labels)?
        .encode_counter::<NoLabelSet, u64, u64>(&value.load(Relaxed), None)
}

#[cfg(test)]
mod tests {
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    use super::*;

    #[derive(Debug, Default)]
    struct Fixture {
        metrics: NamespaceMetrics,
        sockets: SocketCounters,
        gauges: NamespaceGauges,
    }

    impl Collector for Fixture {
        fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
            encode(
                &mut encoder,
                &[("ROOMS", &self.metrics, &self.sockets, self.gauges)],
            )
        }
    }

    fn text(fixture: &std::sync::Arc<Fixture>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(fixture.clone()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn every_series_keeps_its_name_and_labels() {
        let fixture = std::sync::Arc::new(Fixture {
            gauges: NamespaceGauges {
                active: 1,
                hibernated: 2,
                websockets: 5,
            },
            ..Fixture::default()
        });
        fixture.metrics.wakes.fetch_add(3, Relaxed);
        fixture.metrics.events.message.fetch_add(7, Relaxed);
        fixture.sockets.dropped_slow_reader.fetch_add(1, Relaxed);
        fixture.sockets.accepted.fetch_add(4, Relaxed);
        let text = text(&fixture);
        for line in [
            "dormouse_object_wakes_total{namespace=\"ROOMS\"} 3",
            "dormouse_objects_active{namespace=\"ROOMS\"} 1",
            "dormouse_objects_hibernated{namespace=\"ROOMS\"} 2",
            "dormouse_websockets_open{namespace=\"ROOMS\"} 5",
            "dormouse_websockets_accepted_total{namespace=\"ROOMS\"} 4",
            "dormouse_events_total{namespace=\"ROOMS\",kind=\"websocket_message\"} 7",
            "dormouse_websockets_dropped_total{namespace=\"ROOMS\",cause=\"slow_reader\"} 1",
            "# TYPE dormouse_object_wake_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_wake_histogram_is_cumulative_with_every_bucket() {
        let fixture = std::sync::Arc::new(Fixture::default());
        fixture.metrics.observe_wake(Duration::from_micros(40));
        fixture.metrics.observe_wake(Duration::from_micros(40));
        fixture.metrics.observe_wake(Duration::from_millis(3));
        fixture.metrics.observe_wake(Duration::from_secs(1));
        let text = text(&fixture);
        let buckets: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("dormouse_object_wake_seconds_bucket{"))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
            .collect();
        // ≤25 µs, ≤50 µs … ≤2.5 ms, ≤10 ms … ≤250 ms, +Inf.
        assert_eq!(buckets, [0, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4], "{text}");
        // The bucket's bound comes first, then the namespace: label order carries no meaning.
        assert!(
            text.contains(
                "dormouse_object_wake_seconds_bucket{le=\"0.00005\",namespace=\"ROOMS\"} 2"
            )
        );
        assert!(
            text.contains("dormouse_object_wake_seconds_bucket{le=\"+Inf\",namespace=\"ROOMS\"} 4")
        );
        assert!(text.contains("dormouse_object_wake_seconds_count{namespace=\"ROOMS\"} 4"));
        let sum: f64 = text
            .lines()
            .find(|l| l.starts_with("dormouse_object_wake_seconds_sum"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        assert!((sum - 1.003_08).abs() < 1e-9, "{sum}");
    }
}
