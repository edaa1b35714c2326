//! Which input offsets are safe to commit (see the commit protocol in [`super`]).
//!
//! An input event's window contributions become output only when its windows close. Per
//! input partition the tracker keeps a compact deque of runs `(first offset, window end)`:
//! `window end` is the latest end among the windows (of every configured size) holding the
//! event's time, and consecutive events with the same end share one run — with the default
//! `1m`/`1h` windows that is about one run per partition per hour of event time. A run is
//! dropped once the engine's watermark (windows closed through it) reaches its end; the safe
//! commit offset is the first offset of the oldest remaining run, or the last processed
//! offset + 1 when none remains. Events without window contributions (dead letters,
//! duplicates) add no run: their records are emitted at once and flushed before any commit.

use std::collections::{BTreeMap, VecDeque};

use crate::ts::Millis;
use crate::window::window_start;

/// Commit bookkeeping for one input partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionTrack {
    /// `(first offset, window end)`: events from `first offset` (up to the next run's first
    /// offset) contributed to windows ending at or before `window end`.
    runs: VecDeque<(i64, Millis)>,
    /// Last processed offset + 1 (`None` before the first message).
    next: Option<i64>,
    /// The last offset committed (or known committed).
    committed: Option<i64>,
    /// First and last offsets processed by this instance, for [`super::RunSummary`].
    first: Option<i64>,
    last: Option<i64>,
}

impl PartitionTrack {
    /// Notes a processed message; `window_end` is `Some` when it contributed to windows.
    pub fn processed(&mut self, offset: i64, window_end: Option<Millis>) {
        if self.first.is_none() {
            self.first = Some(offset);
        }
        if let Some(end) = window_end {
            if self.runs.back().is_none_or(|&(_, e)| e != end) {
                self.runs.push_back((offset, end));
            }
        }
        self.next = Some(offset + 1);
        self.last = Some(self.last.map_or(offset, |l| l.max(offset)));
    }

    /// Drops the runs whose windows have all closed (end ≤ `closed_through`).
    pub fn release(&mut self, closed_through: Millis) {
        while self
            .runs
            .front()
            .is_some_and(|&(_, end)| end <= closed_through)
        {
            self.runs.pop_front();
        }
    }

    /// The offset to commit: everything before it is reflected in output already produced.
    pub fn safe_offset(&self) -> Option<i64> {
        match self.runs.front() {
            Some(&(first, _)) => Some(first),
            None => self.next,
        }
    }

    /// The safe offset if it is ahead of what was committed.
    pub fn to_commit(&self) -> Option<i64> {
        let safe = self.safe_offset()?;
        match self.committed {
            Some(c) if c >= safe => None,
            _ => Some(safe),
        }
    }

    /// Notes that `offset` is committed (the commit never moves back here).
    pub fn mark_committed(&mut self, offset: i64) {
        self.committed = Some(self.committed.map_or(offset, |c| c.max(offset)));
    }

    /// Last processed offset + 1.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// The last offset committed (or known committed).
    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// `(first, last)` offsets processed by this instance.
    pub fn processed_range(&self) -> Option<(i64, i64)> {
        Some((self.first?, self.last?))
    }

    /// Runs held (for tests and introspection).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

/// The latest end among the windows of `sizes` that hold time `t`.
pub fn window_end(t: Millis, sizes: &[Millis]) -> Millis {
    sizes
        .iter()
        .map(|&s| window_start(t, s).saturating_add(s))
        .max()
        .unwrap_or(t)
}

/// Trackers of every partition this instance has processed, by topic and partition. Topics
/// are few (usually one): a linear scan by name finds one without allocating.
#[derive(Debug, Default)]
pub struct Tracker {
    topics: Vec<(String, BTreeMap<i32, PartitionTrack>)>,
}

impl Tracker {
    /// The tracker of `(topic, partition)`, created empty on first use.
    pub fn get_mut(&mut self, topic: &str, partition: i32) -> &mut PartitionTrack {
        let i = match self.topics.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                self.topics.push((topic.to_string(), BTreeMap::new()));
                self.topics.len() - 1
            }
        };
        self.topics[i].1.entry(partition).or_default()
    }

    /// The tracker of `(topic, partition)`, if that partition was processed.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&PartitionTrack> {
        self.topics
            .iter()
            .find(|(t, _)| t == topic)
            .and_then(|(_, m)| m.get(&partition))
    }

    /// [`PartitionTrack::release`] on every partition: windows are closed through
    /// `closed_through` (the engine's watermark).
    pub fn release(&mut self, closed_through: Millis) {
        for (_, m) in &mut self.topics {
            for t in m.values_mut() {
                t.release(closed_through);
            }
        }
    }

    /// Every tracked `(topic, partition, tracker)`, topics in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, &PartitionTrack)> {
        self.topics
            .iter()
            .flat_map(|(t, m)| m.iter().map(move |(p, tr)| (t.as_str(), *p, tr)))
    }

    /// Forgets a partition's runs (revoked: another member resumes from its commit), keeping
    /// the processed range and last commit for the summary.
    pub fn forget_runs(&mut self, topic: &str, partition: i32) {
        if let Some((_, m)) = self.topics.iter_mut().find(|(t, _)| t == topic) {
            if let Some(t) = m.get_mut(&partition) {
                t.runs.clear();
                t.next = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{HOUR, MINUTE};

    #[test]
    fn window_end_is_the_latest_end_over_sizes() {
        let sizes = [MINUTE, HOUR];
        assert_eq!(window_end(10 * HOUR + 5 * MINUTE, &sizes), 11 * HOUR);
        assert_eq!(window_end(10 * HOUR, &sizes), 11 * HOUR);
        assert_eq!(window_end(10 * HOUR - 1, &sizes), 10 * HOUR);
        // Sizes that do not nest: 7m and 1h.
        assert_eq!(window_end(59 * MINUTE, &[7 * MINUTE, HOUR]), 63 * MINUTE);
    }

    #[test]
    fn runs_merge_and_release_in_order() {
        let mut t = PartitionTrack::default();
        assert_eq!(t.safe_offset(), None);
        t.processed(0, Some(HOUR));
        t.processed(1, Some(HOUR));
        t.processed(2, None); // a dead letter
        t.processed(3, Some(2 * HOUR));
        t.processed(4, Some(2 * HOUR));
        assert_eq!(t.runs(), 2);
        assert_eq!(t.safe_offset(), Some(0));
        t.release(HOUR - 1);
        assert_eq!(t.safe_offset(), Some(0));
        t.release(HOUR);
        assert_eq!(t.safe_offset(), Some(3));
        t.release(2 * HOUR);
        assert_eq!(t.safe_offset(), Some(5));
        assert_eq!(t.to_commit(), Some(5));
        t.mark_committed(5);
        assert_eq!(t.to_commit(), None);
        assert_eq!(t.processed_range(), Some((0, 4)));
    }

    #[test]
    fn an_older_run_behind_a_newer_one_is_held_conservatively() {
        let mut t = PartitionTrack::default();
        t.processed(10, Some(2 * HOUR));
        t.processed(11, Some(HOUR)); // slightly out of order
        t.release(HOUR);
        // The front run is still open: nothing past offset 10 is safe.
        assert_eq!(t.safe_offset(), Some(10));
        t.release(2 * HOUR);
        assert_eq!(t.safe_offset(), Some(12));
    }
}
