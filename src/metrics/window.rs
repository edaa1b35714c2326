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

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary};

use crate::window::DurationAgg;

/// Quantiles exported, as (label value, percentile).
pub const QUANTILES: [(f64, u64); 3] = [(0.5, 50), (0.9, 90), (0.99, 99)];

#[derive(Debug, Clone)]
struct Snapshot {
    count: u64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
}

/// A summary per window size, replaced whenever a window of that size closes.
pub struct WindowSummary {
    desc: Desc,
    by_window: Mutex<BTreeMap<String, Snapshot>>,
}

impl WindowSummary {
    pub fn new(name: &str, help: &str) -> prometheus::Result<WindowSummary> {
        let desc = Desc::new(
            name.to_string(),
            help.to_string(),
            vec!["window".to_string()],
            HashMap::new(),
        )?;
        Ok(WindowSummary {
            desc,
            by_window: Mutex::new(BTreeMap::new()),
        })
    }

    /// Sets the summary of `window` from a closed window's duration aggregate; an empty one
    /// removes the series (there is no value to show).
    pub fn set(&self, window: &str, agg: &DurationAgg) {
        let mut map = self.by_window.lock().unwrap_or_else(|e| e.into_inner());
        if agg.count == 0 {
            map.remove(window);
            return;
        }
        let quantiles = QUANTILES
            .iter()
            .filter_map(|(q, p)| agg.percentile(*p).map(|v| (*q, v)))
            .collect();
        map.insert(
            window.to_string(),
            Snapshot {
                count: agg.count,
                sum: agg.sum,
                quantiles,
            },
        );
    }

    pub fn remove(&self, window: &str) {
        self.by_window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(window);
    }

    /// The current quantile value of `window` (tests, debugging).
    pub fn quantile(&self, window: &str, q: f64) -> Option<f64> {
        let map = self.by_window.lock().unwrap_or_else(|e| e.into_inner());
        map.get(window)?
            .quantiles
            .iter()
            .find(|(k, _)| *k == q)
            .map(|(_, v)| *v)
    }
}

impl Collector for WindowSummary {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let map = self.by_window.lock().unwrap_or_else(|e| e.into_inner());
        let mut mf = MetricFamily::default();
        mf.set_name(self.desc.fq_name.clone());
        mf.set_help(self.desc.help.clone());
        mf.set_field_type(MetricType::SUMMARY);
        let metrics = map
            .iter()
            .map(|(window, s)| {
                let mut label = LabelPair::default();
                label.set_name("window".to_string());
                label.set_value(window.clone());
                let mut summary = Summary::default();
                summary.set_sample_count(s.count);
                summary.set_sample_sum(s.sum);
                summary.set_quantile(
                    s.quantiles
                        .iter()
                        .map(|(q, v)| {
                            let mut qq = Quantile::default();
                            qq.set_quantile(*q);
                            qq.set_value(*v);
                            qq
                        })
                        .collect(),
                );
                let mut m = Metric::from_label(vec![label]);
                m.set_summary(summary);
                m
            })
            .collect();
        mf.set_metric(metrics);
        vec![mf]
    }
}
