//! Current-state gauges kept from the engine's deltas (`cxstream_open_tickets`,
//! `cxstream_sla_breached_open_tickets`), apart from the `prometheus` crate's gauges because
//! a series must disappear when its value returns to 0.

use prometheus::proto::{Gauge, Metric, MetricType};

use super::collector::{key, Sample, SeriesMap};

/// A current-state integer gauge kept from deltas: a series exists while its value is not 0.
///
/// The exposition is built from the value map at scrape time, so a ticket moving between
/// series (a −1 on the old labels, a +1 on the new) never makes a series blink out between
/// the two calls, and a series that drops to 0 is gone at the next scrape.
pub type StateGauge = SeriesMap<i64>;

impl Sample for i64 {
    const TYPE: MetricType = MetricType::GAUGE;

    fn write(&self, metric: &mut Metric) {
        let mut g = Gauge::default();
        g.set_value(*self as f64);
        metric.set_gauge(g);
    }
}

impl StateGauge {
    /// An empty gauge family; `name` and `labels` are constants, so an invalid one is a bug.
    pub fn new(name: &str, help: &str, labels: &[&str]) -> StateGauge {
        SeriesMap::with_labels(name, help, labels).expect("valid gauge")
    }

    /// Adds `delta` to the series of `values` (label values in declaration order).
    pub fn add(&self, values: &[&str], delta: i64) {
        if delta == 0 {
            return;
        }
        let mut map = self.series();
        let v = map.entry(key(values)).or_insert(0);
        *v += delta;
        if *v == 0 {
            map.remove(&key(values));
        }
    }

    /// The current value of a series (0 when absent).
    pub fn get(&self, values: &[&str]) -> i64 {
        self.series().get(&key(values)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use prometheus::core::Collector;

    use super::*;

    #[test]
    fn state_gauge_series_disappear_at_zero() {
        let g = StateGauge::new("x_open", "h", &["team"]);
        g.add(&["a"], 1);
        g.add(&["b"], 2);
        g.add(&["a"], -1);
        let mf = g.collect();
        assert_eq!(mf[0].get_metric().len(), 1);
        assert_eq!(g.get(&["b"]), 2);
        assert_eq!(g.get(&["a"]), 0);
    }
}
