//! Checkpoints of the assigned partitions (SPEC §7), from the polling thread: taken every
//! `checkpoint_interval` for partitions with anything new, on revoke and at shutdown; the
//! manifest that completes one sent only once its records and every output sent before are
//! acknowledged; then obsolete records are tombstoned and the group offsets committed to the
//! checkpoint's position.
//!
//! A checkpoint is one consistent cut of the partition (its changed tickets and customers
//! copied, the rest encoded), but its entities are encoded and handed to the producer in
//! **slices**, between input batches, only while the producer's queue has room
//! ([`Sink::room`](crate::sink::kafka::Sink::room)): a checkpoint never fills the queue, so it
//! never pauses the input, never holds the loop for long (the live latency: encoding ~100k
//! entities at once held it 79–674 ms at 20,000 events/s), and each record is dropped as
//! soon as librdkafka holds its copy.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::pipeline::{now_ms, Part, Phase, Pipeline};
use super::Consumer;
use crate::engine::{Checkpoint, CheckpointMeta};
use crate::sink::kafka::Out;
use crate::state::{Key, StateRecord};

/// State records handed to the producer per loop iteration at most (each call of
/// [`Pipeline::feed_checkpoints`] from the poll loop): about a few milliseconds of work, so an
/// input batch is never held up long.
pub(super) const CHECKPOINT_SLICE: usize = 5_000;

/// A checkpoint whose records are in flight.
pub(super) struct Pending {
    /// The checkpoint, whose records not handed to the producer yet are encoded and sent in
    /// slices, in order.
    pub(super) ck: Checkpoint,
    /// Sequence number of its last state record sent so far; once the checkpoint is drained, every
    /// record of it and every output derived before it (sent earlier) is covered by it.
    pub(super) mark: u64,
    /// Sequence number of its manifest, once sent.
    pub(super) manifest: Option<u64>,
    pub(super) started: Instant,
    pub(super) positions: Vec<(String, i64)>,
    pub(super) advance_seq: u64,
}

impl Pipeline {
    pub(super) fn send_state(&mut self, p: i32, records: &[StateRecord]) -> u64 {
        let mut seq = self.sink.last_seq();
        for r in records {
            seq = self.send_state_record(p, r);
        }
        seq
    }

    fn send_state_record(&mut self, p: i32, r: &StateRecord) -> u64 {
        self.sink.send_to(Out {
            topic: &self.state_topic,
            partition: Some(p),
            key: Some(&r.key),
            payload: r.value.as_deref(),
            kind: "state",
        })
    }

    /// Whether a checkpoint in flight, or the tombstones of a complete one, still have
    /// records to hand to the producer.
    pub(super) fn feeding(&self) -> bool {
        !self.tombs.is_empty() || self.image_unsent()
    }

    /// A checkpoint in flight still has records of its image to hand to the producer.
    fn image_unsent(&self) -> bool {
        self.pending.values().any(|pend| !pend.ck.is_drained())
    }

    /// Hands every tombstone of `p` still queued to the producer (before a new checkpoint of
    /// `p` is taken: a tombstone must never land after a newer version in the same slot), in
    /// slices as the queue makes room, until `budget` runs out; then the rest at once.
    pub(super) fn flush_tombs(&mut self, p: i32, budget: Duration) {
        let deadline = Instant::now() + budget;
        while self.tombs.contains_key(&p) && Instant::now() < deadline {
            self.feed_checkpoints(usize::MAX);
            if self.tombs.contains_key(&p) {
                self.sink.flush(Duration::from_millis(50));
            }
        }
        if let Some(t) = self.tombs.remove(&p) {
            let rest: Vec<StateRecord> = t.collect();
            self.send_state(p, &rest);
        }
    }

    /// Hands the next slice of every checkpoint in flight to the producer: at most `budget`
    /// records in all, and only as many as its queue has room for, so a state record never
    /// waits in the sink's own queue (nor pauses the input).
    pub(super) fn feed_checkpoints(&mut self, budget: usize) {
        let mut room = self.sink.room().at_most(budget);
        // Tombstones of complete checkpoints first (obsolete versions: cleanup only; a crash
        // that loses them leaves what a crash before them leaves).
        let ps: Vec<i32> = self.tombs.keys().copied().collect();
        for p in ps {
            while let Some(t) = self.tombs.get_mut(&p) {
                if !t.as_slice().first().is_some_and(|r| room.take(r.bytes())) {
                    break;
                }
                let Some(r) = t.next() else {
                    break;
                };
                self.send_state_record(p, &r);
            }
        }
        // A partition is in `tombs` only while it has some left (`feeding`, `maybe_checkpoint`).
        self.tombs.retain(|_, t| !t.as_slice().is_empty());
        let ps: Vec<i32> = self.pending.keys().copied().collect();
        for p in ps {
            while let Some(pend) = self.pending.get_mut(&p) {
                if !pend.ck.peek().is_some_and(|r| room.take(r.bytes())) {
                    break;
                }
                let Some(r) = pend.ck.pop() else {
                    break;
                };
                let seq = self.send_state_record(p, &r);
                if let Some(pend) = self.pending.get_mut(&p) {
                    pend.mark = seq;
                }
            }
        }
    }

    /// Starts the periodic checkpoints that are due (SPEC §7: at least every
    /// `checkpoint_interval`), of the partitions with anything new — **one at a time**:
    /// the next partition's cut is taken once every record of the previous one is in the
    /// producer's hands (its copies are freed then), so the copies and records held are never
    /// more than one partition's. Taking all of them at once held every partition's changes
    /// twice over. Waiting for each checkpoint to *complete* before the next was tried: in the
    /// 20,000 events/s soak it saved no measurable memory (the bookkeeping kept until a
    /// manifest is acknowledged is small) while a checkpoint took ~1.2 s to complete, so a
    /// round over many partitions would outlast the interval.
    pub(super) fn maybe_checkpoint(&mut self, consumer: &Consumer) {
        let every = Duration::from_millis(self.cfg.kafka.checkpoint_interval.0.max(1) as u64);
        if self.last_checkpoint.elapsed() >= every {
            self.last_checkpoint = Instant::now();
            let mut idle = Vec::new();
            for (p, part) in self.parts.iter_mut() {
                if !checkpointable(&self.pending, &self.tombs, *p, part) {
                    continue;
                }
                if part.changed || self.engine.has_changes(*p) {
                    self.due.insert(*p);
                } else {
                    // Nothing new: the latest checkpoint still holds the whole state.
                    part.checkpointed_at = Some(Instant::now());
                    idle.push(*p);
                }
            }
            self.commit_again(consumer, &idle);
        }
        if self.image_unsent() {
            return;
        }
        // A partition no longer checkpointable (revoked, restoring, its previous checkpoint
        // still in flight) is dropped from `due`: the next interval looks at it again.
        while let Some(p) = self.due.pop_first() {
            let ok = self
                .parts
                .get(&p)
                .is_some_and(|part| checkpointable(&self.pending, &self.tombs, p, part));
            if ok {
                self.start_checkpoint(p);
                return;
            }
        }
    }

    /// Takes a checkpoint of `p` and sends its records; the manifest follows once they and
    /// every output sent before are acknowledged ([`Pipeline::progress_checkpoints`]).
    fn start_checkpoint(&mut self, p: i32) {
        let t0 = Instant::now();
        self.drain();
        let Some(part) = self.parts.get_mut(&p) else {
            return;
        };
        part.gen += 1;
        part.changed = false;
        let positions = part.positions();
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
        let records = ck.records_left();
        self.largest_checkpoint = self.largest_checkpoint.max(records as u64);
        tracing::debug!(
            partition = p,
            records,
            taken_ms = t0.elapsed().as_secs_f64() * 1e3,
            "checkpoint taken; its records follow in slices"
        );
        self.pending.insert(
            p,
            Pending {
                ck,
                mark: self.sink.last_seq(),
                manifest: None,
                started: Instant::now(),
                positions,
                advance_seq,
            },
        );
        self.feed_checkpoints(CHECKPOINT_SLICE);
    }

    /// Moves the checkpoints in flight along: the manifest once everything before it is
    /// acknowledged; once the manifest is, the checkpoint is complete — obsolete records are
    /// tombstoned and the group offsets committed.
    pub(super) fn progress_checkpoints(&mut self, consumer: &Consumer) {
        let acked = self.sink.acked_through();
        let ps: Vec<i32> = self.pending.keys().copied().collect();
        for p in ps {
            let Some(pend) = self.pending.get_mut(&p) else {
                continue;
            };
            if pend.manifest.is_none() && pend.ck.is_drained() && acked >= pend.mark {
                let m = StateRecord {
                    key: Key::Manifest.bytes(),
                    value: Some(pend.ck.manifest.encode()),
                };
                if !self.sink.room().take(m.bytes()) {
                    continue;
                }
                let seq = self.sink.send_to(Out {
                    topic: &self.state_topic,
                    partition: Some(p),
                    key: Some(&m.key),
                    payload: m.value.as_deref(),
                    kind: "state",
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
                self.complete(consumer, p, pend);
            }
        }
    }

    fn complete(&mut self, consumer: &Consumer, p: i32, pend: Pending) {
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
        // Sent in slices too; any left from before go first.
        self.flush_tombs(p, Duration::ZERO);
        if !tombs.is_empty() {
            self.tombs.insert(p, tombs.into_iter());
        }
        self.checkpoints += 1;
        if let Some(m) = &self.metrics {
            m.observe_checkpoint(pend.started.elapsed().as_secs_f64(), bytes);
        }
        self.commit_positions(consumer, p, &pend.positions);
    }

    /// Commits `positions` of partition `p` as the group's offsets (see
    /// [`Pipeline::commit_offsets`]).
    pub(super) fn commit_positions(
        &mut self,
        consumer: &Consumer,
        p: i32,
        positions: &[(String, i64)],
    ) {
        let offsets: Vec<(String, i32, i64)> =
            positions.iter().map(|(t, o)| (t.clone(), p, *o)).collect();
        self.commit_offsets(consumer, &offsets);
    }

    /// Commits `(topic, partition, next offset)` as the group's offsets, in one request.
    /// Group offsets follow checkpoints (SPEC §7): for monitoring and tools; a restore starts
    /// from the checkpoint's own position. So the commit is never waited for (also on revoke
    /// and at shutdown): a coordinator that holds it during a rebalance cannot stall the loop;
    /// one that fails is made good by the next checkpoint's or, on an idle partition, at the
    /// next interval ([`Pipeline::commit_again`]); a restore commits the checkpoint it
    /// restored.
    fn commit_offsets(&mut self, consumer: &Consumer, offsets: &[(String, i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            if *o >= 0 {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
        }
        if tpl.count() == 0 {
            return;
        }
        match consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => {
                self.commits += 1;
                self.progress.commits.store(self.commits, Ordering::Relaxed);
                for (t, p, o) in offsets {
                    if *o >= 0 {
                        self.committed.insert((t.clone(), *p), *o);
                    }
                }
            }
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        "offset commit failed ({e}); committing again at the next checkpoint interval"
                    );
                }
            }
        }
    }

    /// Commits the positions last committed for the idle partitions `ps` again, once per
    /// checkpoint interval: a commit the coordinator refused (an outage, a coordinator
    /// moving; librdkafka does not report it back) is made good even when no new input brings
    /// a checkpoint, so the group's offsets and the lag read from them catch up. One
    /// asynchronous OffsetCommit request per interval, as librdkafka's auto-commit would send.
    fn commit_again(&mut self, consumer: &Consumer, ps: &[i32]) {
        let offsets: Vec<(String, i32, i64)> = self
            .committed
            .iter()
            .filter(|((_, p), _)| ps.contains(p))
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect();
        self.commit_offsets(consumer, &offsets);
    }

    /// A checkpoint of `p` now, waiting (at most `budget`) until it is complete: on revoke,
    /// at shutdown, at the end of a bounded run. `true` if it completed.
    pub(super) fn checkpoint_now(&mut self, consumer: &Consumer, p: i32, budget: Duration) -> bool {
        if self.finished || budget.is_zero() {
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
        self.flush_tombs(p, deadline.saturating_duration_since(Instant::now()));
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
            // As many as the producer's queue has room for; the flush makes more room.
            self.feed_checkpoints(usize::MAX);
            self.sink.flush(left.min(Duration::from_millis(200)));
            self.progress_checkpoints(consumer);
        }
        true
    }
}

/// `p` may start a periodic checkpoint: active, no idle advance awaiting its acknowledgement,
/// no checkpoint of it in flight, no tombstones of one left to send.
fn checkpointable(
    pending: &BTreeMap<i32, Pending>,
    tombs: &BTreeMap<i32, std::vec::IntoIter<StateRecord>>,
    p: i32,
    part: &Part,
) -> bool {
    part.phase == Phase::Active
        && part.awaiting.is_none()
        && !pending.contains_key(&p)
        && !tombs.contains_key(&p)
}
