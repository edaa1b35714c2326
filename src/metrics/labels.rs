//! Per-label cardinality caps (SPEC §6): at most `limit` distinct values per label name; any
//! further value is folded into [`OTHER`] and counted in `cxstream_label_overflow_total{label}`.
//!
//! One cap per label *name*, shared by every metric carrying that label, so "team" admits the
//! same first `limit` teams everywhere and a dashboard's `sum by (team)` adds up across
//! metrics. A value, once admitted, stays admitted for the life of the process (its series
//! exist in Prometheus anyway); caps never evict, so a label value never changes meaning.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::RwLock;

use prometheus::{IntCounter, IntCounterVec};
use rustc_hash::FxHasher;

/// The label value that stands for every value past the cap.
pub const OTHER: &str = "__other__";

type FxSet = HashSet<Box<str>, BuildHasherDefault<FxHasher>>;

/// The distinct values admitted for one label name.
pub struct LabelCap {
    name: &'static str,
    limit: usize,
    values: RwLock<FxSet>,
    overflow: IntCounter,
}

impl LabelCap {
    pub(crate) fn new(name: &'static str, limit: usize, overflow: IntCounter) -> LabelCap {
        LabelCap {
            name,
            limit: limit.max(1),
            values: RwLock::new(FxSet::default()),
            overflow,
        }
    }

    /// The label this cap applies to.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Admits `value` if it is known or there is room; returns whether it fits. Does not
    /// count anything: see [`LabelCap::resolve`].
    pub fn admit(&self, value: &str) -> bool {
        if self
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(value)
        {
            return true;
        }
        let mut set = self.values.write().unwrap_or_else(|e| e.into_inner());
        if set.contains(value) {
            return true;
        }
        if set.len() < self.limit {
            set.insert(value.into());
            return true;
        }
        false
    }

    /// The label value to use for `value`: itself when admitted, else [`OTHER`] — and then
    /// one more `cxstream_label_overflow_total{label}`.
    pub fn resolve<'a>(&self, value: &'a str) -> &'a str {
        if self.admit(value) {
            value
        } else {
            self.overflow.inc();
            OTHER
        }
    }

    /// Counts one folded update (for callers that cached an earlier [`LabelCap::admit`]).
    pub fn count_overflow(&self) {
        self.overflow.inc();
    }

    /// Distinct values admitted so far.
    pub fn len(&self) -> usize {
        self.values.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no value was admitted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-label caps of the label names whose values come from input data.
pub struct Caps {
    /// `team` (of tickets, SLA clocks, CSAT answers and open tickets).
    pub team: LabelCap,
    /// `channel` (of tickets and handled contacts).
    pub channel: LabelCap,
    /// `priority` (of tickets, SLA clocks and open tickets).
    pub priority: LabelCap,
    /// `score` (of CSAT and CES answers).
    pub score: LabelCap,
}

impl Caps {
    /// Caps of `limit` values each, counting folds in `overflow{label}`.
    pub(crate) fn new(limit: usize, overflow: &IntCounterVec) -> Caps {
        let cap = |name| LabelCap::new(name, limit, overflow.with_label_values(&[name]));
        Caps {
            team: cap("team"),
            channel: cap("channel"),
            priority: cap("priority"),
            score: cap("score"),
        }
    }

    /// Folded updates counted so far, over all labels.
    pub(crate) fn overflow_total(&self) -> u64 {
        [&self.team, &self.channel, &self.priority, &self.score]
            .iter()
            .map(|c| c.overflow.get())
            .sum()
    }
}
