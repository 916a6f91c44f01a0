//! `--max-connections-per-ip`: how many WebSocket connections one client address may hold open,
//! so that one client (or one misbehaving script) cannot take every file descriptor.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Open WebSocket connections per client address, against a bound.
#[derive(Debug)]
pub(crate) struct AddressLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

/// One connection's place in its address's count; given back when dropped.
#[derive(Debug)]
pub(crate) struct AddressLease {
    limit: Arc<AddressLimit>,
    address: IpAddr,
}

impl AddressLimit {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(AddressLimit {
            max,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    /// The most connections one address may hold.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A place for one more connection from `address`, unless it holds as many as it may (the
    /// refusal is counted). An IPv4 address mapped into IPv6 counts as the IPv4 one.
    pub(crate) fn acquire(self: &Arc<Self>, address: IpAddr) -> Option<AddressLease> {
        let address = address.to_canonical();
        let mut open = self.open.lock().expect("address limit lock");
        let count = open.entry(address).or_default();
        if *count >= self.max {
            drop(open);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        Some(AddressLease {
            limit: self.clone(),
            address,
        })
    }

    /// Upgrades refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections open from `address`.
    #[cfg(test)]
    fn open(&self, address: IpAddr) -> usize {
        let open = self.open.lock().expect("address limit lock");
        open.get(&address).copied().unwrap_or(0)
    }
}

impl Drop for AddressLease {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().expect("address limit lock");
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// The refusals, for `/metrics`.
/// The refusals of `--max-connections-per-ip`, as a metric: zero without the bound, so that
/// dashboards find the series either way.
#[derive(Debug)]
pub(crate) struct RefusedUpgrades(pub(crate) Option<Arc<AddressLimit>>);

impl Collector for RefusedUpgrades {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        encoder
            .encode_descriptor(
                "dormouse_websocket_upgrades_refused",
                "WebSocket upgrades refused before reaching an object, by cause.",
                None,
                MetricType::Counter,
            )?
            .encode_family(&[("cause", "per_ip_limit")])?
            .encode_counter::<NoLabelSet, u64, u64>(
                &self.0.as_deref().map_or(0, AddressLimit::refused),
                None,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_bound_and_gets_places_back_as_connections_close() {
        let limit = AddressLimit::new(2);
        let client: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let first = limit.acquire(client).unwrap();
        let _second = limit.acquire(client).unwrap();
        assert!(limit.acquire(client).is_none());
        assert!(
            limit.acquire(other).is_some(),
            "other addresses are not affected"
        );
        // The same address written as IPv4-mapped IPv6 is the same client.
        assert!(limit.acquire("::ffff:10.0.0.7".parse().unwrap()).is_none());
        assert_eq!(limit.refused(), 2);
        drop(first);
        assert_eq!(limit.open(client), 1);
        assert!(limit.acquire(client).is_some());
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(RefusedUpgrades(Some(limit))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("dormouse_websocket_upgrades_refused_total{cause=\"per_ip_limit\"} 2"),
            "{text}"
        );
    }
}
