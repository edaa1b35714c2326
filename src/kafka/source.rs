//! The consumer side: group membership, rebalances, the poll loop, idle advance, commits.
//!
//! The engine lives in a [`Pipeline`] behind a mutex shared with the consumer's context:
//! rebalance callbacks run inside `BaseConsumer::poll`, on the polling thread, so the loop
//! never holds the lock while it polls and the callbacks take it to drain, flush and commit
//! before partitions are released. The lock is therefore never contended.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use super::commit::{window_end, Tracker};
use super::sink::Sink;
use super::{base_config, LogLimiter, Progress, RunSummary, IDLE_AFTER};
use crate::config::Config;
use crate::engine::{Disposition, Engine};
use crate::event::{decode, SourcePos};
use crate::metrics::Metrics;
use crate::output::Record;
use crate::ts::Millis;

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

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Everything the poll loop and the rebalance callbacks share.
pub(crate) struct Pipeline {
    cfg: Arc<Config>,
    engine: Engine,
    sink: Sink,
    tracker: Tracker,
    sizes: Vec<Millis>,
    metrics: Option<Arc<Metrics>>,
    progress: Arc<Progress>,
    /// `(topic, partition)` currently assigned.
    assigned: BTreeSet<(String, i32)>,
    /// Shard → how many assigned `(topic, partition)` feed it.
    shard_refs: BTreeMap<i32, u32>,
    /// Shard → end of partition reached since its last message.
    at_eof: BTreeMap<i32, bool>,
    /// Whether this instance owns every partition of the input topics (no key suffix).
    owns_all: bool,
    metadata_dirty: bool,
    metadata_retry: Option<Instant>,
    last_message: Instant,
    events: u64,
    commits: u64,
    /// Eager protocol: the partitions revoked by the rebalance in progress, whose state is
    /// kept until the next assignment decides (see [`Pipeline::on_assign`]).
    parked: Option<BTreeSet<(String, i32)>>,
    /// Times the engine was restarted because open windows held moved partitions.
    resets: u64,
    /// Shutting down: revocations only release (nothing is processed any more).
    closing: bool,
    warn: LogLimiter,
}

impl Pipeline {
    fn new(
        cfg: Arc<Config>,
        sink: Sink,
        metrics: Option<Arc<Metrics>>,
        progress: Arc<Progress>,
    ) -> Pipeline {
        let mut engine = Engine::new(Arc::clone(&cfg));
        if let Some(m) = &metrics {
            engine.set_observer(m.observer());
        }
        let sizes = cfg.engine.windows.iter().map(|d| d.0).collect();
        Pipeline {
            cfg,
            engine,
            sink,
            tracker: Tracker::default(),
            sizes,
            metrics,
            progress,
            assigned: BTreeSet::new(),
            shard_refs: BTreeMap::new(),
            at_eof: BTreeMap::new(),
            owns_all: false,
            metadata_dirty: true,
            metadata_retry: None,
            last_message: Instant::now(),
            events: 0,
            commits: 0,
            parked: None,
            resets: 0,
            closing: false,
            warn: LogLimiter::default(),
        }
    }

    /// One input message into the engine (the same decode path as replay).
    fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let topic = msg.topic();
        let partition = msg.partition();
        let offset = msg.offset();
        let payload = msg.payload().unwrap_or_default();
        let shard = partition;
        let end = match decode(payload) {
            Ok(ev) => {
                let time = ev.time;
                let d = self.engine.process_event(shard, &ev, || {
                    (
                        payload.to_vec(),
                        SourcePos::Kafka {
                            topic: topic.to_string(),
                            partition,
                            offset,
                        },
                    )
                });
                (d == Disposition::Applied).then(|| window_end(time, &self.sizes))
            }
            Err(_) => {
                // Decoded again inside: only invalid inputs take this path.
                self.engine.process(
                    shard,
                    payload,
                    SourcePos::Kafka {
                        topic: topic.to_string(),
                        partition,
                        offset,
                    },
                );
                None
            }
        };
        self.tracker
            .get_mut(topic, partition)
            .processed(offset, end);
        if let Some(e) = self.at_eof.get_mut(&shard) {
            *e = false;
        }
        self.events += 1;
    }

    /// Produces everything the engine emitted and serves delivery reports.
    fn drain(&mut self) {
        let Pipeline {
            engine,
            sink,
            metrics,
            progress,
            cfg,
            owns_all,
            ..
        } = self;
        for r in engine.drain() {
            if let Some(m) = metrics {
                m.record(&r);
            }
            let line = r.to_line();
            let mut key = r.key();
            let topic = match &r {
                Record::DeadLetter { .. } => {
                    progress.deadletters.fetch_add(1, Ordering::Relaxed);
                    &cfg.kafka.deadletter_topic
                }
                Record::Window(w) => {
                    progress.windows.fetch_add(1, Ordering::Relaxed);
                    if !*owns_all {
                        // SPEC §4: a part of the complete KPI, for the partitions it covers.
                        key.push('|');
                        for (i, p) in w.window.agg.partitions.iter().enumerate() {
                            if i > 0 {
                                key.push(',');
                            }
                            key.push_str(&p.to_string());
                        }
                    }
                    &cfg.kafka.output_topic
                }
                Record::SlaBreached { .. } => {
                    progress.breaches.fetch_add(1, Ordering::Relaxed);
                    &cfg.kafka.output_topic
                }
                _ => {
                    progress.alerts.fetch_add(1, Ordering::Relaxed);
                    &cfg.kafka.output_topic
                }
            };
            sink.send(topic, Some(key.as_bytes()), line.as_bytes());
        }
        sink.poll();
        sink.resend_failed();
        progress.acked.store(sink.acked(), Ordering::Relaxed);
        if let Some(w) = engine.watermark() {
            self.tracker.release(w);
        }
        self.progress.set_watermark(self.engine.watermark());
        self.progress.events.store(self.events, Ordering::Relaxed);
    }

    /// Drains, flushes (for at most `budget`) and commits the safe offsets of the assigned
    /// partitions in `only` (all assigned ones if `None`). `true` if nothing is left to commit.
    fn commit(
        &mut self,
        consumer: &BaseConsumer<SourceContext>,
        only: Option<&BTreeSet<(String, i32)>>,
        budget: Duration,
    ) -> bool {
        self.drain();
        let mut tpl = TopicPartitionList::new();
        let mut offsets = Vec::new();
        for (topic, partition, t) in self.tracker.iter() {
            let key = (topic.to_string(), partition);
            if !self.assigned.contains(&key) || only.is_some_and(|o| !o.contains(&key)) {
                continue;
            }
            if let Some(off) = t.to_commit() {
                offsets.push((key, off));
            }
        }
        if offsets.is_empty() {
            return true;
        }
        let t0 = Instant::now();
        let flushed = self.sink.flush(budget);
        tracing::debug!(flushed, took = ?t0.elapsed(), "flush before commit");
        if !flushed {
            return false;
        }
        for ((topic, partition), off) in &offsets {
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*off)) {
                tracing::error!("cannot build the commit for {topic}/{partition}: {e}");
                return false;
            }
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                for ((topic, partition), off) in &offsets {
                    self.tracker.get_mut(topic, *partition).mark_committed(*off);
                }
                self.commits += 1;
                self.progress.commits.store(self.commits, Ordering::Relaxed);
                tracing::debug!(?offsets, "committed");
                true
            }
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        "offset commit failed ({e}); retrying at the next commit"
                    );
                }
                false
            }
        }
    }

    /// Partitions assigned. With the eager protocol every rebalance revokes everything first
    /// and the state is parked (see [`Pipeline::on_revoke`]); here it is decided whether it
    /// can be kept: yes if every parked partition with contributions in open windows comes
    /// back — they then continue from where this instance was (`tpl` offsets are set) — and
    /// otherwise the engine starts afresh and every partition resumes from its commit, which
    /// re-derives the open windows exactly (see the commit protocol).
    fn on_assign(&mut self, tpl: &mut TopicPartitionList) {
        let new: BTreeSet<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        if let Some(parked) = self.parked.take() {
            let moved: Vec<&(String, i32)> = parked.difference(&new).collect();
            let moved_open = moved.iter().any(|k| self.has_open_runs(k));
            if moved_open {
                tracing::info!(
                    ?moved,
                    "partitions with open windows moved to another member: restarting the engine from the committed offsets"
                );
                self.reset_engine();
            } else {
                for k in &moved {
                    self.release_shard(k);
                }
                for k in parked.intersection(&new) {
                    if let Some(next) = self.tracker.get(&k.0, k.1).and_then(|t| t.next()) {
                        // Continue exactly where this instance was: its state is intact.
                        let _ = tpl.set_partition_offset(&k.0, k.1, Offset::Offset(next));
                        self.assigned.insert(k.clone());
                    } else {
                        self.release_shard(k);
                    }
                }
            }
        }
        for k in new {
            if self.assigned.contains(&k) {
                self.at_eof.insert(k.1, false);
                continue;
            }
            self.tracker.forget_runs(&k.0, k.1);
            self.assigned.insert(k.clone());
            let p = k.1;
            let refs = self.shard_refs.entry(p).or_insert(0);
            *refs += 1;
            if *refs == 1 {
                self.engine.assign(p);
                self.engine.hold_until_data(p, true);
            }
            self.at_eof.insert(p, false);
        }
        self.metadata_dirty = true;
        self.metadata_retry = None;
        self.owns_all = false;
        self.progress
            .set_assigned(self.assigned.iter().cloned().collect());
        self.progress.rebalances.fetch_add(1, Ordering::Relaxed);
        tracing::info!(assigned = ?self.assigned, "partitions assigned");
    }

    /// Partitions revoked (or lost). Everything derived so far is produced and flushed and the
    /// safe offsets of every assigned partition are committed (unless the assignment was lost:
    /// another member may own the partitions already). Then:
    /// - eager protocol (everything is revoked): the state is parked until the next
    ///   assignment says whether it can be kept;
    /// - cooperative protocol: if a revoked partition still has contributions in open
    ///   windows, its new owner re-derives them, so this engine must not emit them: it starts
    ///   afresh and the partitions it keeps are rewound to their commits; otherwise only the
    ///   revoked shards are dropped.
    fn on_revoke(
        &mut self,
        consumer: &BaseConsumer<SourceContext>,
        tpl: &TopicPartitionList,
        cooperative: bool,
    ) {
        let revoked: BTreeSet<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .filter(|k| self.assigned.contains(k))
            .collect();
        if revoked.is_empty() {
            return;
        }
        if consumer.assignment_lost() {
            tracing::warn!(
                ?revoked,
                "partitions lost (session timed out); not committing them"
            );
            self.drain();
        } else if !self.commit(consumer, None, FLUSH_REVOKE_BUDGET) {
            tracing::warn!(
                ?revoked,
                "revoked partitions released without a final commit; their next owner resumes from the last commit"
            );
        }
        for k in &revoked {
            self.assigned.remove(k);
            if let Some(m) = &self.metrics {
                m.remove_consumer_lag(&k.0, k.1);
            }
        }
        if self.closing {
            for k in &revoked {
                self.release_shard(k);
            }
        } else if !cooperative {
            let mut parked = self.parked.take().unwrap_or_default();
            parked.extend(revoked.iter().cloned());
            self.parked = Some(parked);
        } else if revoked.iter().any(|k| self.has_open_runs(k)) {
            tracing::info!(
                ?revoked,
                "partitions with open windows revoked: restarting the engine from the committed offsets"
            );
            let kept: Vec<(String, i32)> = self.assigned.iter().cloned().collect();
            self.reset_engine();
            let mut seek = TopicPartitionList::new();
            for k in kept {
                let t = self.tracker.get(&k.0, k.1);
                let to = t
                    .and_then(|t| t.committed().or(t.processed_range().map(|r| r.0)))
                    .map_or(Offset::Stored, Offset::Offset);
                let _ = seek.add_partition_offset(&k.0, k.1, to);
                self.tracker.forget_runs(&k.0, k.1);
                self.assigned.insert(k.clone());
                let refs = self.shard_refs.entry(k.1).or_insert(0);
                *refs += 1;
                if *refs == 1 {
                    self.engine.assign(k.1);
                    self.engine.hold_until_data(k.1, true);
                }
                self.at_eof.insert(k.1, false);
            }
            if seek.count() > 0 {
                if let Err(e) = consumer.seek_partitions(seek, Duration::from_secs(10)) {
                    tracing::error!("cannot rewind the kept partitions to their commits: {e}");
                }
            }
        } else {
            for k in &revoked {
                self.release_shard(k);
            }
        }
        self.metadata_dirty = true;
        self.metadata_retry = None;
        self.owns_all = false;
        self.progress
            .set_assigned(self.assigned.iter().cloned().collect());
        tracing::info!(?revoked, remaining = ?self.assigned, "partitions revoked");
    }

    /// Whether a partition has events whose windows are still open in this engine.
    fn has_open_runs(&self, k: &(String, i32)) -> bool {
        self.tracker.get(&k.0, k.1).is_some_and(|t| t.runs() > 0)
    }

    /// Drops one `(topic, partition)`'s claim on its shard (the shard goes with the last).
    fn release_shard(&mut self, k: &(String, i32)) {
        self.tracker.forget_runs(&k.0, k.1);
        if let Some(refs) = self.shard_refs.get_mut(&k.1) {
            *refs -= 1;
            if *refs == 0 {
                self.shard_refs.remove(&k.1);
                self.at_eof.remove(&k.1);
                self.engine.revoke(k.1);
            }
        }
    }

    /// A fresh engine: no shards, no open windows, no watermark. Used when open windows hold
    /// contributions of partitions that another member will process again from their commit.
    fn reset_engine(&mut self) {
        self.drain();
        for p in std::mem::take(&mut self.shard_refs).into_keys() {
            // Reverts the shard's contributions to the current-state gauges.
            self.engine.revoke(p);
        }
        self.at_eof.clear();
        let mut engine = Engine::new(Arc::clone(&self.cfg));
        if let Some(m) = &self.metrics {
            engine.set_observer(m.observer());
        }
        // Counters stay cumulative across the restart.
        engine.carry_stats_from(&self.engine);
        self.engine = engine;
        let keys: Vec<(String, i32)> = self
            .tracker
            .iter()
            .map(|(t, p, _)| (t.to_string(), p))
            .collect();
        for (t, p) in keys {
            self.tracker.forget_runs(&t, p);
        }
        self.resets += 1;
    }

    fn on_eof(&mut self, partition: i32) {
        if !self.shard_refs.contains_key(&partition) {
            return;
        }
        self.at_eof.insert(partition, true);
        // A partition that ends before any event has no backlog to wait for.
        self.engine.hold_until_data(partition, false);
    }

    /// Learns the partition count of the input topics to decide whether this instance owns
    /// them all.
    fn refresh_metadata(&mut self, consumer: &BaseConsumer<SourceContext>) {
        if !self.metadata_dirty || self.metadata_retry.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let mut all = BTreeSet::new();
        for topic in &self.cfg.kafka.input_topics {
            match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
                Ok(md) => {
                    for t in md.topics() {
                        if t.name() == topic {
                            for p in t.partitions() {
                                all.insert((topic.clone(), p.id()));
                            }
                        }
                    }
                }
                Err(e) => {
                    if let Some(n) = self.warn.allow() {
                        tracing::warn!(suppressed = n, "cannot read metadata of {topic}: {e}");
                    }
                    self.metadata_retry = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
            }
        }
        self.owns_all = !all.is_empty() && all.is_subset(&self.assigned);
        self.metadata_dirty = false;
    }

    /// SPEC §2 live mode: caught up and quiet → the watermark follows the wall clock.
    fn idle_advance(&mut self) {
        if self.shard_refs.is_empty()
            || self.last_message.elapsed() < IDLE_AFTER
            || !self.at_eof.values().all(|e| *e)
        {
            return;
        }
        let w = now_ms().saturating_sub(self.cfg.engine.allowed_lateness.0);
        if self.engine.watermark().is_none_or(|cur| w > cur) {
            self.engine.advance_to(w);
        }
    }

    fn summary(&self) -> RunSummary {
        let mut s = RunSummary {
            events: self.events,
            records_produced: self.sink.acked(),
            records_dropped: self.sink.dropped(),
            records_resent: self.sink.resent(),
            records_unacknowledged: self.sink.pending() as u64,
            commits: self.commits,
            engine_restarts: self.resets,
            stats: self.engine.stats().clone(),
            watermark: self.engine.watermark(),
            ..RunSummary::default()
        };
        for (topic, p, t) in self.tracker.iter() {
            if let Some(c) = t.committed() {
                s.committed.insert((topic.to_string(), p), c);
            }
            if let Some(r) = t.processed_range() {
                s.processed.insert((topic.to_string(), p), r);
            }
        }
        s
    }
}

/// The consumer's context: rebalance callbacks, librdkafka logs and statistics.
pub(crate) struct SourceContext {
    pipe: Arc<Mutex<Pipeline>>,
    metrics: Option<Arc<Metrics>>,
    warn: LogLimiter,
}

fn lock(m: &Mutex<Pipeline>) -> MutexGuard<'_, Pipeline> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        super::log_librdkafka("consumer", &self.warn, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let KafkaError::Global(RDKafkaErrorCode::PartitionEOF) = error {
            return; // also delivered by poll: the normal "caught up" signal
        }
        if let Some(n) = self.warn.allow() {
            tracing::warn!(suppressed = n, "kafka consumer: {error}: {reason}");
        }
    }

    fn stats(&self, stats: Statistics) {
        let Some(m) = &self.metrics else {
            return;
        };
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                if *id < 0 || !p.desired || p.app_offset < 0 || p.hi_offset < 0 {
                    continue;
                }
                m.set_consumer_lag(name, *id, (p.hi_offset - p.app_offset).max(0));
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    /// Replaces rdkafka's default so that an assignment can start partitions at this
    /// instance's own positions (state kept across an eager rebalance).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                lock(&self.pipe).on_assign(tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                lock(&self.pipe).on_revoke(consumer, tpl, cooperative);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(
                    "rebalance error: {:?}; releasing the assignment",
                    RDKafkaErrorCode::from(other)
                );
                let all = consumer.assignment().unwrap_or_default();
                lock(&self.pipe).on_revoke(consumer, &all, false);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!("cannot apply the rebalance: {e}");
        }
    }
}

/// [`super::run_pipeline`] with live [`Progress`] counters.
pub fn run_pipeline_with(
    cfg: Arc<Config>,
    metrics: Option<Arc<Metrics>>,
    shutdown: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Result<RunSummary> {
    let k = &cfg.kafka;
    let sink = Sink::new(base_config(k))?;
    let pipe = Arc::new(Mutex::new(Pipeline::new(
        Arc::clone(&cfg),
        sink,
        metrics.clone(),
        Arc::clone(&progress),
    )));

    let mut cc = base_config(k);
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    if cc.get("auto.offset.reset").is_none() {
        cc.set("auto.offset.reset", "earliest");
    }
    if metrics.is_some() && cc.get("statistics.interval.ms").is_none() {
        cc.set("statistics.interval.ms", "5000");
    }
    let consumer: BaseConsumer<SourceContext> = cc
        .create_with_context(SourceContext {
            pipe: Arc::clone(&pipe),
            metrics: metrics.clone(),
            warn: LogLimiter::default(),
        })
        .context("cannot create the Kafka consumer (check kafka.librdkafka settings)")?;
    let topics: Vec<&str> = k.input_topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("cannot subscribe to {topics:?}"))?;
    tracing::info!(
        bootstrap = %k.bootstrap_servers,
        group = %k.group_id,
        ?topics,
        "consuming"
    );

    let commit_every = Duration::from_millis(k.commit_interval.0.max(1) as u64);
    let mut last_commit = Instant::now();
    let mut ready = false;
    let warn = LogLimiter::default();
    while !shutdown.load(Ordering::Relaxed) {
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
