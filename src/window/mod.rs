//! Event-time tumbling windows (SPEC §2): `[start, start + size)` aligned to the UNIX epoch,
//! one aggregate per window × group.
//!
//! ```text
//! mod.rs        the window store: which windows are open, recording, closing in order
//! aggregate.rs  what one window × group accumulates (exact counts and sums)
//! duration.rs   duration summaries: exact count/min/max/mean and nearest-rank percentiles
//! hdr.rs        the standard HdrHistogram V2 compressed encoding of a summary (`hdr`)
//! output.rs     the KPI fields of a `kpi.window` record, as JSON
//! ```
//!
//! Each input partition has its own store: its *parts* of the windows (SPEC §2). A part is
//! open until the partition's watermark reaches the window's end; then it is *sealed* (no
//! more contributions; later ones are late) and waits in the store until the engine's merge
//! step has emitted the complete window, i.e. until every partition has sealed its part. Keeping
//! sealed parts in the partition's state until then is what makes a merge survive a restart:
//! a checkpoint holds them.
//!
//! The store is a plain hash map owned by its partition: nothing reads open windows while the
//! engine writes them (sinks and the metrics endpoint see emitted windows only), so a
//! concurrent map would only cost.

pub mod aggregate;
pub mod duration;
pub mod hdr;
mod output;

use std::collections::BTreeMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

pub use aggregate::Aggregate;
pub use duration::DurationAgg;
pub use output::{kpi_fields, summary_json, write_kpi_fields, write_summary};

use crate::config::Dim;
use crate::event::{Category, Channel, Priority};
use crate::kpi::{Dims, Measurement};
use crate::ts::Millis;

/// Up to four dimension values of a group, in the group's configured order. Teams are
/// interned ids; enumerations use their index.
pub type GroupValues = [u32; 4];

/// Identifies one window × group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowKey {
    /// Index of the window size in `engine.windows`.
    pub size_idx: u8,
    /// The window's start, a multiple of its size since the UNIX epoch.
    pub start: Millis,
    /// Index of the group in `engine.group_by`.
    pub group_idx: u8,
    /// The group's dimension values (unused slots are 0).
    pub values: GroupValues,
}

/// A window × group that has closed (or is flushed at the end of a replay).
#[derive(Debug, Clone)]
pub struct ClosedWindow {
    /// Which window × group.
    pub key: WindowKey,
    /// The window size (end = start + size).
    pub size: Millis,
    /// What it accumulated.
    pub agg: Aggregate,
    /// Emitted at the end of a finite input before the watermark reached its end (the
    /// record's `"partial": true`, SPEC §2).
    pub partial: bool,
}

type Map = std::collections::HashMap<WindowKey, Aggregate, BuildHasherDefault<FxHasher>>;

/// A window: (end, size index, start) — the order in which windows close.
pub type WindowId = (Millis, u8, Millis);

/// The window parts of one partition, keyed by [`WindowKey`], with the order in which they
/// close.
pub struct WindowStore {
    /// Window sizes by size index.
    sizes: Vec<Millis>,
    /// Group-by sets by group index.
    groups: Vec<Vec<Dim>>,
    /// Open parts.
    map: Map,
    /// Open windows → the group keys that have data, to close in order.
    open: BTreeMap<WindowId, Vec<(u8, GroupValues)>>,
    /// Sealed parts awaiting the merge step, by window, in group order.
    sealed: BTreeMap<WindowId, Vec<ClosedWindow>>,
    /// Windows ending at or before this have closed (the partition's watermark at its last
    /// close).
    closed_through: Millis,
    /// Window contributions dropped because their window had already closed.
    pub late_contributions: u64,
    /// Parts changed since the last checkpoint (`None`: not tracked, e.g. in replay).
    touched: Option<FxSet<WindowKey>>,
}

type FxSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;

/// Where a part stands, for a checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum PartRef<'a> {
    /// Open, with what it accumulated so far.
    Open(&'a Aggregate),
    /// Sealed, awaiting the merge.
    Sealed(&'a ClosedWindow),
    /// Gone (merged and emitted).
    Gone,
}

/// The value of one dimension of a measurement, if it carries it.
fn dim_value(d: Dim, dims: &Dims) -> Option<u32> {
    match d {
        Dim::Team => dims.team,
        Dim::Channel => dims.channel.map(|c| c.index()),
        Dim::Priority => dims.priority.map(|p| p.index()),
        Dim::Category => dims.category.map(|c| c.index()),
    }
}

/// Start of the window of `size` holding `t`.
pub fn window_start(t: Millis, size: Millis) -> Millis {
    t.div_euclid(size) * size
}

impl WindowStore {
    /// An empty store for the configured window sizes and group-by sets.
    pub fn new(sizes: Vec<Millis>, groups: Vec<Vec<Dim>>) -> Self {
        WindowStore {
            sizes,
            groups,
            map: Map::default(),
            open: BTreeMap::new(),
            sealed: BTreeMap::new(),
            closed_through: Millis::MIN,
            late_contributions: 0,
            touched: None,
        }
    }

    /// Tracks the parts that change, for incremental checkpoints.
    pub fn track_changes(&mut self) {
        self.touched.get_or_insert_with(FxSet::default);
    }

    /// The parts changed since the last call (and forgets them).
    pub fn take_touched(&mut self) -> Vec<WindowKey> {
        match &mut self.touched {
            Some(t) => {
                let mut v: Vec<WindowKey> = t.drain().collect();
                v.sort_unstable();
                v
            }
            None => Vec::new(),
        }
    }

    /// Whether parts changed since the last [`Self::take_touched`].
    pub fn has_touched(&self) -> bool {
        self.touched.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// Marks a part changed (it must be written again).
    pub fn touch(&mut self, key: WindowKey) {
        if let Some(t) = &mut self.touched {
            t.insert(key);
        }
    }

    /// Where the part `key` stands now.
    pub fn part(&self, key: &WindowKey) -> PartRef<'_> {
        if let Some(a) = self.map.get(key) {
            return PartRef::Open(a);
        }
        let size = self.sizes.get(key.size_idx as usize).copied().unwrap_or(0);
        let id = (key.start + size, key.size_idx, key.start);
        match self
            .sealed
            .get(&id)
            .and_then(|v| v.iter().find(|c| c.key == *key))
        {
            Some(c) => PartRef::Sealed(c),
            None => PartRef::Gone,
        }
    }

    /// Every part, open or sealed (a full checkpoint).
    pub fn all_parts(&self) -> Vec<WindowKey> {
        let mut v: Vec<WindowKey> = self.map.keys().copied().collect();
        v.extend(self.sealed.values().flatten().map(|c| c.key));
        v.sort_unstable();
        v
    }

    /// The partition's close position (restored from a checkpoint).
    pub fn closed_through(&self) -> Millis {
        self.closed_through
    }

    /// Puts a restored part back: open, or sealed as `sealed` says.
    pub fn restore_part(&mut self, key: WindowKey, agg: Aggregate, sealed: Option<bool>) {
        let size = self.sizes.get(key.size_idx as usize).copied().unwrap_or(0);
        let id = (key.start + size, key.size_idx, key.start);
        match sealed {
            None => {
                self.open
                    .entry(id)
                    .or_default()
                    .push((key.group_idx, key.values));
                self.map.insert(key, agg);
            }
            Some(partial) => {
                let parts = self.sealed.entry(id).or_default();
                parts.push(ClosedWindow {
                    key,
                    size,
                    agg,
                    partial,
                });
                parts.sort_unstable_by_key(|c| (c.key.group_idx, c.key.values));
            }
        }
    }

    /// Sets the close position (on restore).
    pub fn set_closed_through(&mut self, w: Millis) {
        self.closed_through = w;
    }

    /// The window sizes, indexed by [`WindowKey::size_idx`].
    pub fn sizes(&self) -> &[Millis] {
        &self.sizes
    }

    /// The group-by sets, indexed by [`WindowKey::group_idx`].
    pub fn groups(&self) -> &[Vec<Dim>] {
        &self.groups
    }

    /// Adds a measurement to every window of every size and every group whose dimensions it
    /// has, except windows already closed (end ≤ the watermark they were closed at): those
    /// contributions are dropped and counted. Returns how many were dropped.
    pub fn record(&mut self, m: &Measurement, partition: i32) -> u32 {
        let mut dropped = 0;
        for (si, &size) in self.sizes.iter().enumerate() {
            let start = window_start(m.time, size);
            let end = start + size;
            if end <= self.closed_through {
                dropped += 1;
                continue;
            }
            'groups: for (gi, dims) in self.groups.iter().enumerate() {
                let mut values = [0u32; 4];
                for (i, d) in dims.iter().enumerate() {
                    match dim_value(*d, &m.dims) {
                        Some(v) => values[i] = v,
                        None => continue 'groups,
                    }
                }
                let key = WindowKey {
                    size_idx: si as u8,
                    start,
                    group_idx: gi as u8,
                    values,
                };
                if let Some(t) = &mut self.touched {
                    t.insert(key);
                }
                match self.map.get_mut(&key) {
                    Some(agg) => agg.apply(&m.kpi, partition),
                    None => {
                        let mut agg = Aggregate::default();
                        agg.apply(&m.kpi, partition);
                        self.map.insert(key, agg);
                        self.open
                            .entry((end, si as u8, start))
                            .or_default()
                            .push((gi as u8, values));
                    }
                }
            }
        }
        self.late_contributions += dropped as u64;
        dropped
    }

    /// Seals every part whose window ends at or before `watermark` (SPEC §2: a part closes
    /// when its partition's watermark reaches the window's end). Returns the windows sealed,
    /// in order of end, size and start.
    pub fn close(&mut self, watermark: Millis) -> Vec<WindowId> {
        self.closed_through = self.closed_through.max(watermark);
        let mut done = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().0 > watermark {
                break;
            }
            let (id, groups) = entry.remove_entry();
            self.seal(id, groups, false);
            done.push(id);
        }
        done
    }

    /// Seals every remaining part, partial unless its end is at or before `watermark` (end of
    /// a finite input). Returns the windows sealed.
    pub fn flush_all(&mut self, watermark: Millis) -> Vec<WindowId> {
        let mut done = self.close(watermark);
        while let Some((id, groups)) = self.open.pop_first() {
            self.seal(id, groups, true);
            done.push(id);
        }
        done
    }

    fn seal(&mut self, id: WindowId, mut groups: Vec<(u8, GroupValues)>, partial: bool) {
        let (_, si, start) = id;
        groups.sort_unstable();
        let mut parts = Vec::with_capacity(groups.len());
        for (gi, values) in groups {
            let key = WindowKey {
                size_idx: si,
                start,
                group_idx: gi,
                values,
            };
            if let Some(agg) = self.map.remove(&key) {
                if let Some(t) = &mut self.touched {
                    t.insert(key);
                }
                parts.push(ClosedWindow {
                    key,
                    size: self.sizes[si as usize],
                    agg,
                    partial,
                });
            }
        }
        if !parts.is_empty() {
            self.sealed.entry(id).or_default().extend(parts);
        }
    }

    /// The windows with sealed parts, in close order.
    pub fn sealed_windows(&self) -> impl Iterator<Item = WindowId> + '_ {
        self.sealed.keys().copied()
    }

    /// Removes and returns the sealed parts of window `id` (the merge step emitted it), in
    /// group order.
    pub fn take_sealed(&mut self, id: WindowId) -> Vec<ClosedWindow> {
        let parts = self.sealed.remove(&id).unwrap_or_default();
        if let Some(t) = &mut self.touched {
            t.extend(parts.iter().map(|c| c.key));
        }
        parts
    }

    /// Number of window × group parts open or sealed.
    pub fn open_aggregates(&self) -> usize {
        self.map.len() + self.sealed.values().map(Vec::len).sum::<usize>()
    }

    /// Duration summaries holding an HDR histogram, over the open and sealed parts.
    pub fn dense_summaries(&self) -> usize {
        self.map
            .values()
            .map(Aggregate::dense_summaries)
            .sum::<usize>()
            + self
                .sealed
                .values()
                .flatten()
                .map(|c| c.agg.dense_summaries())
                .sum::<usize>()
    }

    /// One open aggregate (for inspection and tests).
    pub fn get(&self, key: &WindowKey) -> Option<&Aggregate> {
        self.map.get(key)
    }

    /// The group of `key` as `(dimension, value)` names, in the group's configured order;
    /// `team` resolves interned team ids.
    pub fn group_names<'a>(
        &self,
        key: &WindowKey,
        team: impl Fn(u32) -> &'a str,
    ) -> Vec<(Dim, String)> {
        let dims = self
            .groups
            .get(key.group_idx as usize)
            .map_or(&[][..], |g| g);
        dims.iter()
            .zip(key.values)
            .map(|(d, v)| {
                let name = match d {
                    Dim::Team => team(v).to_string(),
                    Dim::Channel => {
                        Channel::from_index(v).map_or(String::new(), |c| c.as_str().into())
                    }
                    Dim::Priority => {
                        Priority::from_index(v).map_or(String::new(), |c| c.as_str().into())
                    }
                    Dim::Category => {
                        Category::from_index(v).map_or(String::new(), |c| c.as_str().into())
                    }
                };
                (*d, name)
            })
            .collect()
    }
}
