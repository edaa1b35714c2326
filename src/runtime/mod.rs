//! The Kafka runtime (`cxstream run`, `cxstream demo`): input topics in, SPEC §4 records
//! out, through the same engine and decode path as replay, with each partition's state
//! checkpointed to Kafka (SPEC §7). It wires the Kafka source ([`crate::source::kafka`]) to
//! the engine and the Kafka sink ([`crate::sink::kafka`]).
//!
//! ```text
//! mod.rs        the poll loop (run_pipeline), run summary, live progress
//! pipeline.rs   each partition's life cycle: restoring, active, checkpointed; idle advances
//! restore.rs    reading a partition's checkpoint back, off the polling thread
//! merger.rs     the merge step of the parts topic: complete windows (SPEC §7)
//! marks.rs      where a merge step starts: its committed offset and mark
//! rebalance.rs  what assignments and revocations do
//! topics.rs     input partition count, the state topic
//! demo.rs       `cxstream demo`: an in-process mock cluster + generator + this pipeline
//! ```
//!
//! # Data path
//!
//! One rdkafka `BaseConsumer` in group `kafka.group_id`, subscribed to `kafka.input_topics`,
//! polled from one thread; each message goes through the decode path with its
//! `SourcePos::Kafka` position and its timestamp as the reference clock of SPEC §1. Records
//! go to `kafka.output_topic` (dead letters to `kafka.deadletter_topic`) through an
//! idempotent producer (`acks=all`), which also writes the state topic (parts-topic
//! watermarks, once released, go through a second one: [`crate::sink::kafka`]). The engine
//! state of a
//! message is its partition number: several input topics must be co-partitioned by customer
//! (and their interleaving within a partition is then not deterministic across restarts;
//! one input topic gives the guarantees below exactly).
//!
//! # Checkpoints (SPEC §7)
//!
//! Every `kafka.checkpoint_interval` (default 10 s), on revoke and at shutdown, each active
//! partition with anything new is checkpointed to partition *p* of the state topic
//! (`<group_id>.state`, created compacted with the input's partition count): its changed
//! tickets, customers and window parts, deletions, new dedup ids, and its core (watermark,
//! team names, held after-sales inputs), with its input position. The layout and why a
//! restore never sees a partial checkpoint are in [`crate::state`]. The manifest that makes a
//! checkpoint complete is written only once its records *and every output record sent before
//! it* are acknowledged; then the group offsets are committed to its position (for
//! monitoring and tools: a restore starts from the checkpoint's position).
//!
//! # Restore and re-emission
//!
//! On assignment (start, crash, rebalance, on any instance) a partition is paused and its
//! state restored from the latest complete checkpoint off the polling thread; `/readyz` is
//! false meanwhile. Its input resumes at the checkpoint's position. Processing is a
//! deterministic function of a partition's own input (SPEC §2), so every record derived
//! again is byte-identical to its first emission: window records by key, alerts and dead
//! letters by `id`. After any number of crashes, restarts and rebalances, nothing is lost
//! or counted twice. Prometheus counters are per process and start at 0 after a restart.
//!
//! # Live watermark
//!
//! When a partition is caught up (`enable.partition.eof`) and no message arrived on it for
//! [`IDLE_AFTER`], its watermark advances to `now − allowed_lateness`, so SLA timers fire on
//! a quiet stream. The advance is recorded in the state topic with its input position and
//! applied only once acknowledged (the partition paused meanwhile); a restore replays it at
//! the same position, so what it made late stays late. A partition with a backlog holds back
//! the completion of windows, not the other partitions' timers.
//!
//! # Several instances (the merge step)
//!
//! Windows are completed by the merge step of the parts topic ([`merger`]), one instance or
//! many: each partition's sealed window parts and, after them, its watermark go to the parts
//! topic (`kafka.parts_topic`, default `<output_topic>.parts`); every instance also runs a
//! merge step in group `<group_id>.merge`, which emits a window's complete record once every
//! input partition's watermark has passed its end. The output is the same bytes whatever the
//! number of instances, and the same as `replay`'s.
//!
//! Consumer lag is read from librdkafka's statistics (`hi_offset − app_offset` per partition,
//! every `statistics.interval.ms`, default 5 s here when metrics are on); it is only reported,
//! never used to decide "caught up" (Tansu's high watermark can be wrong).

pub mod admin;
mod advance;
mod checkpoint;
pub mod demo;
mod install;
mod marks;
mod merger;
mod outputs;
mod pipeline;
mod rebalance;
mod restore;
pub mod topics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;

use crate::config::{Config, CreateClient as _};
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
/// The same while a checkpoint's records are being handed to the producer in slices, while
/// the sink holds watermarks for their parts' acknowledgements, or while a partition is
/// restored (its result is taken within this, not within [`POLL_WAIT`]: a restore of an
/// empty partition takes ≈ 0.2 s on Tansu).
const FEED_WAIT: Duration = Duration::from_millis(5);
/// Budget for the checkpoint of a revoked partition.
const FLUSH_REVOKE_BUDGET: Duration = Duration::from_secs(20);
/// How long the end of a bounded run waits for the merge step to own and read every
/// parts-topic partition (a crashed predecessor leaves the merge group only when its session
/// times out).
const MERGE_FLUSH_BUDGET: Duration = Duration::from_secs(120);

/// How long a partition must be caught up and quiet before its watermark follows the wall
/// clock.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Where a bounded run (`run --until-end`) stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// The high watermarks of the input partitions when the run starts.
    HighWatermarks,
    /// These next offsets per input `(topic, partition)` (when the broker's high watermark
    /// cannot be trusted).
    Offsets(BTreeMap<(String, i32), i64>),
}

/// How a run ends and starts.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A bounded run (`run --until-end`): consume up to the end offsets, then finish like
    /// replay (every watermark to the largest event time, partial windows flagged), flush,
    /// checkpoint (without the final jump) and exit. Needs every partition.
    pub until: Option<Until>,
    /// Partitions without a checkpoint start from the group's committed offsets with empty
    /// state (an upgrade from a version without checkpoints) instead of stopping.
    pub from_committed: bool,
}

/// What a pipeline run did, returned when it stops.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Input messages processed (valid or not).
    pub events: u64,
    /// Records acknowledged by the broker (output, dead-letter and state topics).
    pub records_produced: u64,
    /// Records given up on because the broker can never take them (each logged).
    pub records_dropped: u64,
    /// Records sent again after a failed delivery (broker outage, producer replaced).
    pub records_resent: u64,
    /// Records still unacknowledged at exit.
    pub records_unacknowledged: u64,
    /// Records that found the producer's queue full and waited in the sink's own queue, by
    /// type (`cxstream_output_queue_full_total`).
    pub records_waited: BTreeMap<&'static str, u64>,
    /// The most state records one checkpoint had.
    pub largest_checkpoint: u64,
    /// Offset commits sent (one with each completed checkpoint, one after each restore from a
    /// checkpoint, and one per checkpoint interval for idle partitions; answers are not
    /// waited for).
    pub commits: u64,
    /// Complete checkpoints.
    pub checkpoints: u64,
    /// Partitions restored (from a checkpoint or empty).
    pub restores: u64,
    /// The last offset committed per input `(topic, partition)`.
    pub committed: BTreeMap<(String, i32), i64>,
    /// Input offsets skipped between two delivered ones (`cxstream_input_offsets_skipped_total`:
    /// deleted by retention before they were read, compacted, or transaction markers).
    pub offsets_skipped: u64,
    /// First and last offset processed per input `(topic, partition)` by this run.
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
    /// Offset commits sent (one with each completed checkpoint, one after each restore from a
    /// checkpoint, and one per checkpoint interval for idle partitions; answers are not
    /// waited for).
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

/// Runs the Kafka pipeline until `shutdown` starts, then stops fetching, checkpoints every
/// partition, commits, leaves the group and returns what it did. Blocking: call it in a
/// thread. See the module documentation for the protocol.
pub fn run_pipeline(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Shutdown,
) -> Result<RunSummary> {
    run_pipeline_with(
        cfg,
        metrics,
        shutdown,
        Progress::new(),
        RunOptions::default(),
    )
}

/// [`run_pipeline`] with live [`Progress`] counters and [`RunOptions`].
pub fn run_pipeline_with(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Shutdown,
    progress: Arc<Progress>,
    opts: RunOptions,
) -> Result<RunSummary> {
    let k = &cfg.kafka;
    // The input's partition count and the state topic, before joining the group.
    let probe: BaseConsumer = k.client_config().create_masked().context(
        "cannot create a Kafka client (check kafka.bootstrap_servers and kafka.librdkafka)",
    )?;
    let input_partitions = topics::input_partitions(&probe, &cfg)?;
    topics::ensure_state_topic(&probe, &cfg, input_partitions)?;
    let parts_partitions = topics::ensure_parts_topic(&probe, &cfg, input_partitions)?;
    let ends = match &opts.until {
        None => None,
        Some(Until::Offsets(o)) => Some(o.clone()),
        Some(Until::HighWatermarks) => Some(topics::end_offsets(&probe, &cfg, input_partitions)?),
    };
    if let Some(e) = &ends {
        tracing::info!(ends = ?e, "bounded run: consuming up to these offsets");
    }
    drop(probe);
    let mut sink = Sink::new(k.client_config(), shutdown.clone())?;
    sink.learn_topics(&[
        k.output_topic.clone(),
        k.deadletter_topic.clone(),
        k.state_topic(),
        k.parts_topic(),
    ]);
    // Never block the poll loop on a full producer queue: pause the input instead.
    sink.set_backpressure(true);
    let pipe = Arc::new(Mutex::new(Pipeline::new(
        Arc::clone(&cfg),
        sink,
        metrics.clone(),
        Arc::clone(&progress),
        opts.clone(),
        ends,
        (input_partitions, parts_partitions),
    )));
    // The merge step of the parts topic (SPEC §7): complete windows, on its own thread.
    let merger = merger::Merger::spawn(
        Arc::clone(&cfg),
        metrics.clone(),
        input_partitions,
        parts_partitions,
        shutdown.clone(),
    )?;
    let consumer = source::kafka::consumer(&cfg, Arc::clone(&pipe), metrics.clone())?;

    let warn = LogLimiter::default();
    let mut metadata_at = Instant::now();
    let mut until_done = false;
    let mut merge_incomplete = false;
    let mut trimmed_at = Instant::now();
    let mut decay = crate::alloc::DecayByLoad::default();
    while !shutdown.is_triggered() {
        if trimmed_at.elapsed() >= crate::alloc::TRIM_EVERY {
            trimmed_at = Instant::now();
            crate::alloc::trim();
            tracing::debug!(took = ?trimmed_at.elapsed(), "free heap memory returned to the OS");
            if let Some(m) = &metrics {
                if let Some(u) = crate::alloc::usage() {
                    m.set_heap(u);
                }
            }
        }
        let mut got = 0usize;
        // Paused by backpressure: no input to wait for (the producer is served instead).
        // Checkpoint records still to hand over: come back soon for the next slice.
        let mut wait = {
            let p = lock(&pipe);
            if !p.throttled.is_empty() {
                Duration::ZERO
            } else if p.feeding()
                || p.sink.holding()
                || p.parts
                    .values()
                    .any(|x| x.phase == pipeline::Phase::Restoring)
            {
                FEED_WAIT
            } else {
                POLL_WAIT
            }
        };
        let mut busy = Duration::ZERO;
        while got < MAX_BATCH {
            let Some(item) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match item {
                Ok(msg) => {
                    let t0 = Instant::now();
                    lock(&pipe).process(&msg);
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
        // Behind: a full batch was waiting.
        if decay.observe(got >= MAX_BATCH) {
            tracing::debug!(
                backlog = decay.backlog(),
                "allocator decay follows the input"
            );
        }
        let t0 = Instant::now();
        let mut p = lock(&pipe);
        p.poll_restores(&consumer);
        if let Some(e) = p.fatal.take() {
            drop(p);
            consumer.unsubscribe();
            return Err(e);
        }
        p.check_advances(&consumer);
        p.idle_advance(&consumer);
        p.drain();
        p.backpressure(&consumer);
        p.report_output_errors();
        p.maybe_checkpoint(&consumer);
        p.feed_checkpoints(checkpoint::CHECKPOINT_SLICE);
        p.progress_checkpoints(&consumer);
        if metadata_at.elapsed() >= Duration::from_secs(30) {
            metadata_at = Instant::now();
            p.check_metadata(&consumer);
        }
        p.sync_metrics();
        if let Some(m) = &metrics {
            if got > 0 {
                m.observe_processing((busy + t0.elapsed()).as_secs_f64());
            }
            m.set_ready(p.ready());
        }
        if p.until_reached() {
            until_done = true;
            break;
        }
    }

    // Stop fetching, checkpoint everything, commit, leave the group: all within
    // `kafka.shutdown_timeout` (what is not done by then is left as a crash leaves it).
    tracing::info!("stopping: checkpointing every partition and committing offsets");
    let timeout = Duration::from_millis(cfg.kafka.shutdown_timeout.0 as u64);
    let mut deadline = Instant::now() + timeout;
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    if let Some(m) = &metrics {
        m.set_ready(false);
        m.set_input_paused(false);
    }
    {
        let mut p = lock(&pipe);
        p.closing = true;
        // Idle advances sent but not acknowledged yet: applied once they are, so the
        // partitions can be checkpointed with them.
        p.settle_advances(&consumer, deadline);
        p.drain();
        let parts: Vec<i32> = p.parts.keys().copied().collect();
        for part in parts {
            if !p.checkpoint_now(&consumer, part, left(deadline)) {
                tracing::warn!(
                    partition = part,
                    "final checkpoint incomplete: the input after the previous one will be processed again"
                );
            }
        }
        // The final checkpoints' tombstones (cleanup of obsolete versions).
        for part in p.tombs.keys().copied().collect::<Vec<_>>() {
            p.flush_tombs(part, left(deadline));
        }
        if until_done {
            // SPEC §2 end of a finite input: every watermark to M, partial windows flagged.
            // Not checkpointed: a later live run continues from the last real position.
            p.finished = true;
            p.engine.finish();
            p.drain();
            // The parts it sealed go to the merge step in memory, after an end marker in
            // every parts-topic partition (behind this instance's parts).
            let run = format!("{}-{}", std::process::id(), pipeline::now_ms());
            let end = crate::engine::parts::PartMsg::End(run.clone());
            let (topic, fp) = (p.parts_topic.clone(), p.fingerprint);
            for q in 0..p.parts_partitions {
                pipeline::send_part(&mut p.sink, &topic, q, &end, fp);
            }
            if !p.sink.flush(left(deadline)) {
                tracing::warn!("outputs not all acknowledged at exit");
            }
            let finals = std::mem::take(&mut p.finals);
            merge_incomplete = !merger.flush(run, finals, MERGE_FLUSH_BUDGET);
            // The merge step's own budget is apart: the rest gets the whole timeout again.
            deadline = Instant::now() + timeout;
        }
        if !p.sink.flush(left(deadline)) {
            tracing::warn!("outputs not all acknowledged at exit");
        }
    }
    merger.stop_within(left(deadline));
    consumer.unsubscribe();
    // Closing the consumer serves the final revoke (nothing left to checkpoint) and leaves
    // the group; a coordinator that does not answer (a commit or the leave held during a
    // rebalance) cannot hold the process past the deadline.
    if !source::kafka::close_within("consumer", consumer, left(deadline)) {
        tracing::warn!(
            timeout = ?cfg.kafka.shutdown_timeout,
            "the consumer did not leave group {} within kafka.shutdown_timeout: exiting anyway; \
             the group reassigns its partitions after session.timeout.ms",
            cfg.kafka.group_id
        );
    }
    let mut p = lock(&pipe);
    p.report_output_errors();
    let summary = p.summary();
    p.sync_metrics();
    tracing::info!(
        events = summary.events,
        records = summary.records_produced,
        checkpoints = summary.checkpoints,
        commits = summary.commits,
        "stopped"
    );
    if merge_incomplete {
        anyhow::bail!(
            "the merge step did not emit every window of the bounded run within {} s: another \
             instance in group {} owns part of the parts topic {} (run --until-end alone), or \
             the broker did not answer; the state is checkpointed, run it again",
            MERGE_FLUSH_BUDGET.as_secs(),
            cfg.kafka.merge_group_id(),
            cfg.kafka.parts_topic()
        );
    }
    Ok(summary)
}
