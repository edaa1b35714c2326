//! Rebalances: what assignments and revocations do to the state of partitions (SPEC §7).
//!
//! - **Assigned**: the partition is paused and its state restored from its latest checkpoint
//!   off the polling thread; then its input resumes at the checkpoint's position
//!   ([`Pipeline::poll_restores`]). The same on any instance, at start, after a crash or in a
//!   rebalance.
//! - **Revoked**: everything derived so far is produced, the partition is checkpointed and the
//!   checkpoint completed (bounded by a budget) before it is released, so its next owner
//!   continues from there; its state then leaves this instance.
//! - **Lost** (the session expired: another member may own it already): no checkpoint; the
//!   state is dropped and the next owner continues from the last complete checkpoint.

use std::collections::BTreeSet;

use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::TopicPartitionList;

use super::pipeline::{pause, Phase, Pipeline};
use super::Consumer;
use crate::source::kafka::Rebalance;

fn elements(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl Rebalance for Pipeline {
    fn assigned(&mut self, tpl: &mut TopicPartitionList) {
        self.assign(&elements(tpl));
        self.progress
            .rebalances
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(assigned = ?elements(tpl), "partitions assigned");
    }

    fn after_assign(&mut self, consumer: &Consumer, tpl: &TopicPartitionList) {
        let ps: BTreeSet<i32> = elements(tpl).into_iter().map(|(_, p)| p).collect();
        for p in ps {
            if let Some(part) = self.parts.get(&p) {
                if part.phase == Phase::Restoring {
                    pause(consumer, p, &part.topics);
                }
            }
        }
    }

    fn revoked(&mut self, consumer: &Consumer, tpl: &TopicPartitionList, _cooperative: bool) {
        let ps: Vec<i32> = elements(tpl)
            .into_iter()
            .map(|(_, p)| p)
            .collect::<BTreeSet<i32>>()
            .into_iter()
            .filter(|p| self.parts.contains_key(p))
            .collect();
        if ps.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        if lost {
            tracing::warn!(partitions = ?ps, "partitions lost (session timed out): not checkpointing them");
        }
        self.release(consumer, &ps, lost);
        tracing::info!(revoked = ?ps, remaining = ?self.parts.keys().collect::<Vec<_>>(), "partitions revoked");
    }
}
