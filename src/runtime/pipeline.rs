//! The pipeline of `run`: the engine, the producer, and each assigned partition's life cycle
//! — restoring, active, checkpointed — shared by the poll loop ([`super::run_pipeline_with`])
//! and the rebalance callbacks ([`super::rebalance`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::restore::{self, Found};
use super::{Consumer, Progress, RunOptions, RunSummary, IDLE_AFTER};
use crate::config::Config;
use crate::engine::{Checkpoint, CheckpointMeta, Completion, Engine};
use crate::logs::LogLimiter;
use crate::metrics::Metrics;
use crate::output::Record;
use crate::sink::kafka::{Out, Sink};
use crate::sink::Destination;
use crate::source::kafka::feed_message;
use crate::source::Admission;
use crate::state::{self, Key, StateRecord};
use crate::ts::Millis;

/// An input position not known yet: start at the beginning of the partition.
pub const BEGINNING: i64 = -2;
/// An input position not known yet: start at the end of the partition.
pub const END: i64 = -1;

fn now_ms() -> Millis {
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

/// An idle advance recorded in the state topic, waiting to be applied at its position.
#[derive(Debug, Clone)]
pub(super) struct Advance {
    /// Its sequence number.
    seq: u64,
    /// The input position it happened at (next offset per topic).
    positions: Vec<(String, i64)>,
    /// The watermark it moved to.
    watermark: Millis,
}

/// One assigned input partition (of every input topic).
pub(super) struct Part {
    /// Which assignment this is (a restore for an older one is ignored).
    epoch: u64,
    /// Input topics assigned with this partition number.
    pub topics: BTreeSet<String>,
    /// Restoring or active.
    pub phase: Phase,
    /// Next offset per topic ([`BEGINNING`]/[`END`] until known).
    pub next: BTreeMap<String, i64>,
    /// Reached the end of the partition since its last message.
    pub at_eof: bool,
    /// When its last message was processed.
    last_message: Instant,
    /// Recorded idle advances to replay at their positions (after a restore).
    replay: VecDeque<Advance>,
    /// An idle advance written to the state topic and not acknowledged yet: the partition
    /// is paused until it is, then the advance is applied.
    awaiting: Option<(Advance, u64)>,
    /// The last idle advance applied (included in the next checkpoint).
    advance_seq: u64,
    /// The next idle advance's sequence number.
    next_advance: u64,
    /// The last checkpoint generation used.
    gen: u64,
    /// Processed something since the last checkpoint.
    changed: bool,
    /// Idle-advance sequence numbers at or below this have been tombstoned.
    advances_collected: u64,
    /// When the latest complete checkpoint was written.
    pub checkpointed_at: Option<Instant>,
    /// When its restore started.
    restore_started: Instant,
}

/// A checkpoint whose records are in flight.
struct Pending {
    ck: Checkpoint,
    /// Sequence number of its last state record (every output derived before it was sent
    /// earlier, so this covers them too).
    mark: u64,
    /// Sequence number of its manifest, once sent.
    manifest: Option<u64>,
    started: Instant,
    positions: Vec<(String, i64)>,
    advance_seq: u64,
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
    ends: Option<BTreeMap<(String, i32), i64>>,
    admission: Admission,
    state_topic: String,
    /// The input topics' partition count (the partitions a window waits for).
    pub input_partitions: i32,
    /// The assigned partitions.
    pub parts: BTreeMap<i32, Part>,
    restore_tx: Sender<restore::Done>,
    restore_rx: Receiver<restore::Done>,
    epoch: u64,
    pending: BTreeMap<i32, Pending>,
    last_checkpoint: Instant,
    /// An error that stops the instance (a checkpoint it must not ignore).
    pub fatal: Option<anyhow::Error>,
    /// Shutting down.
    pub closing: bool,
    /// A bounded run finished (every watermark moved to M): that state is never
    /// checkpointed (SPEC §2), so a later live run continues from the last real position.
    pub finished: bool,
    pub events: u64,
    pub commits: u64,
    pub checkpoints: u64,
    pub restores: u64,
    committed: BTreeMap<(String, i32), i64>,
    /// First and last offset processed per input `(topic, partition)`, for the summary.
    processed: BTreeMap<(String, i32), (i64, i64)>,
    warn: LogLimiter,
}

impl Pipeline {
    pub(super) fn new(
        cfg: Arc<Config>,
        sink: Sink,
        metrics: Option<Arc<Metrics>>,
        progress: Arc<Progress>,
        opts: RunOptions,
        ends: Option<BTreeMap<(String, i32), i64>>,
        input_partitions: i32,
    ) -> Pipeline {
        let mut engine = Engine::new(Arc::clone(&cfg));
        if let Some(m) = &metrics {
            engine.set_observer(m.observer());
        }
        engine.set_completion(Completion::Of((0..input_partitions).collect()));
        let (restore_tx, restore_rx) = std::sync::mpsc::channel();
        Pipeline {
            admission: Admission::new(&cfg, None),
            state_topic: cfg.kafka.state_topic(),
            cfg,
            engine,
            sink,
            metrics,
            progress,
            opts,
            ends,
            input_partitions,
            parts: BTreeMap::new(),
            restore_tx,
            restore_rx,
            epoch: 0,
            pending: BTreeMap::new(),
            last_checkpoint: Instant::now(),
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
        }
    }

    /// Windows wait for every input partition when this instance owns them all; otherwise
    /// each partition's sealed parts go out on their own (until the parts topic merges them).
    pub(super) fn update_completion(&mut self) {
        let owns_all = self.parts.len() as i32 == self.input_partitions
            && (0..self.input_partitions).all(|p| self.parts.contains_key(&p));
        self.engine.set_completion(if owns_all {
            Completion::Of((0..self.input_partitions).collect())
        } else {
            Completion::Parts
        });
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
        self.update_completion();
        self.publish_assignment();
    }

    /// Partitions released: checkpointed first unless `lost`, then dropped.
    pub(super) fn release(&mut self, consumer: &Consumer, partitions: &[i32], lost: bool) {
        for p in partitions {
            let Some(part) = self.parts.get(p) else {
                continue;
            };
            if part.phase == Phase::Active && !lost && !self.finished {
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

    /// Applies the recorded idle advances of `p` whose position the input has reached (before
    /// processing a message of `topic` at `offset`, if given).
    fn replay_advances(&mut self, p: i32, at: Option<(&str, i64)>) {
        loop {
            let Some(part) = self.parts.get_mut(&p) else {
                return;
            };
            let Some(a) = part.replay.front() else {
                return;
            };
            let reached = a.positions.iter().all(|(t, pos)| {
                let next = match at {
                    Some((mt, off)) if mt == t => off,
                    _ => part.next.get(t).copied().unwrap_or(BEGINNING),
                };
                next >= *pos
            });
            if !reached {
                return;
            }
            let a = part.replay.pop_front().expect("front exists");
            part.advance_seq = a.seq;
            part.changed = true;
            self.engine.advance_partition(p, a.watermark);
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

    /// Installs the restores that finished: state, cleanup, input position; resumes.
    pub(super) fn poll_restores(&mut self, consumer: &Consumer) {
        while let Ok(done) = self.restore_rx.try_recv() {
            let p = done.partition;
            let Some(part) = self.parts.get(&p) else {
                continue;
            };
            if part.epoch != done.epoch {
                continue;
            }
            let restore_started = part.restore_started;
            match done.result {
                Err(e) => {
                    self.fatal = Some(e.context(format!("restoring partition {p}")));
                    return;
                }
                Ok(Found::Checkpoint { built, restored }) => {
                    self.send_state(p, &restored.cleanup);
                    self.engine.install(*built);
                    let m = &restored.manifest;
                    let part = self.parts.get_mut(&p).expect("checked above");
                    part.next = m.positions.iter().cloned().collect();
                    part.gen = restored.max_gen;
                    part.advance_seq = m.advance_seq;
                    part.advances_collected = 0;
                    part.next_advance = restored.max_advance + 1;
                    part.replay = decode_advances(&restored.advances);
                    part.checkpointed_at = Some(Instant::now());
                    tracing::info!(
                        partition = p,
                        generation = m.gen,
                        positions = ?m.positions,
                        tickets = m.tickets,
                        customers = m.customers,
                        took = ?restore_started.elapsed(),
                        bytes = done.bytes,
                        "partition restored from its checkpoint"
                    );
                }
                Ok(Found::Empty {
                    reset,
                    committed,
                    leftovers,
                }) => {
                    if !committed.is_empty() && !reset && !self.opts.from_committed {
                        self.fatal = Some(anyhow::anyhow!(
                            "group {} has committed offsets for partition {p} ({committed:?}) but no checkpoint \
                             in {}: this is an upgrade from a version without checkpoints (or the state topic \
                             was deleted). Start with `cxstream run --from-committed-offsets` to continue from \
                             the committed offsets with empty state (tickets and customers of earlier events \
                             are unknown), or `cxstream state reset` to reprocess the input from the beginning",
                            self.cfg.kafka.group_id,
                            self.state_topic
                        ));
                        return;
                    }
                    self.send_state(p, &leftovers.cleanup);
                    self.engine.assign(p);
                    self.engine.track_changes(p);
                    let start = self.start_offset();
                    let part = self.parts.get_mut(&p).expect("checked above");
                    let committed: BTreeMap<String, i64> = committed.into_iter().collect();
                    part.next = part
                        .topics
                        .iter()
                        .map(|t| (t.clone(), committed.get(t).copied().unwrap_or(start)))
                        .collect();
                    part.gen = leftovers.max_gen;
                    part.next_advance = leftovers.max_advance + 1;
                    part.replay = decode_advances(&leftovers.advances);
                    tracing::info!(
                        partition = p,
                        positions = ?part.next,
                        "no checkpoint: the partition starts with empty state"
                    );
                }
            }
            self.restores += 1;
            if let Some(m) = &self.metrics {
                m.observe_restore(done.elapsed.as_secs_f64());
            }
            let part = self.parts.get_mut(&p).expect("checked above");
            part.phase = Phase::Active;
            // Its state is durable as of now (restored, or empty and nothing to lose yet).
            part.checkpointed_at = Some(Instant::now());
            part.at_eof = false;
            part.last_message = Instant::now();
            let positions: Vec<(String, i64)> = part.next.clone().into_iter().collect();
            resume_at(consumer, p, &positions);
            self.replay_advances(p, None);
            self.update_completion();
        }
    }

    /// Where a partition without a checkpoint or committed offset starts
    /// (`auto.offset.reset`, default earliest).
    fn start_offset(&self) -> i64 {
        match self
            .cfg
            .kafka
            .librdkafka
            .get("auto.offset.reset")
            .map(String::as_str)
        {
            Some("latest" | "largest" | "end") => END,
            _ => BEGINNING,
        }
    }

    fn send_state(&mut self, p: i32, records: &[StateRecord]) -> u64 {
        let mut seq = self.sink.last_seq();
        for r in records {
            seq = self.sink.send_to(Out {
                topic: &self.state_topic,
                partition: Some(p),
                key: Some(&r.key),
                payload: r.value.as_deref(),
            });
        }
        seq
    }

    /// SPEC §2 live mode: a partition caught up and quiet moves its watermark with the wall
    /// clock (never past now − lateness). The advance is a fact of the partition's history:
    /// it is written to the state topic and applied only once acknowledged, the partition
    /// paused meanwhile ([`Pipeline::check_advances`]).
    pub(super) fn idle_advance(&mut self, consumer: &Consumer) {
        if self.opts.until.is_some() {
            return;
        }
        let w = now_ms().saturating_sub(self.cfg.engine.allowed_lateness.0);
        let marks: BTreeMap<i32, Millis> = self.engine.partition_watermarks().into_iter().collect();
        let eligible: Vec<i32> = self
            .parts
            .iter()
            .filter(|(p, part)| {
                part.phase == Phase::Active
                    && part.at_eof
                    && part.awaiting.is_none()
                    && part.replay.is_empty()
                    && part.last_message.elapsed() >= IDLE_AFTER
                    && marks.get(p).is_none_or(|m| w > *m)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in eligible {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let a = Advance {
                seq: part.next_advance,
                positions: part.next.clone().into_iter().collect(),
                watermark: w,
            };
            part.next_advance += 1;
            let rec = StateRecord {
                key: Key::Advance(a.seq).bytes(),
                value: Some(state::encode_advance(&a.positions, a.watermark)),
            };
            let seq = self.send_state(p, &[rec]);
            if let Some(part) = self.parts.get_mut(&p) {
                part.awaiting = Some((a, seq));
                pause(consumer, p, &part.topics);
            }
        }
    }

    /// Applies the idle advances whose record is acknowledged, and resumes their partitions.
    pub(super) fn check_advances(&mut self, consumer: &Consumer) {
        let acked = self.sink.acked_through();
        let ready: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, part)| part.awaiting.as_ref().is_some_and(|(_, s)| *s <= acked))
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let Some((a, _)) = part.awaiting.take() else {
                continue;
            };
            part.advance_seq = a.seq;
            part.changed = true;
            part.last_message = Instant::now();
            let positions: Vec<(String, i64)> = part.next.clone().into_iter().collect();
            self.engine.advance_partition(p, a.watermark);
            resume_at(consumer, p, &positions);
        }
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
        progress.set_watermark(engine.watermark());
        progress.events.store(self.events, Ordering::Relaxed);
    }

    /// Starts the periodic checkpoints that are due (SPEC §7: at least every
    /// `checkpoint_interval`), of the partitions with anything new.
    pub(super) fn maybe_checkpoint(&mut self) {
        let every = Duration::from_millis(self.cfg.kafka.checkpoint_interval.0.max(1) as u64);
        if self.last_checkpoint.elapsed() < every {
            return;
        }
        self.last_checkpoint = Instant::now();
        let mut due = Vec::new();
        for (p, part) in self.parts.iter_mut() {
            if part.phase != Phase::Active
                || part.awaiting.is_some()
                || self.pending.contains_key(p)
            {
                continue;
            }
            if part.changed || self.engine.has_changes(*p) {
                due.push(*p);
            } else {
                // Nothing new: the latest checkpoint still holds the whole state.
                part.checkpointed_at = Some(Instant::now());
            }
        }
        for p in due {
            self.start_checkpoint(p);
        }
    }

    /// Takes a checkpoint of `p` and sends its records; the manifest follows once they and
    /// every output sent before are acknowledged ([`Pipeline::progress_checkpoints`]).
    fn start_checkpoint(&mut self, p: i32) {
        self.drain();
        let Some(part) = self.parts.get_mut(&p) else {
            return;
        };
        part.gen += 1;
        part.changed = false;
        let positions: Vec<(String, i64)> = part.next.clone().into_iter().collect();
        let meta = CheckpointMeta {
            gen: part.gen,
            fingerprint: self.cfg.fingerprint(),
            input_partitions: self.input_partitions,
            positions: positions.clone(),
            advance_seq: part.advance_seq,
            written_at: now_ms(),
        };
        let advance_seq = part.advance_seq;
        let Some(ck) = self.engine.begin_checkpoint(p, &meta) else {
            return;
        };
        let mark = self.send_state(p, &ck.records);
        self.pending.insert(
            p,
            Pending {
                ck,
                mark,
                manifest: None,
                started: Instant::now(),
                positions,
                advance_seq,
            },
        );
    }

    /// Moves the checkpoints in flight along: the manifest once everything before it is
    /// acknowledged; once the manifest is, the checkpoint is complete — obsolete records are
    /// tombstoned and the group offsets committed.
    pub(super) fn progress_checkpoints(&mut self, consumer: &Consumer, mode: CommitMode) {
        let acked = self.sink.acked_through();
        let ps: Vec<i32> = self.pending.keys().copied().collect();
        for p in ps {
            let Some(pend) = self.pending.get_mut(&p) else {
                continue;
            };
            if pend.manifest.is_none() && acked >= pend.mark {
                let m = StateRecord {
                    key: Key::Manifest.bytes(),
                    value: Some(pend.ck.manifest.encode()),
                };
                let seq = self.sink.send_to(Out {
                    topic: &self.state_topic,
                    partition: Some(p),
                    key: Some(&m.key),
                    payload: m.value.as_deref(),
                });
                if let Some(pend) = self.pending.get_mut(&p) {
                    pend.manifest = Some(seq);
                }
                continue;
            }
            if pend.manifest.is_some_and(|m| acked >= m) {
                let Some(pend) = self.pending.remove(&p) else {
                    continue;
                };
                self.complete(consumer, p, pend, mode);
            }
        }
    }

    fn complete(&mut self, consumer: &Consumer, p: i32, pend: Pending, mode: CommitMode) {
        let bytes = pend.ck.manifest.bytes;
        let mut tombs = self.engine.complete_checkpoint(pend.ck);
        if let Some(part) = self.parts.get_mut(&p) {
            // Idle advances included in this checkpoint are history it holds now.
            for s in part.advances_collected + 1..=pend.advance_seq {
                tombs.push(StateRecord {
                    key: Key::Advance(s).bytes(),
                    value: None,
                });
            }
            part.advances_collected = part.advances_collected.max(pend.advance_seq);
            part.checkpointed_at = Some(Instant::now());
        }
        self.send_state(p, &tombs);
        self.checkpoints += 1;
        if let Some(m) = &self.metrics {
            m.observe_checkpoint(pend.started.elapsed().as_secs_f64(), bytes);
        }
        // Group offsets follow checkpoints (SPEC §7): for monitoring and tools; a restore
        // starts from the checkpoint's own position.
        let mut tpl = TopicPartitionList::new();
        for (t, o) in &pend.positions {
            if *o >= 0 {
                let _ = tpl.add_partition_offset(t, p, Offset::Offset(*o));
            }
        }
        if tpl.count() == 0 {
            return;
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => {
                self.commits += 1;
                self.progress.commits.store(self.commits, Ordering::Relaxed);
                for (t, o) in &pend.positions {
                    if *o >= 0 {
                        self.committed.insert((t.clone(), p), *o);
                    }
                }
            }
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        "offset commit failed ({e}); the next checkpoint commits again"
                    );
                }
            }
        }
    }

    /// A checkpoint of `p` now, waiting (at most `budget`) until it is complete: on revoke,
    /// at shutdown, at the end of a bounded run. `true` if it completed.
    pub(super) fn checkpoint_now(&mut self, consumer: &Consumer, p: i32, budget: Duration) -> bool {
        if self.finished {
            return false;
        }
        let deadline = Instant::now() + budget;
        // A checkpoint in flight completes first (or is abandoned).
        if self.pending.contains_key(&p) && !self.wait_pending(consumer, p, deadline) {
            if let Some(pend) = self.pending.remove(&p) {
                self.engine.abandon_checkpoint(pend.ck);
            }
            return false;
        }
        if self
            .parts
            .get(&p)
            .is_none_or(|part| part.awaiting.is_some())
        {
            return false;
        }
        self.start_checkpoint(p);
        let ok = self.wait_pending(consumer, p, deadline);
        if !ok {
            if let Some(pend) = self.pending.remove(&p) {
                self.engine.abandon_checkpoint(pend.ck);
            }
        }
        ok
    }

    fn wait_pending(&mut self, consumer: &Consumer, p: i32, deadline: Instant) -> bool {
        while self.pending.contains_key(&p) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.sink.flush(left.min(Duration::from_millis(200)));
            self.progress_checkpoints(consumer, CommitMode::Sync);
        }
        true
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
        m.set_merge_pending(self.engine.merge_pending_windows());
    }

    /// What the run did.
    pub(super) fn summary(&self) -> RunSummary {
        RunSummary {
            events: self.events,
            records_produced: self.sink.acked(),
            records_dropped: self.sink.dropped(),
            records_resent: self.sink.resent(),
            records_unacknowledged: self.sink.pending() as u64,
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

fn decode_advances(raw: &[(u64, Vec<u8>)]) -> VecDeque<Advance> {
    raw.iter()
        .filter_map(|(seq, v)| {
            let (positions, watermark) = state::decode_advance(v).ok()?;
            Some(Advance {
                seq: *seq,
                positions,
                watermark,
            })
        })
        .collect()
}

fn tpl_of(p: i32, topics: impl Iterator<Item = String>) -> TopicPartitionList {
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
fn resume_at(consumer: &Consumer, p: i32, positions: &[(String, i64)]) {
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
