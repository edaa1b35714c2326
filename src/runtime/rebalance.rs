//! Rebalances (see "Rebalances" in [`super`]): what happens to the engine state of partitions
//! that are assigned, revoked or lost. The consumer's callbacks call [`Rebalance`] on the
//! [`Pipeline`].

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::pipeline::Pipeline;
use super::{Consumer, FLUSH_REVOKE_BUDGET};
use crate::engine::Engine;
use crate::source::kafka::Rebalance;

impl Rebalance for Pipeline {
    fn assigned(&mut self, tpl: &mut TopicPartitionList) {
        self.on_assign(tpl);
    }

    fn revoked(&mut self, consumer: &Consumer, tpl: &TopicPartitionList, cooperative: bool) {
        self.on_revoke(consumer, tpl, cooperative);
    }
}

impl Pipeline {
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
    fn on_revoke(&mut self, consumer: &Consumer, tpl: &TopicPartitionList, cooperative: bool) {
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
}
