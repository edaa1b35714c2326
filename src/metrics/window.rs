//! The "last closed window" duration metrics (SPEC §6):
//! `cxstream_window_first_response_seconds{window,quantile}` and
//! `cxstream_window_resolution_seconds{window,quantile}`.
//!
//! They are exposed as Prometheus *summaries*: a gauge carrying a `quantile` label is a lint
//! error for `promtool check metrics` ("non-summary metrics should not have "quantile" label"),
//! and a summary is exactly "quantiles of a set of observations". The set here is the `{}`
//! group of the last closed (non-partial) window of each size, so `_count` and `_sum` are that
//! window's count and sum (mean = `_sum / _count`) — they are replaced at each close, not
//! cumulative, and must not be `rate()`d. The quantiles are the window record's nearest-rank
//! p50, p90 and p99 (HDR, SPEC §4).

use prometheus::proto::{Metric, MetricType, Quantile, Summary};

use super::collector::{key, Sample, SeriesMap};
use crate::window::DurationAgg;

/// Quantiles exported, as (label value, percentile).
pub const QUANTILES: [(f64, u64); 3] = [(0.5, 50), (0.9, 90), (0.99, 99)];

/// The summary of one closed window: its count, sum and [`QUANTILES`].
#[derive(Debug, Clone)]
pub struct WindowSnapshot {
    count: u64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
}

impl Sample for WindowSnapshot {
    const TYPE: MetricType = MetricType::SUMMARY;

    fn write(&self, metric: &mut Metric) {
        let mut summary = Summary::default();
        summary.set_sample_count(self.count);
        summary.set_sample_sum(self.sum);
        summary.set_quantile(
            self.quantiles
                .iter()
                .map(|(q, v)| {
                    let mut qq = Quantile::default();
                    qq.set_quantile(*q);
                    qq.set_value(*v);
                    qq
                })
                .collect(),
        );
        metric.set_summary(summary);
    }
}

/// A summary per window size (label `window`), replaced whenever a window of that size closes.
pub type WindowSummary = SeriesMap<WindowSnapshot>;

impl WindowSummary {
    /// An empty summary family; fails on an invalid name.
    pub fn new(name: &str, help: &str) -> prometheus::Result<WindowSummary> {
        SeriesMap::with_labels(name, help, &["window"])
    }

    /// Sets the summary of `window` from a closed window's duration aggregate; an empty one
    /// removes the series (there is no value to show).
    pub fn set(&self, window: &str, agg: &DurationAgg) {
        let mut map = self.series();
        if agg.count == 0 {
            map.remove(&key(&[window]));
            return;
        }
        let quantiles = QUANTILES
            .iter()
            .filter_map(|(q, p)| agg.percentile(*p).map(|v| (*q, v)))
            .collect();
        map.insert(
            key(&[window]),
            WindowSnapshot {
                count: agg.count,
                sum: agg.sum,
                quantiles,
            },
        );
    }

    /// Removes the series of `window`.
    pub fn remove(&self, window: &str) {
        self.series().remove(&key(&[window]));
    }

    /// The current quantile value of `window` (tests, debugging).
    pub fn quantile(&self, window: &str, q: f64) -> Option<f64> {
        let map = self.series();
        map.get(&key(&[window]))?
            .quantiles
            .iter()
            .find(|(k, _)| *k == q)
            .map(|(_, v)| *v)
    }
}
