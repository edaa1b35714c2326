//! The pipeline of `run`: the engine, the producer and the commit bookkeeping, shared by the
//! poll loop ([`super::run_pipeline_with`]) and the rebalance callbacks
//! ([`super::rebalance`]). Processing, draining records to their topics, committing, the idle
//! watermark advance and the run summary live here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::commit::{window_end, Tracker};
use super::{Consumer, Progress, RunSummary, IDLE_AFTER, METADATA_TIMEOUT};
use crate::config::Config;
use crate::engine::{Completion, Disposition, Engine};
use crate::logs::LogLimiter;
use crate::metrics::Metrics;
use crate::output::Record;
use crate::sink::kafka::Sink;
use crate::sink::Destination;
use crate::source::kafka::feed_message;
use crate::ts::Millis;

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Everything the poll loop and the rebalance callbacks share.
pub(super) struct Pipeline {
    pub(super) cfg: Arc<Config>,
    pub(super) engine: Engine,
    pub(super) sink: Sink,
    pub(super) tracker: Tracker,
    pub(super) sizes: Vec<Millis>,
    pub(super) metrics: Option<Arc<Metrics>>,
    pub(super) progress: Arc<Progress>,
    /// `(topic, partition)` currently assigned.
    pub(super) assigned: BTreeSet<(String, i32)>,
    /// Shard → how many assigned `(topic, partition)` feed it.
    pub(super) shard_refs: BTreeMap<i32, u32>,
    /// Shard → end of partition reached since its last message.
    pub(super) at_eof: BTreeMap<i32, bool>,
    /// Whether this instance owns every partition of the input topics (no key suffix).
    pub(super) owns_all: bool,
    pub(super) metadata_dirty: bool,
    pub(super) metadata_retry: Option<Instant>,
    pub(super) last_message: Instant,
    pub(super) events: u64,
    pub(super) commits: u64,
    /// Eager protocol: the partitions revoked by the rebalance in progress, whose state is
    /// kept until the next assignment decides (see [`Pipeline::on_assign`]).
    pub(super) parked: Option<BTreeSet<(String, i32)>>,
    /// Times the engine was restarted because open windows held moved partitions.
    pub(super) resets: u64,
    /// Shutting down: revocations only release (nothing is processed any more).
    pub(super) closing: bool,
    pub(super) warn: LogLimiter,
}

impl Pipeline {
    pub(super) fn new(
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
    pub(super) fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let fed = feed_message(&mut self.engine, msg);
        let end = (fed.disposition == Disposition::Applied)
            .then(|| fed.time.map(|t| window_end(t, &self.sizes)))
            .flatten();
        self.tracker
            .get_mut(msg.topic(), msg.partition())
            .processed(msg.offset(), end);
        if let Some(e) = self.at_eof.get_mut(&msg.partition()) {
            *e = false;
        }
        self.events += 1;
    }

    /// Produces everything the engine emitted and serves delivery reports.
    pub(super) fn drain(&mut self) {
        let Pipeline {
            engine,
            sink,
            metrics,
            progress,
            cfg,
            ..
        } = self;
        for r in engine.drain() {
            if let Some(m) = metrics {
                m.record(&r);
            }
            let line = r.to_line();
            let key = r.key();
            let topic = match (&r, Destination::of(&r)) {
                (_, Destination::DeadLetter) => {
                    progress.deadletters.fetch_add(1, Ordering::Relaxed);
                    &cfg.kafka.deadletter_topic
                }
                (Record::Window(_), _) => {
                    progress.windows.fetch_add(1, Ordering::Relaxed);
                    &cfg.kafka.output_topic
                }
                (Record::SlaBreached { .. }, _) => {
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
    pub(super) fn commit(
        &mut self,
        consumer: &Consumer,
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

    pub(super) fn on_eof(&mut self, partition: i32) {
        if !self.shard_refs.contains_key(&partition) {
            return;
        }
        self.at_eof.insert(partition, true);
    }

    /// Learns the partition count of the input topics to decide whether this instance owns
    /// them all.
    pub(super) fn refresh_metadata(&mut self, consumer: &Consumer) {
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
        self.engine.set_completion(if self.owns_all {
            Completion::Of(all.iter().map(|(_, p)| *p).collect())
        } else {
            Completion::Parts
        });
        self.metadata_dirty = false;
    }

    /// SPEC §2 live mode: caught up and quiet → the watermark follows the wall clock.
    pub(super) fn idle_advance(&mut self) {
        if self.shard_refs.is_empty()
            || self.last_message.elapsed() < IDLE_AFTER
            || !self.at_eof.values().all(|e| *e)
        {
            return;
        }
        let w = now_ms().saturating_sub(self.cfg.engine.allowed_lateness.0);
        let parts: Vec<i32> = self.at_eof.keys().copied().collect();
        for p in parts {
            self.engine.advance_partition(p, w);
        }
    }

    pub(super) fn summary(&self) -> RunSummary {
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
