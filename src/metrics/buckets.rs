//! Histogram bucket bounds, in seconds.
//!
//! Duration histograms use a roughly exponential ladder (×2–×3 per step, on round human
//! durations) merged with every configured SLA target, so that `histogram_quantile` and
//! "share within target" (`le="<target>"` bucket ÷ count) are exact at each target instead of
//! interpolated between neighbouring buckets.

use crate::config::Config;
use crate::event::Priority;
use crate::ts::Millis;

/// First response: 10 s … 7 d.
pub const FIRST_RESPONSE_BASE: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    43200.0, 86400.0, 172800.0, 259200.0, 604800.0,
];

/// Resolution: 5 min … 30 d.
pub const RESOLUTION_BASE: &[f64] = &[
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0, 259200.0,
    432000.0, 604800.0, 1209600.0, 2592000.0,
];

/// Handle time of one interaction: 5 s … 2 h.
pub const HANDLE_BASE: &[f64] = &[
    5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0,
];

/// Service-recovery answer time: 1 min … 1 d (plus the configured recovery due).
pub const RECOVERY_BASE: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
];

/// Processing time of one batch: 50 µs … 10 s.
pub const PROCESSING: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Checkpoint and restore times: 1 ms … 5 min.
pub const STATE: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// `base` plus every duration of `extra_ms` (as seconds), sorted, without duplicates.
pub fn merge(base: &[f64], extra_ms: impl IntoIterator<Item = Millis>) -> Vec<f64> {
    let mut ms: Vec<i64> = base.iter().map(|s| (s * 1000.0).round() as i64).collect();
    ms.extend(extra_ms.into_iter().filter(|m| *m > 0));
    ms.sort_unstable();
    ms.dedup();
    ms.into_iter().map(|m| m as f64 / 1000.0).collect()
}

/// Every SLA target of the configuration (both clocks, all priorities), in ms.
pub fn sla_targets(cfg: &Config) -> Vec<Millis> {
    Priority::ALL
        .iter()
        .flat_map(|p| [cfg.sla.first_response.get(*p), cfg.sla.resolution.get(*p)])
        .collect()
}

/// `cxstream_first_response_seconds` bounds: the ladder plus every SLA target.
pub fn first_response(cfg: &Config) -> Vec<f64> {
    merge(FIRST_RESPONSE_BASE, sla_targets(cfg))
}

/// `cxstream_resolution_seconds` bounds: the ladder plus every SLA target.
pub fn resolution(cfg: &Config) -> Vec<f64> {
    merge(RESOLUTION_BASE, sla_targets(cfg))
}

/// `cxstream_recovery_answer_seconds` bounds: the ladder plus the recovery due.
pub fn recovery(cfg: &Config) -> Vec<f64> {
    merge(RECOVERY_BASE, [cfg.signals.recovery_due.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_include_every_sla_target_and_increase() {
        let mut cfg = Config::default();
        cfg.sla.first_response.high = crate::config::Dur(45 * 60 * 1000);
        for b in [first_response(&cfg), resolution(&cfg)] {
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
            for t in sla_targets(&cfg) {
                assert!(b.contains(&(t as f64 / 1000.0)), "{t} ms missing in {b:?}");
            }
        }
        assert!(first_response(&cfg).contains(&2700.0));
        assert!(recovery(&cfg).contains(&86400.0));
    }
}
