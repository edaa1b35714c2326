//! The event schedule: a calendar queue of future events keyed by `(time, sequence)`.
//!
//! The simulation schedules orders, returns, warranty claims and churns weeks ahead, but pops
//! only the next few minutes' worth at a time. One binary heap over everything would hold every
//! pending event; the calendar queue keeps a small heap for events due before `horizon` and
//! per-bucket vectors beyond it, which move into the heap when their bucket comes up. Popping
//! is in exactly the `(time, sequence)` order a single heap would give, so the output does not
//! depend on the bucket size; ties in time come out in the order they were pushed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// One scheduled event: due at `t`, pushed as the `seq`-th.
struct Entry<E> {
    t: i64,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.seq == o.seq
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap, we want the earliest (then first scheduled) on top.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// A calendar queue of events of type `E`, popped in `(time, push order)` order.
pub(super) struct Schedule<E> {
    near: BinaryHeap<Entry<E>>,
    far: BTreeMap<i64, Vec<Entry<E>>>,
    bucket_ms: i64,
    horizon: i64,
    seq: u64,
}

impl<E> Schedule<E> {
    /// An empty schedule with buckets of `bucket_ms` (at least 1), starting at `start`.
    pub(super) fn new(bucket_ms: i64, start: i64) -> Self {
        let bucket_ms = bucket_ms.max(1);
        let horizon = (start.div_euclid(bucket_ms) + 1).saturating_mul(bucket_ms);
        Schedule {
            near: BinaryHeap::new(),
            far: BTreeMap::new(),
            bucket_ms,
            horizon,
            seq: 0,
        }
    }

    /// Schedules `ev` at `t`.
    pub(super) fn push(&mut self, t: i64, ev: E) {
        self.seq += 1;
        let e = Entry {
            t,
            seq: self.seq,
            ev,
        };
        if t < self.horizon {
            self.near.push(e);
        } else {
            let b = t.div_euclid(self.bucket_ms);
            self.far.entry(b).or_default().push(e);
        }
    }

    /// The earliest event and its time; `None` when nothing is scheduled.
    pub(super) fn pop(&mut self) -> Option<(i64, E)> {
        while self.near.is_empty() {
            let (b, v) = self.far.pop_first()?;
            self.horizon = (b + 1).saturating_mul(self.bucket_ms);
            self.near.extend(v);
        }
        self.near.pop().map(|e| (e.t, e.ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_push_order_across_buckets() {
        let mut q = Schedule::new(10, 0);
        let times = [35, 3, 3, 120, 9, 10, 35, 0, 500, 11];
        for (i, &t) in times.iter().enumerate() {
            q.push(t, i);
        }
        let mut want: Vec<(i64, usize)> = times.iter().copied().zip(0..).collect();
        want.sort();
        let mut got = Vec::new();
        while let Some(x) = q.pop() {
            got.push(x);
            if x.1 == 1 {
                q.push(36, 99); // scheduled while popping, between existing ones
                want.push((36, 99));
                want.sort();
            }
        }
        assert_eq!(got, want);
    }
}
