//! The merge step's marks (see the parent module): written every checkpoint interval once
//! what a partition emitted is acknowledged, committed once acknowledged themselves, and
//! written one last time on revoke and at shutdown.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{Consumer, Merge, MARK_BUDGET};
use crate::engine::parts::PartMsg;
use crate::sink::kafka::Out;

impl Merge {
    /// Every checkpoint interval: a mark for each partition that moved, once what it emitted
    /// is acknowledged; a commit once the mark is.
    pub(super) fn maybe_mark(&mut self, consumer: &Consumer, now: bool) {
        self.sink.poll();
        let acked = self.sink.acked_through();
        let due = now
            || self.last_mark.elapsed()
                >= Duration::from_millis(self.cfg.kafka.checkpoint_interval.0.max(1) as u64);
        if due {
            self.last_mark = Instant::now();
        }
        let mut commits = TopicPartitionList::new();
        let qs: Vec<i32> = self.owned.keys().copied().collect();
        for q in qs {
            let Some(o) = self.owned.get_mut(&q) else {
                continue;
            };
            let Some(log) = o.log.as_ref() else {
                continue;
            };
            if let Some((seq, position)) = o.inflight {
                if acked >= seq {
                    tracing::debug!(partition = q, position, "merge step: mark acknowledged");
                    o.inflight = None;
                    o.marked = position;
                    let _ = commits.add_partition_offset(&self.topic, q, Offset::Offset(position));
                }
                continue;
            }
            // A fold still reading back to the mark it resumed from is not marked again: its
            // watermarks cover records up to that mark's position, not up to `o.next`.
            if !due || o.next <= o.marked || acked < o.emitted || !log.caught_up() {
                continue;
            }
            let mark = log.mark(o.next);
            let position = mark.position;
            tracing::debug!(
                partition = q,
                position,
                oldest = mark.oldest,
                merged_through = %crate::ts::format_ms(mark.merged_through),
                emitted = o.emitted,
                acked,
                "merge step: mark sent"
            );
            let value = PartMsg::Mark(mark).encode(self.fingerprint);
            let seq = self.sink.send_to(Out {
                topic: &self.topic,
                partition: Some(q),
                key: Some(b"mark"),
                payload: Some(&value),
                kind: "part",
            });
            o.inflight = Some((seq, position));
        }
        if commits.count() > 0 {
            if let Err(e) = consumer.commit(&commits, CommitMode::Async) {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(suppressed = n, "merge step: commit failed: {e}");
                }
            }
        }
    }

    /// Final marks of `qs` (shutdown, revoke), within [`MARK_BUDGET`].
    pub(super) fn final_marks(&mut self, consumer: &Consumer, qs: &[i32]) {
        let deadline = Instant::now() + MARK_BUDGET;
        self.maybe_mark(consumer, true);
        loop {
            self.sink.pump_for(Duration::from_millis(50));
            self.maybe_mark(consumer, false);
            let waiting = qs.iter().any(|q| {
                self.owned.get(q).is_some_and(|o| {
                    o.inflight.is_some()
                        || (o.log.as_ref().is_some_and(|l| l.caught_up()) && o.next > o.marked)
                })
            });
            if !waiting {
                break;
            }
            if Instant::now() > deadline {
                tracing::warn!(partitions = ?qs, "merge step: final marks not acknowledged in time; the next owner starts from the previous ones");
                break;
            }
            // A partition whose mark waits for acknowledgements gets one once they come.
            self.maybe_mark(consumer, true);
        }
        let mut tpl = TopicPartitionList::new();
        for q in qs {
            if let Some(o) = self.owned.get(q) {
                if o.log.is_some() && o.marked >= 0 {
                    let _ = tpl.add_partition_offset(&self.topic, *q, Offset::Offset(o.marked));
                }
            }
        }
        if tpl.count() > 0 {
            // On revoke, waited for: the next owner reads it right after the rebalance.
            let mode = if self.stopping {
                CommitMode::Async
            } else {
                CommitMode::Sync
            };
            if let Err(e) = consumer.commit(&tpl, mode) {
                tracing::warn!("merge step: final commit failed: {e}");
            }
        }
    }
}
