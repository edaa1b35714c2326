//! The pipeline of `run`: the engine, the producer, and each assigned partition's life cycle
//! — restoring, active, checkpointed — shared by the poll loop ([`super::run_pipeline_with`])
//! and the rebalance callbacks ([`super::rebalance`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer as _;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::advance::Advance;
use super::checkpoint::Pending;
use super::restore;
use super::{Consumer, Progress, RunOptions, RunSummary};
use crate::config::Config;
use crate::engine::parts::PartMsg;
use crate::engine::{Completion, Engine};
use crate::logs::LogLimiter;
use crate::metrics::Metrics;
use crate::output::Record;
use crate::sink::kafka::{Out, Sink};
use crate::sink::Destination;
use crate::source::kafka::feed_message;
use crate::source::Admission;
use crate::ts::Millis;

/// An input position not known yet: start at the beginning of the partition.
pub const BEGINNING: i64 = -2;
/// An input position not known yet: start at the end of the partition.
pub const END: i64 = -1;

pub(super) fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Where an assigned partition is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its state is being read back; its input is paused.
    Restoring,
    /// Processing.
    Active,
}

/// One assigned input partition (of every input topic).
pub(super) struct Part {
    /// Which assignment this is (a restore for an older one is ignored).
    pub(super) epoch: u64,
    /// Input topics assigned with this partition number.
    pub topics: BTreeSet<String>,
    /// Restoring or active.
    pub phase: Phase,
    /// Next offset per topic ([`BEGINNING`]/[`END`] until known).
    pub next: BTreeMap<String, i64>,
    /// Reached the end of the partition since its last message.
    pub at_eof: bool,
    /// When its last message was processed.
    pub(super) last_message: Instant,
    /// Recorded idle advances to replay at their positions (after a restore).
    pub(super) replay: VecDeque<Advance>,
    /// An idle advance written to the state topic and not acknowledged yet: the partition
    /// is paused until it is, then the advance is applied.
    pub(super) awaiting: Option<(Advance, u64)>,
    /// The last idle advance applied (included in the next checkpoint).
    pub(super) advance_seq: u64,
    /// The next idle advance's sequence number.
    pub(super) next_advance: u64,
    /// The last checkpoint generation used.
    pub(super) gen: u64,
    /// Processed something since the last checkpoint.
    pub(super) changed: bool,
    /// Idle-advance sequence numbers at or below this have been tombstoned.
    pub(super) advances_collected: u64,
    /// When the latest complete checkpoint was written.
    pub checkpointed_at: Option<Instant>,
    /// When its restore started.
    pub(super) restore_started: Instant,
}

impl Part {
    /// Its next offset per input topic, as a checkpoint records it and a resume seeks to.
    pub(super) fn positions(&self) -> Vec<(String, i64)> {
        self.next.clone().into_iter().collect()
    }
}

/// Everything the poll loop and the rebalance callbacks share.
pub(crate) struct Pipeline {
    pub cfg: Arc<Config>,
    pub engine: Engine,
    pub sink: Sink,
    pub metrics: Option<Arc<Metrics>>,
    pub progress: Arc<Progress>,
    pub opts: RunOptions,
    /// Where a bounded run stops (next offset per input partition).
    pub(super) ends: Option<BTreeMap<(String, i32), i64>>,
    pub(super) admission: Admission,
    pub(super) state_topic: String,
    /// The input topics' partition count (the partitions a window waits for).
    pub input_partitions: i32,
    /// The parts topic and its partition count (SPEC §7: window parts and watermarks go
    /// there, to the merge step).
    pub(super) parts_topic: String,
    pub(super) parts_partitions: i32,
    /// The configuration's fingerprint, stamped on parts-topic records.
    pub(super) fingerprint: u64,
    /// Parts the end of a bounded run sealed: handed to the merge step, never sent.
    pub(super) finals: Vec<crate::engine::parts::PartOut>,
    /// The assigned partitions.
    pub parts: BTreeMap<i32, Part>,
    pub(super) restore_tx: Sender<restore::Done>,
    pub(super) restore_rx: Receiver<restore::Done>,
    pub(super) epoch: u64,
    pub(super) pending: BTreeMap<i32, Pending>,
    /// Tombstones of complete checkpoints not handed to the producer yet, by partition.
    pub(super) tombs: BTreeMap<i32, std::vec::IntoIter<crate::state::StateRecord>>,
    pub(super) last_checkpoint: Instant,
    /// Partitions whose periodic checkpoint is due, started one at a time
    /// ([`Pipeline::maybe_checkpoint`]).
    pub(super) due: BTreeSet<i32>,
    /// An error that stops the instance (a checkpoint it must not ignore).
    pub fatal: Option<anyhow::Error>,
    /// Shutting down: the final checkpoints are taken (or given up) before the consumer
    /// closes, so its last revoke only drops the partitions.
    pub closing: bool,
    /// A bounded run finished (every watermark moved to M): that state is never
    /// checkpointed (SPEC §2), so a later live run continues from the last real position.
    pub finished: bool,
    pub events: u64,
    pub commits: u64,
    pub checkpoints: u64,
    pub restores: u64,
    pub(super) committed: BTreeMap<(String, i32), i64>,
    /// First and last offset processed per input `(topic, partition)`, for the summary.
    pub(super) processed: BTreeMap<(String, i32), (i64, i64)>,
    pub(super) warn: LogLimiter,
    /// Input offsets skipped so far ([`Pipeline::skipped_offsets`]).
    pub(super) offsets_skipped: u64,
    /// Partitions paused by backpressure (the producer's queue is full).
    pub(super) throttled: BTreeSet<i32>,
    /// Output errors already added to the metric, by (type, reason).
    pub(super) errors_reported: BTreeMap<(&'static str, &'static str), u64>,
    /// `cxstream_output_queue_full_total` reported so far, by type.
    pub(super) waits_reported: BTreeMap<&'static str, u64>,
    /// The most records one checkpoint had.
    pub(super) largest_checkpoint: u64,
}

impl Pipeline {
    pub(super) fn new(
        cfg: Arc<Config>,
        sink: Sink,
        metrics: Option<Arc<Metrics>>,
        progress: Arc<Progress>,
        opts: RunOptions,
        ends: Option<BTreeMap<(String, i32), i64>>,
        (input_partitions, parts_partitions): (i32, i32),
    ) -> Pipeline {
        let mut engine = Engine::new(Arc::clone(&cfg));
        if let Some(m) = &metrics {
            engine.set_observer(m.observer());
        }
        engine.set_completion(Completion::Topic);
        let (restore_tx, restore_rx) = std::sync::mpsc::channel();
        Pipeline {
            admission: Admission::new(&cfg, None),
            parts_topic: cfg.kafka.parts_topic(),
            fingerprint: cfg.fingerprint(),
            state_topic: cfg.kafka.state_topic(),
            cfg,
            engine,
            sink,
            metrics,
            progress,
            opts,
            ends,
            input_partitions,
            parts_partitions,
            finals: Vec::new(),
            parts: BTreeMap::new(),
            restore_tx,
            restore_rx,
            epoch: 0,
            pending: BTreeMap::new(),
            tombs: BTreeMap::new(),
            last_checkpoint: Instant::now(),
            due: BTreeSet::new(),
            fatal: None,
            closing: false,
            finished: false,
            events: 0,
            commits: 0,
            checkpoints: 0,
            restores: 0,
            committed: BTreeMap::new(),
            processed: BTreeMap::new(),
            warn: LogLimiter::default(),
            offsets_skipped: 0,
            throttled: BTreeSet::new(),
            errors_reported: BTreeMap::new(),
            waits_reported: BTreeMap::new(),
            largest_checkpoint: 0,
        }
    }

    /// Whether every assigned partition is active (`/readyz`).
    pub(super) fn ready(&self) -> bool {
        !self.parts.is_empty() && self.parts.values().all(|p| p.phase == Phase::Active)
    }

    /// Partitions assigned: each is paused and restored from its latest checkpoint.
    pub(super) fn assign(&mut self, assigned: &[(String, i32)]) {
        for (topic, p) in assigned {
            if let Some(part) = self.parts.get_mut(p) {
                part.topics.insert(topic.clone());
                continue;
            }
            self.epoch += 1;
            let part = Part {
                epoch: self.epoch,
                topics: BTreeSet::from([topic.clone()]),
                phase: Phase::Restoring,
                next: BTreeMap::new(),
                at_eof: false,
                last_message: Instant::now(),
                replay: VecDeque::new(),
                awaiting: None,
                advance_seq: 0,
                next_advance: 1,
                gen: 0,
                changed: false,
                advances_collected: 0,
                checkpointed_at: None,
                restore_started: Instant::now(),
            };
            self.parts.insert(*p, part);
            restore::spawn(
                restore::Job {
                    cfg: Arc::clone(&self.cfg),
                    partition: *p,
                    epoch: self.epoch,
                    input_partitions: self.input_partitions,
                    observer: self.engine.observer_fork(),
                },
                self.restore_tx.clone(),
            );
            tracing::info!(
                partition = p,
                "restoring the partition's state from {}",
                self.state_topic
            );
        }
        self.publish_assignment();
    }

    /// Partitions released: checkpointed first unless `lost`, then dropped.
    pub(super) fn release(&mut self, consumer: &Consumer, partitions: &[i32], lost: bool) {
        if !lost && !self.closing {
            // Idle advances in flight are applied first, so the final checkpoints hold them.
            self.settle_advances(consumer, Instant::now() + super::FLUSH_REVOKE_BUDGET / 4);
        }
        for p in partitions {
            let Some(part) = self.parts.get(p) else {
                continue;
            };
            // At shutdown the final checkpoints are taken before the consumer closes.
            if part.phase == Phase::Active && !lost && !self.finished && !self.closing {
                if !self.checkpoint_now(consumer, *p, super::FLUSH_REVOKE_BUDGET) {
                    tracing::warn!(
                        partition = p,
                        "released without a final checkpoint: its next owner resumes from the previous one"
                    );
                }
            } else if let Some(pend) = self.pending.remove(p) {
                self.engine.abandon_checkpoint(pend.ck);
            }
            self.pending.remove(p);
            // Lost: dropped, as a crash would (cleanup only); so at shutdown, whose deadline
            // they had. Revoked: the final checkpoint's go out before the partition's next
            // owner can write.
            if lost || self.closing {
                self.tombs.remove(p);
            } else {
                self.flush_tombs(*p, super::FLUSH_REVOKE_BUDGET);
            }
            self.engine.revoke(*p);
            self.parts.remove(p);
            if let Some(m) = &self.metrics {
                m.remove_partition(*p);
                for t in &self.cfg.kafka.input_topics {
                    m.remove_consumer_lag(t, *p);
                }
            }
        }
        self.drain();
        self.publish_assignment();
    }

    fn publish_assignment(&mut self) {
        let a = self
            .parts
            .iter()
            .flat_map(|(p, part)| part.topics.iter().map(move |t| (t.clone(), *p)))
            .collect();
        self.progress.set_assigned(a);
    }

    /// One input message into the engine (the same decode path as replay).
    pub(super) fn process(&mut self, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        let topic = msg.topic();
        let offset = msg.offset();
        let Some(part) = self.parts.get_mut(&p) else {
            return;
        };
        if part.phase != Phase::Active || part.awaiting.is_some() {
            // Paused: fetched before the pause took effect; read again after the seek.
            return;
        }
        let next = part.next.get(topic).copied().unwrap_or(BEGINNING);
        if next >= 0 && offset < next {
            return; // delivered again before a seek took effect
        }
        if next >= 0 && offset > next {
            self.skipped_offsets(topic, p, next, offset);
        }
        if self
            .ends
            .as_ref()
            .and_then(|e| e.get(&(topic.to_string(), p)))
            .is_some_and(|end| offset >= *end)
        {
            return; // a bounded run stops at its end offsets
        }
        // Recorded idle advances at or before this position are part of its history.
        self.replay_advances(p, Some((topic, offset)));
        let fed = feed_message(&mut self.engine, msg, &self.admission);
        let _ = fed;
        let Some(part) = self.parts.get_mut(&p) else {
            return;
        };
        part.next.insert(topic.to_string(), offset + 1);
        let range = self
            .processed
            .entry((topic.to_string(), p))
            .or_insert((offset, offset));
        range.1 = range.1.max(offset);
        part.at_eof = false;
        part.last_message = Instant::now();
        part.changed = true;
        self.events += 1;
    }

    /// Offsets `next..offset` of `topic`/`p` were never delivered: counted and reported. Most
    /// often the broker deleted them (retention) before they were read — an outage longer
    /// than the input's retention — and the consumer started again at the earliest offset
    /// it still has; their events are lost to every KPI. Compaction and transaction markers
    /// leave such gaps too (one offset per transaction).
    fn skipped_offsets(&mut self, topic: &str, p: i32, next: i64, offset: i64) {
        let n = (offset - next) as u64;
        self.offsets_skipped += n;
        if let Some(m) = &self.metrics {
            m.add_input_offsets_skipped(topic, p, n);
        }
        if n > 1 {
            if let Some(suppressed) = self.warn.allow() {
                tracing::warn!(
                    suppressed,
                    topic,
                    partition = p,
                    from = next,
                    to = offset,
                    "input offsets skipped: {n} message(s) never delivered, most likely deleted by \
                     the topic's retention before cxstream read them (their events are in no \
                     KPI); raise the input topic's retention.ms above the longest outage"
                );
            }
        }
    }

    /// The end of a partition was reached.
    pub(super) fn on_eof(&mut self, p: i32) {
        if let Some(part) = self.parts.get_mut(&p) {
            if part.phase == Phase::Active {
                part.at_eof = true;
            }
        }
        self.replay_advances(p, None);
    }

    /// Produces everything the engine emitted and serves delivery reports.
    pub(super) fn drain(&mut self) {
        let Pipeline {
            engine,
            sink,
            metrics,
            progress,
            cfg,
            finished,
            finals,
            parts_topic,
            parts_partitions,
            fingerprint,
            ..
        } = self;
        for r in engine.drain() {
            if let Some(m) = metrics {
                m.record(&r);
            }
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
            sink.send_record(topic, &r);
        }
        // Window parts, then the watermarks that say they are all out (SPEC §7).
        let mut parts = engine.take_parts();
        let watermarks = engine.watermark_updates();
        if *finished {
            // The end of a bounded run: never part of the merge state.
            finals.append(&mut parts);
        } else {
            let fp = *fingerprint;
            let n = *parts_partitions;
            for p in parts.drain(..) {
                let q = p.route(n);
                let msg = PartMsg::Part(p);
                send_part(sink, parts_topic, q, &msg, fp);
            }
            for (partition, watermark) in watermarks {
                let msg = PartMsg::Watermark {
                    partition,
                    watermark,
                };
                for q in 0..n {
                    send_part(sink, parts_topic, q, &msg, fp);
                }
            }
        }
        engine.give_back_parts(parts);
        sink.poll();
        sink.resend_failed();
        progress.acked.store(sink.acked(), Ordering::Relaxed);
        progress.set_watermark(engine.watermark());
        progress.events.store(self.events, Ordering::Relaxed);
    }

    /// Learns the partition count of the input topics (changes are an error: customers would
    /// hash to other partitions).
    pub(super) fn check_metadata(&mut self, consumer: &Consumer) {
        match super::topics::input_partitions(consumer, &self.cfg) {
            Ok(n) if n == self.input_partitions => {}
            Ok(n) => {
                self.fatal = Some(anyhow::anyhow!(
                    "the input topics now have {n} partitions instead of {}: customers hash to other \
                     partitions, so the checkpoints no longer fit; stop every instance and run \
                     `cxstream state reset` (or restore the partition count)",
                    self.input_partitions
                ));
            }
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(suppressed = n, "{e:#}");
                }
            }
        }
    }

    /// Whether a bounded run (`--until-end`) has consumed everything it should.
    pub(super) fn until_reached(&self) -> bool {
        let Some(ends) = &self.ends else {
            return false;
        };
        if self.parts.len() as i32 != self.input_partitions {
            return false;
        }
        self.parts.iter().all(|(p, part)| {
            part.phase == Phase::Active
                && part.awaiting.is_none()
                && part.topics.iter().all(|t| {
                    let end = ends.get(&(t.clone(), *p)).copied().unwrap_or(0);
                    let next = part.next.get(t).copied().unwrap_or(BEGINNING);
                    end <= 0 || next >= end
                })
        })
    }

    /// Metrics of the state (SPEC §7) and the pipeline.
    pub(super) fn sync_metrics(&self) {
        let Some(m) = &self.metrics else {
            return;
        };
        m.sync_engine(&self.engine);
        for (p, w) in self.engine.partition_watermarks() {
            m.set_partition_watermark(p, w);
        }
        for (p, part) in &self.parts {
            if let Some(t) = part.checkpointed_at {
                m.set_checkpoint_age(*p, t.elapsed().as_secs_f64());
            }
        }
    }

    /// What the run did.
    pub(super) fn summary(&self) -> RunSummary {
        RunSummary {
            events: self.events,
            records_produced: self.sink.acked(),
            records_dropped: self.sink.dropped(),
            records_resent: self.sink.resent(),
            records_unacknowledged: self.sink.pending() as u64,
            records_waited: self.sink.waited().clone(),
            largest_checkpoint: self.largest_checkpoint,
            offsets_skipped: self.offsets_skipped,
            commits: self.commits,
            checkpoints: self.checkpoints,
            restores: self.restores,
            committed: self.committed.clone(),
            processed: self.processed.clone(),
            stats: self.engine.stats(),
            watermark: self.engine.watermark(),
        }
    }
}

/// Sends one parts-topic record to partition `q`.
pub(super) fn send_part(sink: &mut Sink, topic: &str, q: i32, msg: &PartMsg, fingerprint: u64) {
    sink.with_scratch(|sink, buf| {
        msg.encode_into(fingerprint, buf);
        let n = buf.len();
        msg.push_key(buf);
        let (value, key) = buf.split_at(n);
        let out = Out {
            topic,
            partition: Some(q),
            key: Some(key),
            payload: Some(value),
            kind: "part",
        };
        // A watermark or an end marker says the parts before it are all out: it never
        // overtakes one, even one whose delivery failed and is sent again (SPEC §7).
        match msg {
            PartMsg::Part(_) | PartMsg::Packed(_) => sink.send_part(out),
            _ => sink.send_after_parts(out),
        }
    });
}

pub(super) fn tpl_of(p: i32, topics: impl Iterator<Item = String>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        tpl.add_partition(&t, p);
    }
    tpl
}

/// Stops fetching partition `p`.
pub(super) fn pause(consumer: &Consumer, p: i32, topics: &BTreeSet<String>) {
    if let Err(e) = consumer.pause(&tpl_of(p, topics.iter().cloned())) {
        tracing::warn!(partition = p, "cannot pause: {e}");
    }
}

/// Seeks partition `p` of each topic to its position and resumes fetching.
pub(super) fn resume_at(consumer: &Consumer, p: i32, positions: &[(String, i64)]) {
    for (t, o) in positions {
        let off = match *o {
            END => Offset::End,
            o if o < 0 => Offset::Beginning,
            o => Offset::Offset(o),
        };
        if let Err(e) = consumer.seek(t, p, off, Duration::from_secs(10)) {
            tracing::warn!(topic = %t, partition = p, "cannot seek to {off:?}: {e}");
        }
    }
    if let Err(e) = consumer.resume(&tpl_of(p, positions.iter().map(|(t, _)| t.clone()))) {
        tracing::warn!(partition = p, "cannot resume: {e}");
    }
}
