//! Prometheus metrics of SPEC §6 and the /metrics, /healthz, /readyz endpoint.
//!
//! Where the numbers come from:
//! - **Cumulative KPI counters and histograms** are fed by the engine's [`Observer`] hook
//!   ([`Metrics::observer`]) with every measurement — late or not — so they count every valid
//!   event, while `kpi.window` records drop late contributions to closed windows.
//! - **Current-state gauges** (`open_tickets`, `sla_breached_open_tickets`) are kept from the
//!   engine's delta callbacks; a series whose value returns to 0 disappears from the exposition
//!   (so a team that no longer has open tickets leaves no stale series behind).
//!   `customers_at_risk`, `recovery_open_cases`, the pipeline counters and the state sizes are
//!   copied from the engine by [`Metrics::sync_engine`], called after each batch.
//! - **Last-closed-window metrics** come from the `{}` group's non-partial `kpi.window` records
//!   passed to [`Metrics::record`]. The window percentiles are summaries (see [`window`]).
//!
//! Label values that come from input data (`team`, `channel`, `priority`, `score`) are capped
//! per label name (`metrics.label_limit`, default 200, see [`labels`]); a measurement without
//! a team (a survey naming no known ticket) carries `team="none"`.
//!
//! The hot path (one observer call per measurement) does not touch the registry's label maps:
//! the observer caches the resolved series per dimension combination, so an update is a
//! hash-map lookup in memory it owns plus an atomic add.

pub mod buckets;
pub mod collector;
pub mod http;
pub mod labels;
mod state;
pub mod window;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::FxHasher;

use crate::config::Config;
use crate::engine::{Engine, Interner, Observer};
use crate::event::{EventType, InvalidReason};
use crate::kpi::{Band, Kpi, Measurement, NpsClass, SlaKind};
use crate::output::Record;

pub use http::{router, serve_listener};
pub use labels::{LabelCap, OTHER};
pub use state::StateGauge;
pub use window::WindowSummary;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// `team` label value of a measurement that has no team (a survey naming no known ticket).
pub const NO_TEAM: &str = "none";

/// The `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Output record types (`cxstream_output_records_total{type}`), created at 0.
const RECORD_TYPES: [&str; 6] = [
    "kpi.window",
    "sla.breached",
    "churn.risk",
    "recovery.needed",
    "recovery.overdue",
    "deadletter",
];

/// The per-label caps of the label names whose values come from input data.
pub struct Caps {
    pub team: LabelCap,
    pub channel: LabelCap,
    pub priority: LabelCap,
    pub score: LabelCap,
}

/// Cumulative counters copied from [`crate::engine::Stats`]: the values at the last sync.
#[derive(Default)]
struct Synced {
    events: Vec<u64>,
    invalid: Vec<u64>,
    ticket_exists: u64,
    duplicates: u64,
    late: u64,
    orphans: u64,
    late_contributions: u64,
    evicted_tickets: u64,
    evicted_customers: u64,
}

/// Adds what `cur` gained since `last` (a counter that went back means a new engine: its
/// whole value is new).
fn add_delta(c: &IntCounter, cur: u64, last: &mut u64) {
    let d = if cur >= *last { cur - *last } else { cur };
    if d > 0 {
        c.inc_by(d);
    }
    *last = cur;
}

/// All cxstream metrics in one registry.
pub struct Metrics {
    registry: Registry,
    caps: Caps,

    // --- cumulative KPIs (SPEC §3, §5) ---
    tickets_created: IntCounterVec,
    tickets_solved: IntCounterVec,
    tickets_first_solved: IntCounterVec,
    tickets_fcr: IntCounterVec,
    tickets_reopened: IntCounterVec,
    tickets_escalated: IntCounterVec,
    first_response_seconds: HistogramVec,
    resolution_seconds: HistogramVec,
    handle_seconds: HistogramVec,
    sla_achieved: IntCounterVec,
    sla_breached: IntCounterVec,
    csat_responses: IntCounterVec,
    nps_responses: [IntCounter; 3],
    ces_responses: IntCounterVec,
    orders: IntCounter,
    order_revenue: Counter,
    returns: IntCounter,
    warranty_claims: IntCounter,
    /// `[false, true]` by `signalled`.
    customers_churned: [IntCounter; 2],
    churn_signals: IntCounter,
    churn_confirmed: IntCounter,
    churn_expired: IntCounter,
    recovery_opened: IntCounter,
    recovery_answered: IntCounter,
    recovery_overdue: IntCounter,
    recovery_answer_seconds: Histogram,
    /// By `Band` index, then `[converted, expired]`.
    post_service: [[IntCounter; 2]; 4],

    // --- current state ---
    open_tickets: Arc<StateGauge>,
    sla_breached_open: Arc<StateGauge>,
    customers_at_risk: IntGauge,
    recovery_open_cases: IntGauge,

    // --- last closed window ---
    window_first_response: Arc<WindowSummary>,
    window_resolution: Arc<WindowSummary>,
    window_fcr_ratio: GaugeVec,
    window_csat_ratio: GaugeVec,
    window_nps: GaugeVec,

    // --- the pipeline ---
    events: Vec<IntCounter>,
    events_invalid: Vec<IntCounter>,
    events_ticket_exists: IntCounter,
    events_duplicate: IntCounter,
    events_late: IntCounter,
    events_orphan: IntCounter,
    window_late_contributions: IntCounter,
    evicted_tickets: IntCounter,
    evicted_customers: IntCounter,
    output_records: IntCounterVec,
    consumer_lag: IntGaugeVec,
    watermark: Gauge,
    processing: Histogram,
    state_tickets: IntGauge,
    state_customers: IntGauge,
    state_scheduled: IntGauge,
    state_window_aggregates: IntGauge,
    label_overflow: IntCounterVec,

    synced: Mutex<Synced>,
    ready: AtomicBool,
}

/// Registers `c` and returns it; metric definitions are constants, so a failure is a bug.
fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric definitions are valid and unique");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
    )
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(r, IntCounter::new(name, help).expect("valid counter"))
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    reg(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
    )
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    reg(r, IntGauge::new(name, help).expect("valid gauge"))
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    reg(
        r,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
            .expect("valid histogram"),
    )
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    reg(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
            .expect("valid histogram"),
    )
}

/// A registry entry that shares a collector kept by [`Metrics`].
struct Shared<C>(Arc<C>);

impl<C: Collector> Collector for Shared<C> {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

fn shared<C: Collector + 'static>(r: &Registry, c: C) -> Arc<C> {
    let c = Arc::new(c);
    r.register(Box::new(Shared(c.clone())))
        .expect("metric definitions are valid and unique");
    c
}

const TICKET_LABELS: [&str; 3] = ["team", "channel", "priority"];

impl Metrics {
    pub fn new(cfg: &Config) -> Arc<Metrics> {
        let r = Registry::new();
        let limit = cfg.metrics.label_limit;

        let label_overflow = counter_vec(
            &r,
            "cxstream_label_overflow_total",
            "Label values folded into \"__other__\" because the label already had \
             metrics.label_limit distinct values; one per folded metric update.",
            &["label"],
        );
        let cap = |name: &'static str| {
            LabelCap::new(name, limit, label_overflow.with_label_values(&[name]))
        };
        let caps = Caps {
            team: cap("team"),
            channel: cap("channel"),
            priority: cap("priority"),
            score: cap("score"),
        };

        let tickets = |what: &str, help: &str| {
            counter_vec(
                &r,
                &format!("cxstream_tickets_{what}_total"),
                help,
                &TICKET_LABELS,
            )
        };
        let tickets_created = tickets("created", "Tickets created (ticket.created events).");
        let tickets_solved = tickets(
            "solved",
            "Ticket solves (every ticket.solved, including solves after a reopen).",
        );
        let tickets_first_solved = tickets("first_solved", "Tickets solved for the first time.");
        let tickets_fcr = tickets(
            "fcr",
            "First solves resolved at first contact (at most one public agent message before \
             the first solve). FCR ratio = fcr / first_solved.",
        );
        let tickets_reopened = tickets("reopened", "Ticket reopens.");
        let tickets_escalated = tickets(
            "escalated",
            "Ticket escalations or transfers, counted under the team the ticket had before.",
        );

        let first_response_seconds = histogram_vec(
            &r,
            "cxstream_first_response_seconds",
            "Time from ticket creation to the first public agent message, in seconds. \
             Bucket bounds include every configured SLA target.",
            &TICKET_LABELS,
            buckets::first_response(cfg),
        );
        let resolution_seconds = histogram_vec(
            &r,
            "cxstream_resolution_seconds",
            "Time from ticket creation to each solve, in seconds. Bucket bounds include every \
             configured SLA target.",
            &TICKET_LABELS,
            buckets::resolution(cfg),
        );
        let handle_seconds = histogram_vec(
            &r,
            "cxstream_handle_seconds",
            "Handling time of one interaction (contact.handled), in seconds; AHT = sum / count.",
            &["channel"],
            buckets::HANDLE_BASE.to_vec(),
        );
        let sla_achieved = counter_vec(
            &r,
            "cxstream_sla_achieved_total",
            "SLA clocks stopped at or before their due (sla = first_response | resolution).",
            &["sla", "team", "priority"],
        );
        let sla_breached = counter_vec(
            &r,
            "cxstream_sla_breached_total",
            "SLA breaches, counted when detected (the watermark passed the due with the clock \
             still running, or it stopped late).",
            &["sla", "team", "priority"],
        );
        let csat_responses = counter_vec(
            &r,
            "cxstream_csat_responses_total",
            "CSAT survey answers by score (1-5, satisfied = 4 or 5); team of the ticket the \
             survey names, \"none\" when it names no known ticket.",
            &["team", "score"],
        );
        let nps = counter_vec(
            &r,
            "cxstream_nps_responses_total",
            "NPS survey answers by class (promoter 9-10, passive 7-8, detractor 0-6). \
             NPS = 100 * (promoters - detractors) / responses.",
            &["class"],
        );
        let nps_responses = [NpsClass::Promoter, NpsClass::Passive, NpsClass::Detractor]
            .map(|c| nps.with_label_values(&[c.as_str()]));
        let ces_responses = counter_vec(
            &r,
            "cxstream_ces_responses_total",
            "CES survey answers by score (1-7, 7 = very easy).",
            &["score"],
        );
        let orders = counter(&r, "cxstream_orders_total", "Orders placed.");
        let order_revenue = reg(
            &r,
            Counter::new(
                "cxstream_order_revenue_total",
                "Sum of order.placed amounts (in the shop's currency).",
            )
            .expect("valid counter"),
        );
        let returns = counter(
            &r,
            "cxstream_returns_total",
            "Orders returned or exchanged.",
        );
        let warranty_claims = counter(
            &r,
            "cxstream_warranty_claims_total",
            "Warranty claims and repair requests.",
        );
        let churned = counter_vec(
            &r,
            "cxstream_customers_churned_total",
            "Customers who left (customer.churned); signalled = whether the customer had a \
             churn.risk signal in the preceding effectiveness horizon (default 90 days).",
            &["signalled"],
        );
        let customers_churned = ["false", "true"].map(|s| churned.with_label_values(&[s]));
        let churn_signals = counter(
            &r,
            "cxstream_churn_signals_total",
            "churn.risk records emitted (a customer's churn-risk score crossed the threshold).",
        );
        let outcomes = counter_vec(
            &r,
            "cxstream_churn_signal_outcomes_total",
            "Outcomes of churn.risk signals: confirmed (the customer churned within the horizon) \
             or expired_without_churn. Precision = confirmed / all outcomes.",
            &["outcome"],
        );
        let churn_confirmed = outcomes.with_label_values(&["confirmed"]);
        let churn_expired = outcomes.with_label_values(&["expired_without_churn"]);
        let recovery = counter_vec(
            &r,
            "cxstream_recovery_cases_total",
            "Service-recovery cases opened by a dissatisfied survey answer, answered by a \
             contact in time, or overdue.",
            &["outcome"],
        );
        let recovery_opened = recovery.with_label_values(&["opened"]);
        let recovery_answered = recovery.with_label_values(&["answered"]);
        let recovery_overdue = recovery.with_label_values(&["overdue"]);
        let recovery_answer_seconds = histogram(
            &r,
            "cxstream_recovery_answer_seconds",
            "Time from a recovery case's trigger to the contact that answered it, in seconds.",
            buckets::recovery(cfg),
        );
        let post = counter_vec(
            &r,
            "cxstream_post_service_outcomes_total",
            "Repurchase after service: each first solve's outcome, converted (the customer \
             ordered within the horizon) or expired, by the CSAT band of the ticket.",
            &["outcome", "csat_band"],
        );
        let post_service = Band::ALL
            .map(|b| ["converted", "expired"].map(|o| post.with_label_values(&[o, b.as_str()])));

        let open_tickets = shared(
            &r,
            StateGauge::new(
                "cxstream_open_tickets",
                "Tickets currently open (created or reopened, not solved).",
                &["team", "priority"],
            ),
        );
        let sla_breached_open = shared(
            &r,
            StateGauge::new(
                "cxstream_sla_breached_open_tickets",
                "Open tickets already past an SLA due: first_response = still waiting for the \
                 first answer after its due; resolution = open after the resolution due.",
                &["sla", "team", "priority"],
            ),
        );
        let customers_at_risk = int_gauge(
            &r,
            "cxstream_customers_at_risk",
            "Customers with a churn.risk signal whose outcome is still pending.",
        );
        let recovery_open_cases = int_gauge(
            &r,
            "cxstream_recovery_open_cases",
            "Service-recovery cases open (waiting for a contact).",
        );

        let window_first_response = shared(
            &r,
            WindowSummary::new(
                "cxstream_window_first_response_seconds",
                "First response time in the last closed window of each size (all tickets): \
                 nearest-rank quantiles; _count and _sum are that window's, not cumulative.",
            )
            .expect("valid summary"),
        );
        let window_resolution = shared(
            &r,
            WindowSummary::new(
                "cxstream_window_resolution_seconds",
                "Resolution time in the last closed window of each size (all tickets): \
                 nearest-rank quantiles; _count and _sum are that window's, not cumulative.",
            )
            .expect("valid summary"),
        );
        let window_fcr_ratio = gauge_vec(
            &r,
            "cxstream_window_fcr_ratio",
            "First contact resolution ratio (fcr / first solved) of the last closed window \
             of each size; absent when it had no first solve.",
            &["window"],
        );
        let window_csat_ratio = gauge_vec(
            &r,
            "cxstream_window_csat_ratio",
            "CSAT ratio (satisfied / responses) of the last closed window of each size; \
             absent when it had no CSAT answer.",
            &["window"],
        );
        let window_nps = gauge_vec(
            &r,
            "cxstream_window_nps",
            "Net promoter score (-100..100) of the last closed window of each size; absent \
             when it had no NPS answer.",
            &["window"],
        );

        let ev = counter_vec(
            &r,
            "cxstream_events_total",
            "Valid events applied, by type.",
            &["type"],
        );
        let events = EventType::ALL
            .iter()
            .map(|t| ev.with_label_values(&[t.as_str()]))
            .collect();
        let inv = counter_vec(
            &r,
            "cxstream_events_invalid_total",
            "Invalid inputs (dead-lettered) by reason; ticket_exists = ticket.created for a \
             ticket that already exists.",
            &["reason"],
        );
        let events_invalid = InvalidReason::ALL
            .iter()
            .map(|x| inv.with_label_values(&[x.as_str()]))
            .collect();
        let events_ticket_exists = inv.with_label_values(&["ticket_exists"]);
        let events_duplicate = counter(
            &r,
            "cxstream_events_duplicate_total",
            "Events ignored because their id was already seen within the dedup horizon.",
        );
        let events_late = counter(
            &r,
            "cxstream_events_late_total",
            "Events older than the watermark on arrival (still applied to state and to the \
             cumulative metrics; their closed windows do not change).",
        );
        let events_orphan = counter(
            &r,
            "cxstream_events_orphan_total",
            "Ticket events naming an unknown (never created or evicted) ticket, dead-lettered.",
        );
        let window_late_contributions = counter(
            &r,
            "cxstream_window_late_contributions_total",
            "Measurements dropped from kpi.window records because their window had closed.",
        );
        let evictions = counter_vec(
            &r,
            "cxstream_state_evictions_total",
            "Ticket and customer state evicted after its retention.",
            &["state"],
        );
        let evicted_tickets = evictions.with_label_values(&["ticket"]);
        let evicted_customers = evictions.with_label_values(&["customer"]);
        let output_records = counter_vec(
            &r,
            "cxstream_output_records_total",
            "Output records written, by type.",
            &["type"],
        );
        for t in RECORD_TYPES {
            output_records.with_label_values(&[t]);
        }
        let consumer_lag = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "cxstream_consumer_lag",
                    "Messages between the consumer's position and the partition's high \
                     watermark.",
                ),
                &["topic", "partition"],
            )
            .expect("valid gauge"),
        );
        let watermark = reg(
            &r,
            Gauge::new(
                "cxstream_watermark_seconds",
                "Event-time watermark, in seconds since the UNIX epoch.",
            )
            .expect("valid gauge"),
        );
        let processing = histogram(
            &r,
            "cxstream_processing_seconds",
            "Time spent processing one batch of input, in seconds.",
            buckets::PROCESSING.to_vec(),
        );
        let state_tickets = int_gauge(&r, "cxstream_state_tickets", "Tickets held in state.");
        let state_customers = int_gauge(&r, "cxstream_state_customers", "Customers held in state.");
        let state_scheduled = int_gauge(
            &r,
            "cxstream_state_scheduled_items",
            "Timers and after-sales inputs waiting for the watermark.",
        );
        let state_window_aggregates = int_gauge(
            &r,
            "cxstream_state_window_aggregates",
            "Open window x group aggregates.",
        );

        Arc::new(Metrics {
            registry: r,
            caps,
            tickets_created,
            tickets_solved,
            tickets_first_solved,
            tickets_fcr,
            tickets_reopened,
            tickets_escalated,
            first_response_seconds,
            resolution_seconds,
            handle_seconds,
            sla_achieved,
            sla_breached,
            csat_responses,
            nps_responses,
            ces_responses,
            orders,
            order_revenue,
            returns,
            warranty_claims,
            customers_churned,
            churn_signals,
            churn_confirmed,
            churn_expired,
            recovery_opened,
            recovery_answered,
            recovery_overdue,
            recovery_answer_seconds,
            post_service,
            open_tickets,
            sla_breached_open,
            customers_at_risk,
            recovery_open_cases,
            window_first_response,
            window_resolution,
            window_fcr_ratio,
            window_csat_ratio,
            window_nps,
            events,
            events_invalid,
            events_ticket_exists,
            events_duplicate,
            events_late,
            events_orphan,
            window_late_contributions,
            evicted_tickets,
            evicted_customers,
            output_records,
            consumer_lag,
            watermark,
            processing,
            state_tickets,
            state_customers,
            state_scheduled,
            state_window_aggregates,
            label_overflow,
            synced: Mutex::new(Synced::default()),
            ready: AtomicBool::new(false),
        })
    }

    /// The engine hook: every measurement and current-state gauge change.
    pub fn observer(self: &Arc<Self>) -> Box<dyn Observer> {
        Box::new(MetricsObserver::new(self.clone()))
    }

    /// Copies pipeline counters and state gauges from the engine (events, invalid, duplicates,
    /// late, orphans, watermark, state sizes). Call after each batch.
    ///
    /// Counters advance by what the engine's cumulative [`crate::engine::Stats`] gained since
    /// the previous call, so calling it often is cheap and exact. One engine per `Metrics`.
    pub fn sync_engine(&self, engine: &Engine) {
        let s = engine.stats();
        {
            let mut last = self.synced.lock().unwrap_or_else(|e| e.into_inner());
            let last = &mut *last;
            last.events.resize(s.events.len(), 0);
            for ((c, cur), l) in self.events.iter().zip(&s.events).zip(&mut last.events) {
                add_delta(c, *cur, l);
            }
            last.invalid.resize(s.invalid.len(), 0);
            for ((c, cur), l) in self
                .events_invalid
                .iter()
                .zip(&s.invalid)
                .zip(&mut last.invalid)
            {
                add_delta(c, *cur, l);
            }
            add_delta(
                &self.events_ticket_exists,
                s.ticket_exists,
                &mut last.ticket_exists,
            );
            add_delta(&self.events_duplicate, s.duplicates, &mut last.duplicates);
            add_delta(&self.events_late, s.late_events, &mut last.late);
            add_delta(&self.events_orphan, s.orphans, &mut last.orphans);
            add_delta(
                &self.window_late_contributions,
                s.late_contributions,
                &mut last.late_contributions,
            );
            add_delta(
                &self.evicted_tickets,
                s.evicted_tickets,
                &mut last.evicted_tickets,
            );
            add_delta(
                &self.evicted_customers,
                s.evicted_customers,
                &mut last.evicted_customers,
            );
        }
        self.customers_at_risk.set(s.customers_at_risk);
        self.recovery_open_cases.set(s.recovery_open_cases);
        if let Some(w) = engine.watermark() {
            self.watermark.set(w as f64 / 1000.0);
        }
        self.state_tickets.set(engine.tickets_held() as i64);
        self.state_customers.set(engine.customers_held() as i64);
        self.state_scheduled.set(engine.scheduled_items() as i64);
        self.state_window_aggregates
            .set(engine.open_window_aggregates() as i64);
    }

    /// Counts an output record by type and updates the last-closed-window gauges.
    pub fn record(&self, r: &Record) {
        self.output_records
            .with_label_values(&[r.type_name()])
            .inc();
        let Record::Window(w) = r else {
            return;
        };
        if !w.group.is_empty() || w.window.partial {
            return;
        }
        let label = crate::ts::duration_label(w.window.size);
        let agg = &w.window.agg;
        self.window_first_response.set(&label, &agg.first_response);
        self.window_resolution.set(&label, &agg.resolution);
        for (g, v) in [
            (&self.window_fcr_ratio, agg.fcr_ratio()),
            (&self.window_csat_ratio, agg.csat_ratio()),
            (&self.window_nps, agg.nps_score()),
        ] {
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
        let p = partition.to_string();
        if lag < 0 {
            let _ = self.consumer_lag.remove_label_values(&[topic, &p]);
        } else {
            self.consumer_lag.with_label_values(&[topic, &p]).set(lag);
        }
    }

    /// Removes the lag series of a partition this instance no longer owns (on revoke).
    pub fn remove_consumer_lag(&self, topic: &str, partition: i32) {
        let _ = self
            .consumer_lag
            .remove_label_values(&[topic, &partition.to_string()]);
    }

    /// Time spent processing one batch of `events` inputs.
    pub fn observe_processing(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.processing.observe(seconds);
        }
    }

    /// Ready once partitions are assigned and the first poll returned.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether [`Metrics::set_ready`]`(true)` was called last (what /readyz answers).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The per-label caps (tests, diagnostics).
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The registry, for callers that add their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    fn open_tickets_delta(&self, team: &str, priority: &str, delta: i64) {
        let team = self.caps.team.resolve(team);
        let priority = self.caps.priority.resolve(priority);
        self.open_tickets.add(&[team, priority], delta);
    }

    fn breached_open_delta(&self, sla: SlaKind, team: &str, priority: &str, delta: i64) {
        let team = self.caps.team.resolve(team);
        let priority = self.caps.priority.resolve(priority);
        self.sla_breached_open
            .add(&[sla.as_str(), team, priority], delta);
    }

    fn label_overflow_total(&self) -> u64 {
        ["team", "channel", "priority", "score"]
            .iter()
            .map(|l| self.label_overflow.with_label_values(&[l]).get())
            .sum()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.is_ready())
            .field("label_overflow", &self.label_overflow_total())
            .finish_non_exhaustive()
    }
}

/// Serves /metrics, /healthz and /readyz on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for /metrics on {addr}: {e}"))?;
    serve_listener(listener, metrics, shutdown).await
}

// ---------------------------------------------------------------------------------------------
// The engine hook.

/// A resolved label value: the value itself, or `__other__` (then `folded`).
struct Lv {
    value: Box<str>,
    folded: bool,
}

impl Lv {
    fn of(cap: &LabelCap, v: &str) -> Lv {
        if cap.admit(v) {
            Lv {
                value: v.into(),
                folded: false,
            }
        } else {
            Lv {
                value: OTHER.into(),
                folded: true,
            }
        }
    }

    /// The label value for one update, counted in `label_overflow_total` if folded.
    fn touch(&self, cap: &LabelCap) -> &str {
        if self.folded {
            cap.count_overflow();
        }
        &self.value
    }
}

/// The cached resolution of `key` for `cap` (resolved once, with `name` giving the value).
fn lv<'a, K: std::hash::Hash + Eq>(
    map: &'a mut FxMap<K, Lv>,
    key: K,
    cap: &LabelCap,
    name: impl FnOnce() -> String,
) -> &'a Lv {
    map.entry(key).or_insert_with(|| Lv::of(cap, &name()))
}

/// The series of one (team, channel, priority), created on first use.
#[derive(Default)]
struct TicketSeries {
    created: Option<IntCounter>,
    solved: Option<IntCounter>,
    first_solved: Option<IntCounter>,
    fcr: Option<IntCounter>,
    reopened: Option<IntCounter>,
    escalated: Option<IntCounter>,
    first_response: Option<Histogram>,
    resolution: Option<Histogram>,
}

fn counter_in<'a>(
    slot: &'a mut Option<IntCounter>,
    v: &IntCounterVec,
    l: &[&str],
) -> &'a IntCounter {
    slot.get_or_insert_with(|| v.with_label_values(l))
}

fn histogram_in<'a>(
    slot: &'a mut Option<Histogram>,
    v: &HistogramVec,
    l: &[&str],
) -> &'a Histogram {
    slot.get_or_insert_with(|| v.with_label_values(l))
}

/// Team ids are interned per engine; `u32::MAX` stands for "no team".
const NO_TEAM_ID: u32 = u32::MAX;
/// Enumeration index standing for "absent".
const ABSENT: u8 = u8::MAX;

fn team_name(id: u32, names: &Interner) -> String {
    if id == NO_TEAM_ID {
        NO_TEAM.to_string()
    } else {
        names.name(id).to_string()
    }
}

/// Feeds [`Metrics`] from one engine. Owned by the engine (single-threaded), so its caches
/// need no locks; each measurement costs a few small hash lookups and atomic adds.
struct MetricsObserver {
    m: Arc<Metrics>,
    teams: FxMap<u32, Lv>,
    channels: FxMap<u8, Lv>,
    priorities: FxMap<u8, Lv>,
    scores: FxMap<u8, Lv>,
    tickets: FxMap<(u32, u8, u8), TicketSeries>,
    sla: FxMap<(u8, u32, u8), [Option<IntCounter>; 2]>,
    csat: FxMap<(u32, u8), IntCounter>,
    ces: FxMap<u8, IntCounter>,
    handle: FxMap<u8, Histogram>,
}

impl MetricsObserver {
    fn new(m: Arc<Metrics>) -> MetricsObserver {
        MetricsObserver {
            m,
            teams: FxMap::default(),
            channels: FxMap::default(),
            priorities: FxMap::default(),
            scores: FxMap::default(),
            tickets: FxMap::default(),
            sla: FxMap::default(),
            csat: FxMap::default(),
            ces: FxMap::default(),
            handle: FxMap::default(),
        }
    }

    /// A ticket KPI: `f` updates the series of the measurement's (team, channel, priority).
    fn ticket(
        &mut self,
        mm: &Measurement,
        names: &Interner,
        f: impl FnOnce(&Metrics, &mut TicketSeries, &[&str]),
    ) {
        let m = &*self.m;
        let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
        let c = mm.dims.channel.map_or(ABSENT, |c| c.index() as u8);
        let p = mm.dims.priority.map_or(ABSENT, |p| p.index() as u8);
        let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
        let channel = lv(&mut self.channels, c, &m.caps.channel, || {
            mm.dims.channel.map_or(NO_TEAM, |c| c.as_str()).to_string()
        });
        let prio = lv(&mut self.priorities, p, &m.caps.priority, || {
            mm.dims.priority.map_or(NO_TEAM, |p| p.as_str()).to_string()
        });
        let labels = [
            team.touch(&m.caps.team),
            channel.touch(&m.caps.channel),
            prio.touch(&m.caps.priority),
        ];
        let series = self.tickets.entry((t, c, p)).or_default();
        f(m, series, &labels);
    }
}

impl Observer for MetricsObserver {
    fn measurement(&mut self, mm: &Measurement, names: &Interner) {
        match mm.kpi {
            Kpi::Created => self.ticket(mm, names, |m, s, l| {
                counter_in(&mut s.created, &m.tickets_created, l).inc()
            }),
            Kpi::FirstResponse(ms) => self.ticket(mm, names, |m, s, l| {
                histogram_in(&mut s.first_response, &m.first_response_seconds, l)
                    .observe(ms as f64 / 1000.0)
            }),
            Kpi::Solved {
                resolution,
                first,
                fcr,
            } => self.ticket(mm, names, |m, s, l| {
                counter_in(&mut s.solved, &m.tickets_solved, l).inc();
                histogram_in(&mut s.resolution, &m.resolution_seconds, l)
                    .observe(resolution as f64 / 1000.0);
                if first {
                    counter_in(&mut s.first_solved, &m.tickets_first_solved, l).inc();
                    if fcr {
                        counter_in(&mut s.fcr, &m.tickets_fcr, l).inc();
                    }
                }
            }),
            Kpi::Reopened => self.ticket(mm, names, |m, s, l| {
                counter_in(&mut s.reopened, &m.tickets_reopened, l).inc()
            }),
            Kpi::Escalated => self.ticket(mm, names, |m, s, l| {
                counter_in(&mut s.escalated, &m.tickets_escalated, l).inc()
            }),
            Kpi::Handle(secs) => {
                let m = &*self.m;
                let c = mm.dims.channel.map_or(ABSENT, |c| c.index() as u8);
                let channel = lv(&mut self.channels, c, &m.caps.channel, || {
                    mm.dims.channel.map_or(NO_TEAM, |c| c.as_str()).to_string()
                });
                let label = channel.touch(&m.caps.channel);
                if secs.is_finite() && secs >= 0.0 {
                    self.handle
                        .entry(c)
                        .or_insert_with(|| m.handle_seconds.with_label_values(&[label]))
                        .observe(secs);
                }
            }
            Kpi::Sla { kind, breached } => {
                let m = &*self.m;
                let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
                let p = mm.dims.priority.map_or(ABSENT, |p| p.index() as u8);
                let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
                let prio = lv(&mut self.priorities, p, &m.caps.priority, || {
                    mm.dims.priority.map_or(NO_TEAM, |p| p.as_str()).to_string()
                });
                let labels = [
                    kind.as_str(),
                    team.touch(&m.caps.team),
                    prio.touch(&m.caps.priority),
                ];
                let k = match kind {
                    SlaKind::FirstResponse => 0,
                    SlaKind::Resolution => 1,
                };
                let slots = self.sla.entry((k, t, p)).or_default();
                if breached {
                    counter_in(&mut slots[1], &m.sla_breached, &labels).inc();
                } else {
                    counter_in(&mut slots[0], &m.sla_achieved, &labels).inc();
                }
            }
            Kpi::Csat(score) => {
                let m = &*self.m;
                let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
                let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
                let sc = lv(&mut self.scores, score, &m.caps.score, || score.to_string());
                let labels = [team.touch(&m.caps.team), sc.touch(&m.caps.score)];
                self.csat
                    .entry((t, score))
                    .or_insert_with(|| m.csat_responses.with_label_values(&labels))
                    .inc();
            }
            Kpi::Nps(score) => {
                let i = match NpsClass::of(score) {
                    NpsClass::Promoter => 0,
                    NpsClass::Passive => 1,
                    NpsClass::Detractor => 2,
                };
                self.m.nps_responses[i].inc();
            }
            Kpi::Ces(score) => {
                let m = &*self.m;
                let sc = lv(&mut self.scores, score, &m.caps.score, || score.to_string());
                let label = sc.touch(&m.caps.score);
                self.ces
                    .entry(score)
                    .or_insert_with(|| m.ces_responses.with_label_values(&[label]))
                    .inc();
            }
            Kpi::OrderPlaced(amount) => {
                self.m.orders.inc();
                if amount.is_finite() && amount > 0.0 {
                    self.m.order_revenue.inc_by(amount);
                }
            }
            Kpi::Returned => self.m.returns.inc(),
            Kpi::WarrantyClaim => self.m.warranty_claims.inc(),
            // Counted through ChurnOutcome, which also says whether the churn was signalled
            // (the engine sends exactly one per customer.churned, late or not).
            Kpi::Churned => {}
            Kpi::ChurnOutcome { after_signal } => {
                self.m.customers_churned[after_signal as usize].inc()
            }
            Kpi::ChurnSignalled => self.m.churn_signals.inc(),
            Kpi::ChurnConfirmed => self.m.churn_confirmed.inc(),
            Kpi::ChurnExpired => self.m.churn_expired.inc(),
            Kpi::RecoveryOpened => self.m.recovery_opened.inc(),
            Kpi::RecoveryAnswered(ms) => {
                self.m.recovery_answered.inc();
                self.m
                    .recovery_answer_seconds
                    .observe(ms.max(0) as f64 / 1000.0);
            }
            Kpi::RecoveryOverdue => self.m.recovery_overdue.inc(),
            Kpi::Repurchase { band, converted } => {
                let b = Band::ALL.iter().position(|x| *x == band).unwrap_or(3);
                self.m.post_service[b][usize::from(!converted)].inc();
            }
        }
    }

    fn open_tickets(&mut self, team: &str, priority: &str, delta: i64) {
        self.m.open_tickets_delta(team, priority, delta);
    }

    fn breached_open(&mut self, sla: SlaKind, team: &str, priority: &str, delta: i64) {
        self.m.breached_open_delta(sla, team, priority, delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_cap_folds_past_the_limit() {
        let m = Metrics::new(&Config {
            metrics: crate::config::MetricsConfig {
                label_limit: 2,
                ..Default::default()
            },
            ..Default::default()
        });
        let c = &m.caps().team;
        assert_eq!(c.resolve("a"), "a");
        assert_eq!(c.resolve("b"), "b");
        assert_eq!(c.resolve("c"), OTHER);
        assert_eq!(c.resolve("a"), "a");
        assert_eq!(c.len(), 2);
        assert_eq!(m.label_overflow_total(), 1);
    }
}
