//! The latency histogram `lcd stress` records every phase in: fixed size however long it runs, so
//! the client's memory stays constant and a growing RSS means a leak.

use std::time::Duration;

use serde_json::json;

/// Sub-buckets per power of two: a bucket is at most 1/64 of its lower bound wide, so a bucket's
/// midpoint is within 1/128 (0.8%) of any value in it.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or above 2^30 us (~1074 s) all land in the last bucket.
const MAX_BITS: u32 = 30;
/// Buckets 0..2*SUB hold the values 0..2*SUB exactly (width 1); then SUB buckets per power of two
/// from 2^(SUB_BITS+1) up to 2^MAX_BITS.
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) << SUB_BITS;

/// A latency histogram in microseconds with log-linear buckets (HdrHistogram's layout, 64
/// sub-buckets per power of two): fixed size (1,600 counters) whatever the number of samples,
/// relative error of a reported percentile under 1%. Also keeps the exact count, sum (for the mean)
/// and maximum.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// The bucket of `us`.
    fn index(us: u64) -> usize {
        let v = us.min((1 << MAX_BITS) - 1);
        if v < 2 * SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros(); // SUB_BITS + 1 ..= MAX_BITS - 1
        let shift = msb - SUB_BITS;
        (((shift + 1) as usize) << SUB_BITS) + ((v >> shift) - SUB) as usize
    }

    /// The lowest value of bucket `i` and its width.
    fn bounds(i: usize) -> (u64, u64) {
        if i < (2 * SUB) as usize {
            return (i as u64, 1);
        }
        let shift = (i >> SUB_BITS) as u32 - 1;
        let low = (SUB + (i as u64 & (SUB - 1))) << shift;
        (low, 1 << shift)
    }

    pub fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.max = self.max.max(us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p`th percentile (nearest rank) in microseconds: the midpoint of the bucket holding
    /// that rank, never above the largest value seen; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.count as f64)
            .ceil()
            .clamp(1.0, self.count as f64) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = Self::bounds(i);
                return (low + width / 2).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// `{"count", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"}`.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "count": self.count,
            "p50_ms": ms(self.percentile(50.0)),
            "p95_ms": ms(self.percentile(95.0)),
            "p99_ms": ms(self.percentile(99.0)),
            "mean_ms": self.mean() / 1000.0,
            "max_ms": ms(self.max),
        })
    }
}

/// Microseconds as milliseconds, as the report prints them.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A duration in the histogram's unit, microseconds (saturating: it ends in the last bucket anyway).
pub fn micros(took: Duration) -> u64 {
    u64::try_from(took.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank percentile of sorted samples, exactly.
    fn exact(sorted: &[u64], p: f64) -> u64 {
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1]
    }

    /// Every percentile from 1 to 99 (and 99.9) of `samples`, from a histogram, is within
    /// `bound` (relative) of the exact one.
    fn check(mut samples: Vec<u64>, bound: f64) {
        let mut hist = Histogram::default();
        for &v in &samples {
            hist.record(v);
        }
        samples.sort_unstable();
        assert_eq!(hist.count(), samples.len() as u64);
        let ps = (1..=99).map(f64::from).chain([99.9]);
        for p in ps {
            let want = exact(&samples, p) as f64;
            let got = hist.percentile(p) as f64;
            let err = (got - want).abs() / want.max(1.0);
            assert!(err <= bound, "p{p}: {got} for {want} ({err:.4})");
        }
        let mean = samples.iter().map(|&v| v as f64).sum::<f64>() / samples.len() as f64;
        assert!((hist.mean() - mean).abs() <= mean * 1e-9, "mean");
        assert_eq!(hist.max(), *samples.last().unwrap_or(&0));
    }

    /// A deterministic pseudo-random sequence in [0, 1) (xorshift64*).
    fn uniform(n: usize, mut seed: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn small_values_are_exact() {
        let mut hist = Histogram::default();
        for v in 0..128 {
            hist.record(v);
        }
        assert_eq!(hist.percentile(50.0), 63);
        assert_eq!(hist.percentile(100.0), 127);
        assert_eq!(hist.percentile(0.0), 0);
    }

    #[test]
    fn percentiles_of_a_linear_ramp() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        let mut hist = Histogram::default();
        v.iter().for_each(|&x| hist.record(x));
        // Nearest rank: p50 of 1..=100 ms is 50 ms, p99 is 99 ms (within a bucket's half-width).
        assert!((hist.percentile(50.0) as f64 - 50_000.0).abs() <= 50_000.0 / 128.0);
        assert!((hist.percentile(99.0) as f64 - 99_000.0).abs() <= 99_000.0 / 128.0);
        check(v, 1.0 / 128.0);
        check((1..=200_000).collect(), 1.0 / 128.0);
    }

    #[test]
    fn percentiles_of_uniform_exponential_and_heavy_tailed_samples() {
        let u = uniform(100_000, 0x9e37_79b9_7f4a_7c15);
        // Uniform 0..10 s.
        check(u.iter().map(|x| (x * 1e7) as u64).collect(), 1.0 / 128.0);
        // Exponential with a 20 ms mean, as lifecycle latencies roughly are.
        check(
            u.iter()
                .map(|x| (-(1.0 - x).ln() * 20_000.0) as u64)
                .collect(),
            1.0 / 128.0,
        );
        // Log-uniform over nine decades, 1 us to 1000 s: every bucket size in use.
        check(
            u.iter().map(|x| 10f64.powf(x * 9.0) as u64).collect(),
            1.0 / 128.0,
        );
    }

    #[test]
    fn an_empty_histogram_reports_zero() {
        let hist = Histogram::default();
        assert_eq!(hist.count(), 0);
        assert_eq!(hist.percentile(50.0), 0);
        assert_eq!(hist.percentile(99.0), 0);
        assert_eq!(hist.mean(), 0.0);
        assert_eq!(hist.max(), 0);
        assert_eq!(hist.summary()["p99_ms"], 0.0);
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        let mut hist = Histogram::default();
        hist.record(micros(std::time::Duration::MAX));
        hist.record(u64::MAX);
        assert_eq!(hist.count(), 2);
        assert_eq!(hist.max(), u64::MAX);
        let top = hist.percentile(99.0);
        assert!(
            ((1 << MAX_BITS) - (1 << (MAX_BITS - SUB_BITS))..1 << MAX_BITS).contains(&top),
            "{top}"
        );
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        // Never above the largest value seen: a bucket's midpoint is capped by it.
        let mut one = Histogram::default();
        one.record(1_048_577); // just above 2^20: its bucket's midpoint is 8 ms higher
        assert_eq!(one.percentile(50.0), 1_048_577);
    }

    #[test]
    fn buckets_tile_the_range_and_the_size_is_fixed() {
        let mut next = 0;
        for i in 0..BUCKETS {
            let (low, width) = Histogram::bounds(i);
            assert_eq!(low, next, "bucket {i} starts where the previous ended");
            assert_eq!(Histogram::index(low), i);
            assert_eq!(Histogram::index(low + width - 1), i);
            // At most 1/64 of its lower bound wide (or 1 for the exact ones).
            assert!(width == 1 || width * SUB <= low, "bucket {i}");
            next = low + width;
        }
        assert_eq!(next, 1 << MAX_BITS);
        let mut hist = Histogram::default();
        for v in 0..1_000_000u64 {
            hist.record(v * 997);
        }
        assert_eq!(hist.counts.len(), BUCKETS);
        assert_eq!(BUCKETS, 1600);
    }
}
