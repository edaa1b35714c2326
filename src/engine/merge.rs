//! The merge step (SPEC §2): a window is complete when every partition has sealed its part —
//! when the minimum of the partitions' watermarks has reached the window's end — and its
//! `kpi.window` record is the merge of the parts, emitted once.
//!
//! Sealed parts stay in their partition's state (and checkpoints) until the merge has emitted
//! the window; every partition then notes the completion point (`merged_through`). A restore
//! may bring partitions back from checkpoints of different moments: one that had deleted its
//! part of an emitted window carries a completion point at or after the window's end, and
//! any part of such a window — sealed, open, or derived again from the input after an older
//! checkpoint of another partition — is dropped instead of emitted again incomplete. A window
//! after every restored completion point still has all its parts (no partition deleted one),
//! so it is emitted again byte-identical.
//!
//! Emission order within one step: by window end, size and start; within a window, the
//! groups in the order of the one partition that had data (a single-partition replay keeps
//! its order of old), or by group and names when several contributed.

use std::collections::{BTreeMap, BTreeSet};

use super::partition::Partition;
use super::parts::PartOut;
use crate::output::{Record, WindowRecord};
use crate::ts::Millis;
use crate::window::{ClosedWindow, WindowId};

/// A part with its group index and group names.
pub(super) type Named = (u8, Vec<(crate::config::Dim, String)>, ClosedWindow);

/// Which partitions a window waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Every partition the engine has (replay: the parts of the file).
    Present,
    /// These partitions (from the input topics' metadata), whether or not this engine has
    /// them yet: a missing one holds completion back.
    Of(BTreeSet<i32>),
    /// Each sealed part goes to the parts topic on its own (`run`: the merge step of the
    /// parts topic completes the windows, [`super::parts`]).
    Topic,
}

/// The completion point of `partitions` under `mode`: the minimum watermark of the
/// partitions it waits for (`None` while one of them has none).
pub(super) fn completion_point(
    partitions: &BTreeMap<i32, Partition>,
    mode: &Completion,
) -> Option<Millis> {
    let wm = |p: &Partition| p.core.watermark.value();
    match mode {
        Completion::Present => partitions.values().map(wm).min().flatten(),
        Completion::Of(set) => set
            .iter()
            .map(|p| partitions.get(p).and_then(wm))
            .min()
            .flatten(),
        Completion::Topic => None,
    }
}

/// Emits every window complete at the current watermarks (or, with `all`, every sealed
/// window: the partial ones at the end of a finite input).
pub(super) fn merge(
    partitions: &mut BTreeMap<i32, Partition>,
    mode: &Completion,
    all: bool,
    out: &mut Vec<Record>,
    parts_out: &mut Vec<PartOut>,
) {
    if *mode == Completion::Topic {
        for p in partitions.values_mut() {
            let ids: Vec<WindowId> = p.core.windows.sealed_windows().collect();
            for id in ids {
                for part in p.core.windows.take_sealed(id) {
                    let group = p
                        .core
                        .windows
                        .group_names(&part.key, |t| p.core.teams.name(t));
                    parts_out.push(PartOut {
                        partition: p.core.partition,
                        group,
                        window: part,
                    });
                }
            }
        }
        return;
    }
    let limit = if all {
        Millis::MAX
    } else {
        match completion_point(partitions, mode) {
            Some(m) => m,
            None => return,
        }
    };
    let mut ids = BTreeSet::new();
    for p in partitions.values() {
        ids.extend(
            p.core
                .windows
                .sealed_windows()
                .take_while(|(end, _, _)| *end <= limit),
        );
    }
    // Windows ending at or before the completion point of an earlier merge were emitted
    // then: after a restore from checkpoints of different moments, what a partition derives
    // again for them is already out (see the module docs).
    let emitted = partitions
        .values()
        .map(|p| p.core.merged_through)
        .max()
        .unwrap_or(Millis::MIN);
    for id in ids {
        if id.0 <= emitted {
            for p in partitions.values_mut() {
                p.core.windows.take_sealed(id);
            }
            continue;
        }
        let mut parts: Vec<Named> = Vec::new();
        let mut contributors = 0;
        for p in partitions.values_mut() {
            let sealed = p.core.windows.take_sealed(id);
            contributors += !sealed.is_empty() as usize;
            // Parts are large (four duration summaries inline): grown one at a time, the
            // vector of an hourly window's hundreds of groups was copied over and over.
            parts.reserve(sealed.len());
            for part in sealed {
                let group = p
                    .core
                    .windows
                    .group_names(&part.key, |t| p.core.teams.name(t));
                parts.push((part.key.group_idx, group, part));
            }
        }
        if contributors > 1 {
            // Stable: within a group, the parts stay in ascending partition order.
            parts.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        }
        emit_window(parts, out);
    }
    if limit != Millis::MAX {
        for p in partitions.values_mut() {
            p.core.merged_through = p.core.merged_through.max(limit);
        }
    }
}

/// Emits one window's records: `parts` holds each group's parts next to each other, in
/// ascending partition order (the one order in which every instance adds them, so a merged
/// record is the same bytes wherever it is made); each group's parts are merged into one
/// record.
pub(super) fn emit_window(parts: Vec<Named>, out: &mut Vec<Record>) {
    let mut merged: Option<Named> = None;
    for (gi, group, part) in parts {
        match &mut merged {
            Some((mg, mgroup, m)) if *mg == gi && *mgroup == group => {
                m.agg.merge(&part.agg);
                m.partial |= part.partial;
            }
            _ => {
                if let Some((_, g, m)) = merged.take() {
                    out.push(record(m, g));
                }
                merged = Some((gi, group, part));
            }
        }
    }
    if let Some((_, g, m)) = merged {
        out.push(record(m, g));
    }
}

fn record(window: ClosedWindow, group: Vec<(crate::config::Dim, String)>) -> Record {
    Record::Window(Box::new(WindowRecord {
        window,
        group,
        part: false,
    }))
}

/// Windows with sealed parts waiting for other partitions.
pub(super) fn pending_windows(partitions: &BTreeMap<i32, Partition>) -> usize {
    let mut ids = BTreeSet::new();
    for p in partitions.values() {
        ids.extend(p.core.windows.sealed_windows());
    }
    ids.len()
}
