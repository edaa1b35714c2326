//! Order within a topic partition across failed deliveries (SPEC §7: a partition's watermark
//! follows its parts in every parts-topic partition).
//!
//! One idempotent producer keeps the order of what it delivers, but a record whose delivery
//! *fails* (librdkafka gave up after `message.timeout.ms`, or a fatal error purged it) is sent
//! again after records produced later. A watermark that overtook a part that way would let
//! the merge step complete a window without that part, and drop the part when it came.
//!
//! So the sink keeps, per topic partition (a *lane*), the sequence numbers of the records
//! later ones depend on ("parts"), and holds a dependent record ("after", a watermark or an
//! end marker) until every part sent before it in its lane is acknowledged (or given up on).
//! A held record already has its sequence number, so [`super::kafka::Sink::acked_through`]
//! stays below it until it is delivered: a checkpoint begun after it waits for it, as for any
//! record sent before.

use std::collections::{BTreeMap, VecDeque};

use super::kinds::Owned;

/// One topic partition's parts not yet known acknowledged, and the records held behind them.
#[derive(Debug, Default)]
struct Lane {
    /// Sequence numbers of parts sent, in order, from the oldest possibly unacknowledged.
    parts: VecDeque<u64>,
    /// Held records with the last part sequence number each waits for, in send order.
    held: VecDeque<(u64, Owned)>,
}

impl Lane {
    /// Forgets the acknowledged parts at the front.
    fn trim(&mut self, acked: &impl Fn(u64) -> bool) {
        while self.parts.front().is_some_and(|&s| acked(s)) {
            self.parts.pop_front();
        }
    }

    /// Everything sent before a record waiting for `barrier` is acknowledged.
    fn clear_through(&self, barrier: u64) -> bool {
        self.parts.front().is_none_or(|&s| s > barrier)
    }
}

/// The lanes of a sink.
#[derive(Debug, Default)]
pub(super) struct Lanes {
    lanes: BTreeMap<(String, i32), Lane>,
    /// Records held now, over all lanes.
    held: usize,
}

impl Lanes {
    /// A part `seq` was handed to the producer (or parked in order) for `topic` partition `q`.
    pub(super) fn part(&mut self, topic: &str, q: i32, seq: u64) {
        self.lanes
            .entry((topic.to_string(), q))
            .or_default()
            .parts
            .push_back(seq);
    }

    /// A record that must follow the parts sent before it to `rec`'s topic partition: `Some`
    /// (the record back) when it may go now, `None` when it is held.
    pub(super) fn after(&mut self, rec: Owned, acked: &impl Fn(u64) -> bool) -> Option<Owned> {
        let q = rec.partition.unwrap_or(-1);
        let Some(l) = self.lanes.get_mut(&(rec.topic.clone(), q)) else {
            return Some(rec);
        };
        l.trim(acked);
        if l.parts.is_empty() && l.held.is_empty() {
            return Some(rec);
        }
        // Behind the parts sent before it, and behind the records held before it (in order,
        // even when its own parts are done).
        let barrier = l.parts.back().copied().unwrap_or(0);
        l.held.push_back((barrier, rec));
        self.held += 1;
        None
    }

    /// The held records whose parts are all acknowledged now, lane by lane in send order.
    pub(super) fn release(&mut self, acked: &impl Fn(u64) -> bool) -> Vec<Owned> {
        let mut out = Vec::new();
        self.lanes.retain(|_, l| {
            l.trim(acked);
            while l.held.front().is_some_and(|h| l.clear_through(h.0)) {
                if let Some((_, rec)) = l.held.pop_front() {
                    out.push(rec);
                }
            }
            !(l.parts.is_empty() && l.held.is_empty())
        });
        self.held -= out.len();
        out
    }

    /// Records held now.
    pub(super) fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::kafka::Out;
    use std::collections::BTreeSet;

    fn rec(seq: u64, q: i32, key: &str) -> Owned {
        Owned::of(
            seq,
            Out {
                topic: "parts",
                partition: Some(q),
                key: Some(key.as_bytes()),
                payload: Some(b"x"),
                kind: "part",
            },
            true,
        )
    }

    fn keys(v: &[Owned]) -> Vec<String> {
        v.iter()
            .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    #[test]
    fn a_watermark_waits_for_the_parts_before_it_in_its_partition_only() {
        let mut lanes = Lanes::default();
        let mut outstanding: BTreeSet<u64> = BTreeSet::new();
        // Parts 1 (q=0) and 2 (q=1); then a watermark to each partition.
        for (seq, q) in [(1, 0), (2, 1)] {
            outstanding.insert(seq);
            lanes.part("parts", q, seq);
        }
        let acked = |o: &BTreeSet<u64>| {
            let o = o.clone();
            move |s: u64| !o.contains(&s)
        };
        assert!(lanes.after(rec(3, 0, "w0"), &acked(&outstanding)).is_none());
        assert!(lanes.after(rec(4, 1, "w1"), &acked(&outstanding)).is_none());
        // A partition with no part outstanding: at once.
        assert!(lanes.after(rec(5, 2, "w2"), &acked(&outstanding)).is_some());
        assert_eq!(lanes.held(), 2);
        // Part 2 acknowledged (part 1 failed and waits to be sent again): only q=1 goes.
        outstanding.remove(&2);
        assert_eq!(keys(&lanes.release(&acked(&outstanding))), ["w1"]);
        // A later part to q=0 and its watermark queue behind the first.
        outstanding.insert(6);
        lanes.part("parts", 0, 6);
        assert!(lanes
            .after(rec(7, 0, "w0'"), &acked(&outstanding))
            .is_none());
        outstanding.remove(&1);
        // Part 1 is in: the first watermark goes, the second still waits for part 6.
        assert_eq!(keys(&lanes.release(&acked(&outstanding))), ["w0"]);
        outstanding.remove(&6);
        assert_eq!(keys(&lanes.release(&acked(&outstanding))), ["w0'"]);
        assert_eq!(lanes.held(), 0);
        assert!(lanes.lanes.is_empty(), "{:?}", lanes.lanes);
    }

    #[test]
    fn held_records_keep_their_order_even_when_a_later_ones_parts_are_done() {
        let mut lanes = Lanes::default();
        let mut outstanding: BTreeSet<u64> = BTreeSet::from([1]);
        lanes.part("parts", 0, 1);
        let acked = |o: &BTreeSet<u64>| {
            let o = o.clone();
            move |s: u64| !o.contains(&s)
        };
        assert!(lanes.after(rec(2, 0, "wm"), &acked(&outstanding)).is_none());
        // An end marker with no new part: still behind the watermark.
        assert!(lanes
            .after(rec(3, 0, "end"), &acked(&outstanding))
            .is_none());
        assert!(lanes.release(&acked(&outstanding)).is_empty());
        outstanding.remove(&1);
        assert_eq!(keys(&lanes.release(&acked(&outstanding))), ["wm", "end"]);
    }
}
