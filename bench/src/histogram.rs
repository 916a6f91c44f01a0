//! Latencies in a log-linear histogram: 64 buckets per power of two (under 1.6% error), cheap to
//! record on the hot path and to merge and ship between processes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Buckets per power of two, as a power of two.
const SUB_BUCKET_BITS: u32 = 6;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Enough buckets for any `u64` nanosecond value.
const BUCKETS: usize = ((64 - SUB_BUCKET_BITS as usize) + 1) << SUB_BUCKET_BITS;

/// Counts of latencies, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros();
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = (nanos >> shift) & (SUB_BUCKETS - 1);
    (((shift + 1) as u64) << SUB_BUCKET_BITS | sub) as usize
}

/// The smallest value of bucket `index` and the width of the bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, 1);
    }
    let group = index >> SUB_BUCKET_BITS;
    let sub = index & (SUB_BUCKETS - 1);
    ((SUB_BUCKETS + sub) << (group - 1), 1 << (group - 1))
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The latency below which a fraction `quantile` (0 to 1) of the recorded ones fall; the middle
    /// of its bucket. Zero when nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((quantile * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bucket_range(index);
                return Duration::from_nanos(low + width / 2);
            }
        }
        unreachable!("the counts add up to the total")
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }
}

/// The non-empty buckets, as `(index, count)` pairs: compact in JSON.
impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(usize, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| (index, *count))
            .collect();
        pairs.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(usize, u64)>::deserialize(deserializer)?;
        let mut histogram = Histogram::default();
        for (index, count) in pairs {
            let slot = histogram
                .counts
                .get_mut(index)
                .ok_or_else(|| serde::de::Error::custom(format!("no bucket {index}")))?;
            *slot += count;
            histogram.total += count;
        }
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        for nanos in (0..100_000).chain([u64::MAX / 2, u64::MAX]) {
            let (low, width) = bucket_range(bucket_of(nanos));
            assert!(
                low <= nanos && nanos - low < width,
                "{nanos}: [{low}, +{width})"
            );
        }
        for index in 1..BUCKETS {
            let (low, width) = bucket_range(index - 1);
            assert_eq!(bucket_range(index).0, low + width, "bucket {index}");
        }
    }

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(Duration::from_micros(micros));
        }
        for (quantile, exact) in [(0.5, 500.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = histogram.quantile(quantile).as_secs_f64() * 1e6;
            assert!(
                (got - exact).abs() / exact < 0.02,
                "p{quantile}: {got} vs {exact}"
            );
        }
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn survives_json_and_merges() {
        let mut a = Histogram::default();
        a.record(Duration::from_micros(10));
        let mut b: Histogram = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        b.record(Duration::from_micros(30));
        a.merge(&b);
        assert_eq!(a.len(), 3);
        assert!(a.quantile(1.0) > Duration::from_micros(29));
    }
}
