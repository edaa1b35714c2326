//! The Kafka runtime (`cxstream run`, `cxstream demo`, `cxstream generate --kafka`): input
//! topics in, SPEC §4 records out, through the same engine and decode path as replay.
//!
//! ```text
//! source.rs   consumer in a group, rebalance handling, the poll loop, idle advance
//! commit.rs   which input offsets are safe to commit
//! sink.rs     idempotent producer that retries until acknowledged
//! demo.rs     `cxstream demo`: an in-process mock cluster + generator + this pipeline
//! ```
//!
//! # Data path
//!
//! [`run_pipeline`] runs one rdkafka `BaseConsumer` in group `kafka.group_id`, subscribed to
//! `kafka.input_topics`, polled from one thread; each message goes to
//! [`Engine`](crate::engine::Engine) with its `SourcePos::Kafka` position (a message without
//! a value is decoded as an empty payload and dead-lettered like any invalid input). After
//! each poll batch the engine's records are produced: dead letters to `kafka.deadletter_topic`,
//! everything else to `kafka.output_topic`, keyed by [`Record::key`](crate::output::Record::key).
//! When this instance does not own every partition of the input topics, a `kpi.window` key
//! gets `|<partitions>` appended (SPEC §4), e.g. `1m|2026-11-22T10:00:00Z|{}|0,2,4`, where
//! `<partitions>` is the record's own `partitions` field.
//!
//! **Shards.** The engine shard of a message is its partition number. With several input
//! topics, partition *p* of every topic feeds shard *p*: produce all topics keyed by customer
//! with the same partition count (co-partitioned) and keep librdkafka's default `range`
//! assignor, which gives one member partition *p* of every topic. A shard exists while at
//! least one `(topic, p)` is assigned and is dropped when the last one is revoked. The
//! end-of-partition signal (for the idle advance below) names only the partition number, so
//! with several topics it is tracked per shard as well.
//!
//! Every `kafka.librdkafka` property is passed to consumer and producer. The consumer then
//! gets `group.id`, `enable.auto.commit=false`, `enable.auto.offset.store=false` and
//! `enable.partition.eof=true` (the protocol below needs them) and
//! `auto.offset.reset=earliest` unless set; the producer `enable.idempotence=true` and
//! `acks=all`.
//!
//! # Commit protocol (at-least-once; nothing lost)
//!
//! An input offset is committed only after (1) the event is reflected in the engine and
//! (2) every output record derived from events up to it has been acknowledged by the broker.
//!
//! - Dead letters are emitted while their event is processed; an event's after-sales effects
//!   (`churn.risk`, `recovery.needed`, …) once the watermark passes its time; its window
//!   contributions when its windows close, which is last. So per partition the
//!   [`commit::PartitionTrack`] keeps runs of `(first offset, end of the latest window
//!   holding the event's time)` and drops a run once the watermark (windows closed through
//!   it) reaches its end. The *safe offset* is the first offset of the oldest remaining run,
//!   or the last processed offset + 1. (Timer records — SLA breaches, expiries, overdue
//!   recoveries — come from state, not from one offset: see "State that a restart loses".)
//! - Every `kafka.commit_interval`, before a partition is released on revoke, and at
//!   shutdown: drain the engine, produce, **flush** the producer until every record is
//!   acknowledged (a failed delivery is sent again, never dropped; see `sink.rs`), then commit
//!   the safe offsets (synchronously; a failed commit is retried at the next occasion). If the
//!   flush does not finish in time (broker down), nothing is committed that time.
//! - Consequence: with the default `1m`/`1h` windows the committed offset trails the input by
//!   up to one hour of event time plus the allowed lateness.
//!
//! # What a crash (or a kill without graceful shutdown) re-emits
//!
//! The group resumes from the last committed offsets, so the events after them are
//! processed again. Re-emitted are:
//! - the `kpi.window` records of windows that closed after the last commit (all their
//!   contributions come from events at or after the committed offsets, so their counts are
//!   complete again — but see the state caveat below);
//! - alerts (`sla.breached`, `churn.risk`, `recovery.*`) and dead letters derived from
//!   events after the last commit, and alerts whose timers fire again;
//! - records that were produced but whose acknowledgement had not been seen.
//!
//! Nothing is lost from the output topics' point of view: a record is either acknowledged
//! before the offsets of its inputs are committed, or its inputs are processed again.
//!
//! # Rebalances
//!
//! Before partitions are released the pipeline drains, flushes and commits the safe offsets
//! of everything it owns (not when the assignment was lost: another member may own it). The
//! open windows are shared by all of an instance's partitions and cannot be split by
//! partition, so:
//! - if the partitions that leave still have contributions in open windows, the engine
//!   restarts empty and every partition it keeps resumes from its just-committed offset (the
//!   cooperative protocol rewinds them; the eager one revokes everything anyway). The new
//!   owner re-derives the departed partitions' part of those windows from the same commit,
//!   so no window is counted twice; [`RunSummary::engine_restarts`] counts these restarts;
//! - otherwise (eager protocol: every partition with open windows comes back, e.g. after a
//!   lost session or a member joining that took nothing from this one) the state is kept
//!   and the partitions continue from this instance's own positions, not from the commit.
//!
//! # State that a restart loses (until the durability work checkpoints shards)
//!
//! Shards are rebuilt only from the events after the committed offset. Ticket and customer
//! state from earlier events is gone: `ticket.message`/`solved`/`reopened`/`escalated` for
//! tickets created before the resume point become `unknown ticket` dead letters; their first
//! response, resolution and FCR are not measured; SLA clocks of those tickets never breach;
//! after-sales state (churn score, open recovery cases, repurchase cohorts, dedup memory) starts
//! empty. A re-emitted window can therefore differ from the first emission. The same holds for
//! a partition that moves to another member in a rebalance, and for the partitions an
//! instance keeps when its engine restarts (above).
//!
//! # Live watermark
//!
//! A newly assigned partition holds the watermark until its first event arrives (or it reaches
//! its end empty), so a backlog read unevenly across partitions does not turn into late events.
//! When every assigned partition has reached its end (`enable.partition.eof`) and no message
//! arrived for [`IDLE_AFTER`], the watermark advances to `now − allowed_lateness` (SPEC §2:
//! never past it, only forward), so SLA timers fire and windows close on a quiet stream.
//!
//! Consumer lag is read from librdkafka's statistics (`hi_offset − app_offset` per partition,
//! every `statistics.interval.ms`, default 5 s here when metrics are on); it is only reported,
//! never used to decide "caught up" (Tansu's high watermark can be wrong).

pub mod commit;
pub mod demo;
pub(crate) mod sink;
mod source;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use crate::config::{Config, KafkaConfig};
use crate::engine::Stats;
use crate::metrics::Metrics;
use crate::ts::Millis;

pub use demo::{demo, demo_until, DemoOptions};
pub use source::run_pipeline_with;

/// How long the input must be quiet (with every partition at its end) before the watermark
/// follows the wall clock.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// What a pipeline run did, returned when it stops.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Input messages processed (valid or not).
    pub events: u64,
    /// Output records acknowledged by the broker (output and dead-letter topics).
    pub records_produced: u64,
    /// Output records given up on because the broker can never take them (each logged).
    pub records_dropped: u64,
    /// Output records sent again after a failed delivery (broker outage, producer replaced).
    pub records_resent: u64,
    /// Output records still unacknowledged at exit (their inputs were not committed).
    pub records_unacknowledged: u64,
    /// Successful offset commits.
    pub commits: u64,
    /// Times the engine restarted from the committed offsets because a rebalance moved
    /// partitions with open windows to another member.
    pub engine_restarts: u64,
    /// The last offset committed per input `(topic, partition)`.
    pub committed: BTreeMap<(String, i32), i64>,
    /// First and last offset processed per input `(topic, partition)`.
    pub processed: BTreeMap<(String, i32), (i64, i64)>,
    /// The engine's counters at exit.
    pub stats: Stats,
    pub watermark: Option<Millis>,
}

/// Live counters of a running pipeline, for `demo`'s status line and for tests.
#[derive(Debug)]
pub struct Progress {
    /// Input messages processed.
    pub events: AtomicU64,
    /// Records handed to the producer, by kind.
    pub windows: AtomicU64,
    pub breaches: AtomicU64,
    pub alerts: AtomicU64,
    pub deadletters: AtomicU64,
    /// Records acknowledged by the broker.
    pub acked: AtomicU64,
    pub commits: AtomicU64,
    pub rebalances: AtomicU64,
    watermark: AtomicI64,
    assigned: Mutex<Vec<(String, i32)>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            events: AtomicU64::new(0),
            windows: AtomicU64::new(0),
            breaches: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            deadletters: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rebalances: AtomicU64::new(0),
            watermark: AtomicI64::new(Millis::MIN),
            assigned: Mutex::new(Vec::new()),
        }
    }
}

impl Progress {
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// The engine's watermark, once it has one.
    pub fn watermark(&self) -> Option<Millis> {
        let w = self.watermark.load(Ordering::Relaxed);
        (w != Millis::MIN).then_some(w)
    }

    /// The input partitions assigned right now.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn set_assigned(&self, a: Vec<(String, i32)>) {
        if let Ok(mut v) = self.assigned.lock() {
            *v = a;
        }
    }

    fn set_watermark(&self, w: Option<Millis>) {
        self.watermark
            .store(w.unwrap_or(Millis::MIN), Ordering::Relaxed);
    }
}

/// Runs the Kafka pipeline until `shutdown` is set, then stops fetching, drains, flushes,
/// commits, leaves the group and returns what it did. Blocking: call it in a thread.
/// See the module documentation for the protocol.
pub fn run_pipeline(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
) -> Result<RunSummary> {
    run_pipeline_with(cfg, metrics, shutdown, Progress::new())
}

/// Produces `(key, line)` pairs to `topic` with an idempotent producer (acks=all), at most
/// `rate_per_sec` lines per second if given; `extra` is passed through to librdkafka. Waits
/// until every line is acknowledged and returns how many were produced. An empty key sends
/// the message without a key.
pub fn produce_lines(
    bootstrap: &str,
    topic: &str,
    lines: impl Iterator<Item = (String, String)>,
    rate_per_sec: Option<f64>,
    extra: &BTreeMap<String, String>,
) -> Result<u64> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    produce_lines_until(bootstrap, topic, lines, rate_per_sec, extra, &stop)
}

/// [`produce_lines`] that also stops early when `stop` is set (the lines sent so far are
/// still flushed).
pub fn produce_lines_until(
    bootstrap: &str,
    topic: &str,
    lines: impl Iterator<Item = (String, String)>,
    rate_per_sec: Option<f64>,
    extra: &BTreeMap<String, String>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<u64> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        cc.set(k, v);
    }
    let mut sink = sink::Sink::new(cc)?;
    let started = Instant::now();
    let rate = rate_per_sec.filter(|r| r.is_finite() && *r > 0.0);
    let mut n: u64 = 0;
    for (key, line) in lines {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(r) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / r);
            let now = Instant::now();
            if due > now {
                // Serve delivery reports while pacing.
                sink.poll();
                std::thread::sleep(due - now);
            }
        }
        let key = (!key.is_empty()).then_some(key.as_bytes());
        sink.send(topic, key, line.as_bytes());
        n += 1;
        if n.is_multiple_of(1024) {
            sink.poll();
            sink.resend_failed();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !sink.flush(Duration::from_secs(10)) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{} of {n} records to {topic} not acknowledged after 5 minutes (is the broker at {bootstrap} up?)",
                sink.pending()
            );
        }
    }
    Ok(n)
}

/// librdkafka's base client configuration: bootstrap servers and every pass-through property.
pub(crate) fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &k.bootstrap_servers);
    for (key, v) in &k.librdkafka {
        cc.set(key, v);
    }
    cc
}

/// Lets one warning through per interval and counts the ones it holds back, so a broker
/// outage does not flood the log.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter {
            interval: Duration::from_secs(5),
            state: Mutex::new((None, 0)),
        }
    }
}

impl LogLimiter {
    /// `Some(suppressed since the last one)` when a message may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let mut s = self.state.lock().ok()?;
        let now = Instant::now();
        match s.0 {
            Some(t) if now.duration_since(t) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                let n = s.1;
                *s = (Some(now), 0);
                Some(n)
            }
        }
    }
}

/// librdkafka's own log lines, through tracing (warnings and errors rate-limited).
pub(crate) fn log_librdkafka(
    client: &str,
    limiter: &LogLimiter,
    level: RDKafkaLogLevel,
    fac: &str,
    msg: &str,
) {
    if fac == "CONFWARN" {
        // The same pass-through properties go to consumer and producer: each ignores the
        // other's with a warning that says nothing useful here.
        tracing::debug!("librdkafka {client} {fac}: {msg}");
        return;
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Warning => {
            if let Some(n) = limiter.allow() {
                tracing::warn!(suppressed = n, "librdkafka {client} {fac}: {msg}");
            }
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::debug!("librdkafka {client} {fac}: {msg}")
        }
        RDKafkaLogLevel::Debug => tracing::trace!("librdkafka {client} {fac}: {msg}"),
    }
}
