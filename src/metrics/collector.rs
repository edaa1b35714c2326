//! The one piece of code behind cxstream's hand-written Prometheus collectors.
//!
//! Two metric kinds do not fit the `prometheus` crate's vectors: current-state gauges kept
//! from deltas ([`StateGauge`](super::StateGauge), whose series vanish at 0) and the
//! last-closed-window summaries ([`WindowSummary`](super::WindowSummary), replaced whole at
//! each close). Both are "a map from label values to a value, written out at scrape time";
//! [`SeriesMap`] is that map and its [`Collector`] implementation, and each kind only says how
//! one value becomes a sample ([`Sample`]). Both are type aliases of [`SeriesMap`], so their
//! locking, label handling and exposition are written once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

/// The value of one series of a [`SeriesMap`]: its Prometheus type and how it is written.
pub trait Sample: Send + Sync + 'static {
    /// The Prometheus type of the family (gauge, summary, ...).
    const TYPE: MetricType;

    /// Writes this value into the series' metric (which already carries its labels).
    fn write(&self, metric: &mut Metric);
}

/// Label values, in the order the family declares its label names.
pub(crate) type LabelValues = Vec<Box<str>>;

/// A metric family kept as a map from label values to a [`Sample`], written out whole at
/// each scrape: a series exists exactly while its key is in the map.
///
/// Clones share the map (like the `prometheus` crate's own metrics), so one clone can be
/// registered while another is updated.
pub struct SeriesMap<V> {
    desc: Arc<Desc>,
    series: Arc<Mutex<BTreeMap<LabelValues, V>>>,
}

impl<V> Clone for SeriesMap<V> {
    fn clone(&self) -> Self {
        SeriesMap {
            desc: self.desc.clone(),
            series: self.series.clone(),
        }
    }
}

impl<V: Sample> SeriesMap<V> {
    /// An empty family named `name` with label names `labels`; fails on an invalid name.
    pub fn with_labels(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Self> {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        let desc = Desc::new(name.into(), help.into(), labels, HashMap::new())?;
        Ok(SeriesMap {
            desc: Arc::new(desc),
            series: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// The series, locked (a panic while the lock was held leaves a usable map).
    pub(crate) fn series(&self) -> MutexGuard<'_, BTreeMap<LabelValues, V>> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Owned label values from borrowed ones.
pub(crate) fn key(values: &[&str]) -> LabelValues {
    values.iter().map(|v| (*v).into()).collect()
}

impl<V: Sample> Collector for SeriesMap<V> {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let map = self.series();
        let mut mf = MetricFamily::default();
        mf.set_name(self.desc.fq_name.clone());
        mf.set_help(self.desc.help.clone());
        mf.set_field_type(V::TYPE);
        let metrics = map
            .iter()
            .map(|(values, v)| {
                // Label pairs sorted by name, as the registry's own vectors write them.
                let mut pairs: Vec<LabelPair> = self
                    .desc
                    .variable_labels
                    .iter()
                    .zip(values)
                    .map(|(n, v)| {
                        let mut p = LabelPair::default();
                        p.set_name(n.clone());
                        p.set_value(v.to_string());
                        p
                    })
                    .collect();
                pairs.sort_by(|a, b| a.name().cmp(b.name()));
                let mut m = Metric::from_label(pairs);
                v.write(&mut m);
                m
            })
            .collect();
        mf.set_metric(metrics);
        vec![mf]
    }
}
