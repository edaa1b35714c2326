//! The parts topic (SPEC §7 "Several instances"): what input partitions send to the merge
//! step, and the merge step's fold over one parts-topic partition.
//!
//! Each input partition's owner sends its sealed window parts ([`PartMsg::Part`], keyed by
//! window, group and input partition, routed to a parts-topic partition by window size and
//! group) and, after them, the partition's watermark ([`PartMsg::Watermark`], to every
//! parts-topic partition) whenever it passes a window end. A partition's watermark follows
//! its parts in every parts-topic partition: the sink hands a watermark to the producer only
//! once the parts sent before it are acknowledged, so even a part sent again after a failed
//! delivery lands before it. So once the watermark of *every* input partition (their number
//! from topic metadata) has passed a window's end, the parts-topic partition routed that
//! window holds all of its parts.
//!
//! [`PartsLog`] is the merge step for one parts-topic partition: a deterministic fold over its
//! log. It keeps the highest watermark per input partition (never back), the pending parts
//! (repeats dropped by window, group and partition), and the point through which windows were
//! emitted (`merged_through`): a part for a window at or before it is dropped and counted.
//!
//! Restarts (crash, rebalance): the owner writes a [`Mark`] into its own parts-topic partition
//! once every record it emitted so far is acknowledged: its `merged_through`, its watermarks,
//! and the offset of the oldest part still pending. A new owner finds a mark, seeds a
//! `PartsLog` from it and folds the log again from that offset: parts of windows after
//! `merged_through` all lie after it, so the state it reaches is the one the previous owner
//! had, and what it emits again is byte-identical. Any mark is a valid starting point.

use std::collections::BTreeMap;

use super::merge::{emit_window, Named};
use crate::config::Dim;
use crate::output::Record;
use crate::state::codec::{CodecError, Reader, Writer};
use crate::ts::Millis;
use crate::window::{Aggregate, ClosedWindow, WindowId, WindowKey};

/// One input partition's sealed part of a window × group, with its group's names.
#[derive(Debug, Clone)]
pub struct PartOut {
    /// The input partition.
    pub partition: i32,
    /// `(dimension, value)` in the group's configured order.
    pub group: Vec<(Dim, String)>,
    /// The part.
    pub window: ClosedWindow,
}

impl PartOut {
    /// Which of `n` parts-topic partitions merges this window × group: CRC-32 of
    /// `<size>|<group>` modulo `n`, so that one KPI series is always merged in one place.
    pub fn route(&self, n: i32) -> i32 {
        route(self.window.size, &self.group, n)
    }
}

/// Which of `n` parts-topic partitions merges the windows of `size` and `group`: CRC-32 of
/// `<size>|<dim>=<value>|…` modulo `n`.
pub fn route(size: Millis, group: &[(Dim, String)], n: i32) -> i32 {
    let mut k = crate::ts::duration_label(size);
    k.push('|');
    for (d, v) in group {
        k.push_str(d.as_str());
        k.push('=');
        k.push_str(v);
        k.push('|');
    }
    crate::source::partitioner::Partitioner::Crc32.partition(k.as_bytes(), n)
}

/// A sealed part as the merge step reads it from the parts topic: its aggregate kept in the
/// bytes it came in, checked for form ([`Aggregate::skip`]) but not decoded. A dense duration
/// summary decodes to a ~100 kB histogram; the merge step decodes it once, when its window
/// is emitted.
#[derive(Debug, Clone)]
pub struct PackedPart {
    /// The input partition.
    pub partition: i32,
    /// `(dimension, value)` in the group's configured order.
    pub group: Vec<(Dim, String)>,
    window: Packed,
}

impl PackedPart {
    /// `p` with its aggregate encoded in `scratch` (kept for the next) and copied out.
    pub fn of(p: PartOut, scratch: &mut Vec<u8>) -> PackedPart {
        PackedPart {
            partition: p.partition,
            group: p.group,
            window: Packed::of(p.window, scratch),
        }
    }
}

/// A merge step's restart point (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Windows ending at or before this were emitted.
    pub merged_through: Millis,
    /// The offset of the oldest pending part (or `position` when none is pending): where a
    /// new owner starts folding.
    pub oldest: i64,
    /// The next offset the owner was to read when it took the mark.
    pub position: i64,
    /// The highest watermark of each input partition.
    pub watermarks: Vec<(i32, Millis)>,
}

/// A record of the parts topic (transient: made to be encoded, or decoded to be folded).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum PartMsg {
    /// A sealed part.
    Part(PartOut),
    /// A sealed part as [`PartMsg::decode`] reads it: the same record, its aggregate still
    /// encoded.
    Packed(PackedPart),
    /// An input partition's watermark: its parts of windows ending at or before it are sent.
    Watermark {
        /// The input partition.
        partition: i32,
        /// Its watermark.
        watermark: Millis,
    },
    /// A merge step's restart point, written by the owner into its own partition.
    Mark(Mark),
    /// The end of a bounded run (`run --until-end`) of the instance with this id: its parts
    /// before this are all here. Not part of the merge state.
    End(String),
    /// `cxstream state reset`: the merge step forgets everything before (the input is
    /// processed again from its start).
    Reset,
}

/// The window a part belongs to, in closing order.
fn window_id(c: &Packed) -> WindowId {
    (c.key.start + c.size, c.key.size_idx, c.key.start)
}

/// A window's pending parts: by (group index, group names), then by input partition, with
/// the offset each part was read at.
type Groups = BTreeMap<(u8, Vec<(Dim, String)>), BTreeMap<i32, (i64, Packed)>>;

/// A pending part with its aggregate kept encoded: a decoded duration summary past 128
/// values is a dense HDR histogram of ~100 kB, its encoding a few hundred bytes, and the
/// merge step holds every part of every window still waiting for a partition. Decoded when
/// its window is emitted (the codec is lossless: the same record bytes).
#[derive(Debug, Clone)]
struct Packed {
    key: WindowKey,
    size: Millis,
    partial: bool,
    agg: Vec<u8>,
}

impl Packed {
    /// `c` packed, its aggregate encoded in `scratch` (kept for the next) and copied out at
    /// its exact size.
    fn of(c: ClosedWindow, scratch: &mut Vec<u8>) -> Packed {
        Writer::reusing(scratch, |w| c.agg.encode(w));
        Packed {
            key: c.key,
            size: c.size,
            partial: c.partial,
            agg: scratch.clone(),
        }
    }

    fn unpack(self) -> Result<ClosedWindow, CodecError> {
        Ok(ClosedWindow {
            key: self.key,
            size: self.size,
            partial: self.partial,
            agg: Aggregate::decode(&mut Reader::new(&self.agg))?,
        })
    }
}

/// The merge step of one parts-topic partition (see the module docs).
#[derive(Debug, Clone)]
pub struct PartsLog {
    /// The input partitions a window waits for: `0..inputs`.
    inputs: i32,
    /// The highest watermark of each input partition.
    watermarks: BTreeMap<i32, Millis>,
    /// Windows ending at or before this were emitted.
    merged_through: Millis,
    /// Parts of windows not emitted yet.
    pending: BTreeMap<WindowId, Groups>,
    /// Offsets before this were folded by a previous owner (a restart from a mark): a part
    /// dropped there is not counted again. Nothing completes until the log is read again up
    /// to it (`read_to`): the mark's watermarks cover every record before its position, its
    /// pending parts come back only as those records are read again.
    replayed_before: i64,
    /// The next offset to fold.
    read_to: i64,
    /// Parts dropped because their window was already emitted.
    pub dropped: u64,
    /// Parts dropped because the same window, group and partition was already pending.
    pub repeated: u64,
    /// Where a pending part's aggregate is encoded before it is copied out (no growth).
    scratch: Vec<u8>,
}

impl PartsLog {
    /// The merge step from the start of a parts-topic partition; windows wait for input
    /// partitions `0..inputs`.
    pub fn new(inputs: i32) -> PartsLog {
        PartsLog {
            inputs,
            watermarks: BTreeMap::new(),
            merged_through: Millis::MIN,
            pending: BTreeMap::new(),
            replayed_before: i64::MIN,
            read_to: i64::MIN,
            dropped: 0,
            repeated: 0,
            scratch: Vec::new(),
        }
    }

    /// The merge step at `mark`: fold the log again from `mark.oldest`.
    pub fn from_mark(inputs: i32, mark: &Mark) -> PartsLog {
        let mut l = PartsLog::new(inputs);
        l.apply_mark(mark);
        l.replayed_before = mark.position;
        l.read_to = mark.oldest;
        l
    }

    /// Folds the record read at `offset`. [`PartMsg::End`] is not part of the state.
    pub fn apply(&mut self, offset: i64, msg: PartMsg) {
        self.read_to = self.read_to.max(offset.saturating_add(1));
        match msg {
            PartMsg::Part(p) => {
                let p = PackedPart::of(p, &mut self.scratch);
                self.part(offset, p)
            }
            PartMsg::Packed(p) => self.part(offset, p),
            PartMsg::Watermark {
                partition,
                watermark,
            } => {
                let w = self.watermarks.entry(partition).or_insert(watermark);
                *w = (*w).max(watermark);
            }
            PartMsg::Mark(m) => self.apply_mark(&m),
            PartMsg::End(_) => {}
            PartMsg::Reset => {
                self.watermarks.clear();
                self.merged_through = Millis::MIN;
                self.pending.clear();
            }
        }
    }

    fn apply_mark(&mut self, m: &Mark) {
        for (p, w) in &m.watermarks {
            let e = self.watermarks.entry(*p).or_insert(*w);
            *e = (*e).max(*w);
        }
        if m.merged_through > self.merged_through {
            self.merged_through = m.merged_through;
            let keep = self
                .pending
                .split_off(&(m.merged_through.saturating_add(1), 0, 0));
            self.pending = keep;
        }
    }

    fn part(&mut self, offset: i64, p: PackedPart) {
        let id = window_id(&p.window);
        if id.0 <= self.merged_through {
            if offset >= self.replayed_before {
                self.dropped += 1;
            }
            return;
        }
        let slot = self
            .pending
            .entry(id)
            .or_default()
            .entry((p.window.key.group_idx, p.group))
            .or_default();
        match slot.entry(p.partition) {
            std::collections::btree_map::Entry::Occupied(_) => self.repeated += 1,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert((offset, p.window));
            }
        }
    }

    /// The completion point: the lowest watermark over every input partition (`None` while
    /// one has none).
    pub fn completion_point(&self) -> Option<Millis> {
        (0..self.inputs)
            .map(|p| self.watermarks.get(&p).copied())
            .min()
            .flatten()
    }

    /// The input partition holding completion back (the lowest watermark, or one without any).
    pub fn slowest(&self) -> Option<(i32, Option<Millis>)> {
        (0..self.inputs)
            .map(|p| (p, self.watermarks.get(&p).copied()))
            .min_by_key(|(p, w)| (w.is_some(), *w, *p))
    }

    /// Emits every window complete at the current watermarks, in closing order.
    pub fn complete(&mut self, out: &mut Vec<Record>) {
        if !self.caught_up() {
            // Resumed from a mark and not read back to its position yet: a window its
            // watermarks complete may still have parts to come from before it (a mark taken
            // between folding records and completing, e.g. by a revoke inside a poll).
            return;
        }
        let Some(limit) = self.completion_point() else {
            return;
        };
        if limit <= self.merged_through {
            return;
        }
        let later = self.pending.split_off(&(limit.saturating_add(1), 0, 0));
        let done = std::mem::replace(&mut self.pending, later);
        for groups in done.into_values() {
            emit_groups(groups, out);
        }
        self.merged_through = limit;
    }

    /// The end of a bounded run: every pending window with `finals` (the parts the end of
    /// the input sealed), complete or not, partial ones flagged by their parts. The state is
    /// left as it was: what the end of a finite input emits is never part of the merge state.
    pub fn flush(&self, finals: Vec<PartOut>, out: &mut Vec<Record>) {
        let mut all = self.clone();
        all.replayed_before = i64::MAX;
        for p in finals {
            let p = PackedPart::of(p, &mut all.scratch);
            all.part(i64::MAX, p);
        }
        for groups in all.pending.into_values() {
            emit_groups(groups, out);
        }
    }

    /// The restart point at `position` (the next offset to read).
    pub fn mark(&self, position: i64) -> Mark {
        let oldest = self
            .pending
            .values()
            .flat_map(|g| g.values())
            .flat_map(|parts| parts.values().map(|(o, _)| *o))
            .min()
            .unwrap_or(position)
            .min(position);
        Mark {
            merged_through: self.merged_through,
            oldest,
            position,
            watermarks: self.watermarks.iter().map(|(p, w)| (*p, *w)).collect(),
        }
    }

    /// Read back to the position of the mark it resumed from (always, without one). Until
    /// then its watermarks cover records it has not read again: it completes nothing, and a
    /// mark taken from it would carry those watermarks to an earlier position.
    pub fn caught_up(&self) -> bool {
        self.read_to >= self.replayed_before
    }

    /// Windows with parts waiting for other partitions.
    pub fn pending_windows(&self) -> usize {
        self.pending.len()
    }

    /// Windows ending at or before this were emitted.
    pub fn merged_through(&self) -> Millis {
        self.merged_through
    }
}

/// Merges one window's groups (parts in ascending partition order, as one instance merges
/// them) and emits one record per group.
fn emit_groups(groups: Groups, out: &mut Vec<Record>) {
    let mut parts: Vec<Named> = Vec::new();
    for ((gi, group), by_partition) in groups {
        for (p, (offset, w)) in by_partition {
            match w.unpack() {
                Ok(w) => parts.push((gi, group.clone(), w)),
                // Its form was checked when it was read (`Aggregate::skip`), not a histogram's
                // counts: corrupt counts behind a sound header are found here, and the window
                // goes out without the part, as it would had the record been refused when read.
                Err(e) => tracing::error!(partition = p, offset, "pending part unreadable: {e}"),
            }
        }
    }
    emit_window(parts, out);
}

#[path = "parts_codec.rs"]
mod codec;

#[cfg(test)]
#[path = "parts_tests.rs"]
mod tests;
