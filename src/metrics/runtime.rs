//! What the runtime pushes into [`Metrics`] besides the observer's measurements: the engine's
//! pipeline counters and state sizes after each batch ([`Metrics::sync_engine`]), every output
//! record ([`Metrics::record`], which also feeds the last-closed-window metrics), the Kafka
//! consumer lag and the batch processing time.

use std::time::{Duration, Instant};

use prometheus::{Gauge, IntCounter, IntGauge};

use super::defs::{Id, NO_LABELS};
use super::registry::{Families, Metrics};
use crate::engine::{Engine, Stats};
use crate::event::{EventType, InvalidReason};
use crate::output::Record;

/// An engine counter: the family and label values of its series, and its value in [`Stats`].
type EngineCounter = (Id, &'static [&'static str], fn(&Stats) -> u64);

/// An engine gauge: its family (without labels) and its value.
type EngineGauge = (Id, fn(&Engine) -> i64);

/// The engine counters without an enum of their own (events by type and invalid inputs by
/// reason are indexed by their enums).
const COUNTERS: [EngineCounter; 7] = [
    (Id::EventsInvalid, &["ticket_exists"], |s| s.ticket_exists),
    (Id::EventsDuplicate, &[], |s| s.duplicates),
    (Id::EventsLate, &[], |s| s.late_events),
    (Id::EventsOrphan, &[], |s| s.orphans),
    (Id::WindowLateContributions, &[], |s| s.late_contributions),
    (Id::StateEvictions, &["ticket"], |s| s.evicted_tickets),
    (Id::StateEvictions, &["customer"], |s| s.evicted_customers),
];

/// The gauges copied from the engine (the watermark apart: it may be unknown).
const GAUGES: [EngineGauge; 7] = [
    (Id::CustomersAtRisk, |e| e.stats().customers_at_risk),
    (Id::RecoveryOpenCases, |e| e.stats().recovery_open_cases),
    (Id::StateTickets, |e| e.tickets_held() as i64),
    (Id::StateCustomers, |e| e.customers_held() as i64),
    (Id::StateScheduledItems, |e| e.scheduled_items() as i64),
    (Id::StateEventIds, |e| e.event_ids_held() as i64),
    (Id::StateWindowAggregates, |e| {
        e.open_window_aggregates() as i64
    }),
];

/// A counter that follows one of the engine's cumulative counters.
struct Follower {
    counter: IntCounter,
    /// The engine's value at the last sync.
    last: u64,
}

impl Follower {
    fn new(counter: IntCounter) -> Follower {
        Follower { counter, last: 0 }
    }

    /// Adds what `cur` gained since the last sync (a counter that went back means a new
    /// engine: its whole value is new).
    fn follow(&mut self, cur: u64) {
        let d = if cur >= self.last {
            cur - self.last
        } else {
            cur
        };
        if d > 0 {
            self.counter.inc_by(d);
        }
        self.last = cur;
    }
}

/// The series [`Metrics::sync_engine`] sets, resolved once, with the values of the last sync.
pub(super) struct EngineSync {
    /// By `EventType as usize`.
    events: Vec<Follower>,
    /// By `InvalidReason as usize`.
    invalid: Vec<Follower>,
    /// In [`COUNTERS`] order.
    counters: Vec<Follower>,
    /// In [`GAUGES`] order.
    gauges: Vec<IntGauge>,
    watermark: Gauge,
    /// `cxstream_state_aftersales_customers`, and when it was last counted (a scan of every
    /// customer: every [`SCAN_EVERY`], not every batch).
    aftersales: IntGauge,
    scanned_at: Option<Instant>,
}

/// How often the gauges that scan the state are recounted.
const SCAN_EVERY: Duration = Duration::from_secs(5);

impl EngineSync {
    /// Resolves (and so creates at 0) every series the sync sets.
    pub(super) fn new(f: &Families) -> EngineSync {
        let events = f.counter(Id::Events);
        let invalid = f.counter(Id::EventsInvalid);
        EngineSync {
            events: EventType::ALL
                .iter()
                .map(|t| Follower::new(events.with_label_values(&[t.as_str()])))
                .collect(),
            invalid: InvalidReason::ALL
                .iter()
                .map(|r| Follower::new(invalid.with_label_values(&[r.as_str()])))
                .collect(),
            counters: COUNTERS
                .iter()
                .map(|(id, labels, _)| Follower::new(f.counter(*id).with_label_values(labels)))
                .collect(),
            gauges: GAUGES
                .iter()
                .map(|(id, _)| f.gauge(*id).with_label_values(NO_LABELS))
                .collect(),
            watermark: f.float_gauge(Id::Watermark).with_label_values(NO_LABELS),
            aftersales: f
                .gauge(Id::StateAftersalesCustomers)
                .with_label_values(NO_LABELS),
            scanned_at: None,
        }
    }
}

impl Metrics {
    /// Copies pipeline counters and state gauges from the engine (events, invalid, duplicates,
    /// late, orphans, watermark, state sizes). Call after each batch.
    ///
    /// Counters advance by what the engine's cumulative [`crate::engine::Stats`] gained since
    /// the previous call, so calling it often is cheap and exact. One engine per `Metrics`.
    pub fn sync_engine(&self, engine: &Engine) {
        let s = &engine.stats();
        let mut sync = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        let sync = &mut *sync;
        for (f, cur) in sync.events.iter_mut().zip(&s.events) {
            f.follow(*cur);
        }
        for (f, cur) in sync.invalid.iter_mut().zip(&s.invalid) {
            f.follow(*cur);
        }
        for (f, (_, _, value)) in sync.counters.iter_mut().zip(&COUNTERS) {
            f.follow(value(s));
        }
        for (g, (_, value)) in sync.gauges.iter().zip(&GAUGES) {
            g.set(value(engine));
        }
        if let Some(w) = engine.watermark() {
            sync.watermark.set(w as f64 / 1000.0);
        }
        if sync.scanned_at.is_none_or(|t| t.elapsed() >= SCAN_EVERY) {
            sync.scanned_at = Some(Instant::now());
            sync.aftersales
                .set(engine.aftersales_customers_held() as i64);
        }
    }

    /// Counts an output record by type and updates the last-closed-window gauges.
    pub fn record(&self, r: &Record) {
        let f = &self.families;
        f.counter(Id::OutputRecords)
            .with_label_values(&[r.type_name()])
            .inc();
        let Record::Window(w) = r else {
            return;
        };
        // Only complete `{}` windows: a part (several instances share the input) is not the
        // window.
        if !w.group.is_empty() || w.window.partial || w.part {
            return;
        }
        let label = crate::ts::duration_label(w.window.size);
        let agg = &w.window.agg;
        f.window(Id::WindowFirstResponseSeconds)
            .set(&label, &agg.first_response);
        f.window(Id::WindowResolutionSeconds)
            .set(&label, &agg.resolution);
        for (id, v) in [
            (Id::WindowFcrRatio, agg.fcr_ratio()),
            (Id::WindowCsatRatio, agg.csat_ratio()),
            (Id::WindowNps, agg.nps_score()),
        ] {
            let g = f.float_gauge(id);
            match v.filter(|v| v.is_finite()) {
                Some(v) => g.with_label_values(&[&label]).set(v),
                None => {
                    let _ = g.remove_label_values(&[&label]);
                }
            }
        }
    }

    /// Sets `cxstream_consumer_lag{topic,partition}`. A negative lag (unknown: no committed
    /// position or high watermark yet) removes the series rather than export a fake number.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        if lag < 0 {
            self.remove_consumer_lag(topic, partition);
        } else {
            self.families
                .gauge(Id::ConsumerLag)
                .with_label_values(&[topic, &partition.to_string()])
                .set(lag);
        }
    }

    /// Removes the lag series of a partition this instance no longer owns (on revoke).
    pub fn remove_consumer_lag(&self, topic: &str, partition: i32) {
        let _ = self
            .families
            .gauge(Id::ConsumerLag)
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// Observes the time spent processing one batch of input, in seconds (a negative or
    /// non-finite value is ignored).
    pub fn observe_processing(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.families
                .histogram(Id::ProcessingSeconds)
                .with_label_values(NO_LABELS)
                .observe(seconds);
        }
    }

    /// A complete checkpoint: how long it took and the bytes it wrote (SPEC §7).
    pub fn observe_checkpoint(&self, seconds: f64, bytes: u64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.families
                .histogram(Id::CheckpointSeconds)
                .with_label_values(NO_LABELS)
                .observe(seconds);
        }
        self.families
            .counter(Id::CheckpointBytes)
            .with_label_values(NO_LABELS)
            .inc_by(bytes);
    }

    /// A partition restored, and how long it took (SPEC §7).
    pub fn observe_restore(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.families
                .histogram(Id::RestoreSeconds)
                .with_label_values(NO_LABELS)
                .observe(seconds);
        }
        self.families
            .counter(Id::RestoredPartitions)
            .with_label_values(NO_LABELS)
            .inc();
    }

    /// `cxstream_partition_watermark_seconds{partition}`.
    pub fn set_partition_watermark(&self, partition: i32, w: crate::ts::Millis) {
        self.families
            .float_gauge(Id::PartitionWatermark)
            .with_label_values(&[&partition.to_string()])
            .set(w as f64 / 1000.0);
    }

    /// `cxstream_checkpoint_age_seconds{partition}`.
    pub fn set_checkpoint_age(&self, partition: i32, seconds: f64) {
        self.families
            .float_gauge(Id::CheckpointAge)
            .with_label_values(&[&partition.to_string()])
            .set(seconds);
    }

    /// `cxstream_output_errors_total{type,reason}` grows by `n`.
    pub fn add_output_errors(&self, kind: &str, reason: &str, n: u64) {
        self.families
            .counter(Id::OutputErrors)
            .with_label_values(&[kind, reason])
            .inc_by(n);
    }

    /// `cxstream_input_offsets_skipped_total{topic,partition}` grows by `n`.
    pub fn add_input_offsets_skipped(&self, topic: &str, partition: i32, n: u64) {
        self.families
            .counter(Id::InputOffsetsSkipped)
            .with_label_values(&[topic, &partition.to_string()])
            .inc_by(n);
    }

    /// `cxstream_output_queue_full_total{type}` grows by `n`.
    pub fn add_output_queue_full(&self, kind: &str, n: u64) {
        self.families
            .counter(Id::OutputQueueFull)
            .with_label_values(&[kind])
            .inc_by(n);
    }

    /// `cxstream_output_queue{unit}`: records and key + value bytes in the producer's queue.
    pub fn set_output_queue(&self, records: usize, bytes: u64) {
        let g = self.families.gauge(Id::OutputQueue);
        g.with_label_values(&["records"]).set(records as i64);
        g.with_label_values(&["bytes"]).set(bytes as i64);
    }

    /// `cxstream_heap_bytes{kind}`: the allocator's [`crate::alloc::Usage`].
    pub fn set_heap(&self, u: crate::alloc::Usage) {
        let g = self.families.gauge(Id::HeapBytes);
        g.with_label_values(&["allocated"]).set(u.allocated as i64);
        g.with_label_values(&["resident"]).set(u.resident as i64);
    }

    /// `cxstream_input_paused`.
    pub fn set_input_paused(&self, paused: bool) {
        self.families
            .gauge(Id::InputPaused)
            .with_label_values(NO_LABELS)
            .set(i64::from(paused));
    }

    /// `cxstream_merge_pending_windows`.
    pub fn set_merge_pending(&self, n: usize) {
        self.families
            .gauge(Id::MergePendingWindows)
            .with_label_values(NO_LABELS)
            .set(n as i64);
    }

    /// `cxstream_merge_parts_dropped_total` += `n`.
    pub fn add_merge_dropped(&self, n: u64) {
        if n > 0 {
            self.families
                .counter(Id::MergePartsDropped)
                .with_label_values(NO_LABELS)
                .inc_by(n);
        }
    }

    /// `cxstream_merge_partitions_owned`.
    pub fn set_merge_partitions(&self, n: usize) {
        self.families
            .gauge(Id::MergePartitions)
            .with_label_values(NO_LABELS)
            .set(n as i64);
    }

    /// Removes the last-closed-window series of the window size `label` (`1m`, …): another
    /// instance merges that series now.
    pub fn remove_window(&self, label: &str) {
        let f = &self.families;
        f.window(Id::WindowFirstResponseSeconds).remove(label);
        f.window(Id::WindowResolutionSeconds).remove(label);
        for id in [Id::WindowFcrRatio, Id::WindowCsatRatio, Id::WindowNps] {
            let _ = f.float_gauge(id).remove_label_values(&[label]);
        }
    }

    /// Removes the per-partition series of a partition this instance no longer owns.
    pub fn remove_partition(&self, partition: i32) {
        let p = partition.to_string();
        for id in [Id::PartitionWatermark, Id::CheckpointAge] {
            let _ = self.families.float_gauge(id).remove_label_values(&[&p]);
        }
    }
}
