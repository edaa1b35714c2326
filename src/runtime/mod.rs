//! The Kafka runtime (`cxstream run`, `cxstream demo`): input topics in, SPEC §4 records
//! out, through the same engine and decode path as replay. It wires the Kafka source
//! ([`crate::source::kafka`]) to the engine and the Kafka sink ([`crate::sink::kafka`]).
//!
//! ```text
//! mod.rs        the poll loop (run_pipeline), run summary, live progress
//! pipeline.rs   engine + producer + commit bookkeeping: process, drain, commit, idle advance
//! rebalance.rs  what assignments and revocations do to engine state
//! commit.rs     which input offsets are safe to commit
//! demo.rs       `cxstream demo`: an in-process mock cluster + generator + this pipeline
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
//! gets `|<partitions>` appended, e.g. `1m|2026-11-22T10:00:00Z|{}|0,2,4`, where
//! `<partitions>` is the record's own `partitions` field. (This departs from the revised
//! SPEC §4, whose key is always `<size>|<start>|<group>` with parts merged per §7.)
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
//!   acknowledged (a failed delivery is sent again, never dropped; see
//!   [`crate::sink::kafka`]), then commit
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
mod pipeline;
mod rebalance;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;

use crate::config::Config;
use crate::engine::Stats;
use crate::logs::LogLimiter;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::sink::kafka::Sink;
use crate::source;
use crate::source::kafka::{lock, SourceContext};
use crate::ts::Millis;

pub use demo::{demo, DemoOptions};
use pipeline::Pipeline;

/// The consumer of `run`, reporting rebalances to the pipeline.
type Consumer = BaseConsumer<SourceContext<Pipeline>>;

/// Messages processed between two drains of the engine.
const MAX_BATCH: usize = 4096;
/// How long a poll waits for the first message of a batch.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Budgets for the producer flush that precedes a commit.
const FLUSH_INTERVAL_BUDGET: Duration = Duration::from_secs(5);
const FLUSH_REVOKE_BUDGET: Duration = Duration::from_secs(15);
const FLUSH_SHUTDOWN_BUDGET: Duration = Duration::from_secs(30);
/// Timeout of a metadata request for the input topics.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The engine's watermark at exit, once it had one.
    pub watermark: Option<Millis>,
}

/// Live counters of a running pipeline, for `demo`'s status line and for tests.
#[derive(Debug)]
pub struct Progress {
    /// Input messages processed.
    pub events: AtomicU64,
    /// Records handed to the producer, by kind: `kpi.window` records.
    pub windows: AtomicU64,
    /// `sla.breached` records handed to the producer.
    pub breaches: AtomicU64,
    /// Other alert and signal records (`churn.risk`, `recovery.*`) handed to the producer.
    pub alerts: AtomicU64,
    /// Dead letters handed to the producer.
    pub deadletters: AtomicU64,
    /// Records acknowledged by the broker.
    pub acked: AtomicU64,
    /// Successful offset commits.
    pub commits: AtomicU64,
    /// Assignment callbacks served (one per rebalance that reaches this member).
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
    /// Zeroed counters, shared between the pipeline and its observers.
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

    pub(crate) fn set_assigned(&self, a: Vec<(String, i32)>) {
        if let Ok(mut v) = self.assigned.lock() {
            *v = a;
        }
    }

    pub(crate) fn set_watermark(&self, w: Option<Millis>) {
        self.watermark
            .store(w.unwrap_or(Millis::MIN), Ordering::Relaxed);
    }
}

/// Runs the Kafka pipeline until `shutdown` starts, then stops fetching, drains, flushes,
/// commits, leaves the group and returns what it did. Blocking: call it in a thread.
/// See the module documentation for the protocol.
pub fn run_pipeline(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Shutdown,
) -> Result<RunSummary> {
    run_pipeline_with(cfg, metrics, shutdown, Progress::new())
}

/// [`run_pipeline`] with live [`Progress`] counters.
pub fn run_pipeline_with(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Shutdown,
    progress: Arc<Progress>,
) -> Result<RunSummary> {
    let k = &cfg.kafka;
    let sink = Sink::new(k.client_config(), shutdown.clone())?;
    let pipe = Arc::new(Mutex::new(Pipeline::new(
        Arc::clone(&cfg),
        sink,
        metrics.clone(),
        Arc::clone(&progress),
    )));

    let consumer = source::kafka::consumer(&cfg, Arc::clone(&pipe), metrics.clone())?;

    let commit_every = Duration::from_millis(k.commit_interval.0.max(1) as u64);
    let mut last_commit = Instant::now();
    let mut ready = false;
    let warn = LogLimiter::default();
    while !shutdown.is_triggered() {
        let mut got = 0usize;
        let mut wait = POLL_WAIT;
        let mut busy = Duration::ZERO;
        while got < MAX_BATCH {
            let Some(item) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match item {
                Ok(msg) => {
                    let t0 = Instant::now();
                    let mut p = lock(&pipe);
                    p.refresh_metadata(&consumer);
                    p.process(&msg);
                    drop(p);
                    busy += t0.elapsed();
                    got += 1;
                }
                Err(KafkaError::PartitionEOF(partition)) => lock(&pipe).on_eof(partition),
                Err(e) => {
                    // Broker transport failures and the like: librdkafka reconnects itself.
                    if let Some(n) = warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            "kafka consumer: {e} (transient; continuing)"
                        );
                    }
                    break;
                }
            }
        }
        let t0 = Instant::now();
        let mut p = lock(&pipe);
        tracing::trace!(got, ?busy, "batch");
        if got > 0 {
            p.last_message = Instant::now();
        }
        p.refresh_metadata(&consumer);
        p.idle_advance();
        p.drain();
        if let Some(m) = &metrics {
            m.sync_engine(&p.engine);
            if got > 0 {
                m.observe_processing((busy + t0.elapsed()).as_secs_f64());
            }
            if !ready && !p.assigned.is_empty() {
                m.set_ready(true);
                ready = true;
            }
        }
        if last_commit.elapsed() >= commit_every {
            p.commit(&consumer, None, FLUSH_INTERVAL_BUDGET);
            last_commit = Instant::now();
        }
    }

    // Graceful shutdown: stop fetching, drain, flush, commit, leave the group.
    tracing::info!("stopping: flushing outputs and committing offsets");
    if let Some(m) = &metrics {
        m.set_ready(false);
    }
    {
        let mut p = lock(&pipe);
        p.closing = true;
        if !p.commit(&consumer, None, FLUSH_SHUTDOWN_BUDGET) {
            tracing::warn!(
                "final commit incomplete: the events after the last commit will be processed again"
            );
        }
    }
    consumer.unsubscribe();
    // Closing the consumer serves the final revoke (a no-op commit by now) and leaves the group.
    drop(consumer);
    let p = lock(&pipe);
    let summary = p.summary();
    if let Some(m) = &metrics {
        m.sync_engine(&p.engine);
    }
    tracing::info!(
        events = summary.events,
        records = summary.records_produced,
        commits = summary.commits,
        "stopped"
    );
    Ok(summary)
}
