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
//! The store is a plain hash map owned by the engine: nothing reads open windows while the
//! engine writes them (sinks and the metrics endpoint see closed windows only), so a
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
pub use output::{kpi_fields, summary_json};

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

/// The open window × group aggregates of an engine, keyed by [`WindowKey`], with the order
/// in which they close.
pub struct WindowStore {
    sizes: Vec<Millis>,
    groups: Vec<Vec<Dim>>,
    map: Map,
    /// Open windows by (end, size, start) → the group keys that have data, to close in order.
    open: BTreeMap<(Millis, u8, Millis), Vec<(u8, GroupValues)>>,
    /// Windows ending at or before this have closed.
    closed_through: Millis,
    /// Window contributions dropped because their window had already closed.
    pub late_contributions: u64,
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
            closed_through: Millis::MIN,
            late_contributions: 0,
        }
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

    /// Removes and returns every window × group whose end is at or before `watermark`
    /// (SPEC §2: a window is closed when the watermark reaches its end), in order of end,
    /// size, start and group.
    pub fn close(&mut self, watermark: Millis, out: &mut Vec<ClosedWindow>) {
        self.closed_through = self.closed_through.max(watermark);
        while let Some(entry) = self.open.first_entry() {
            if entry.key().0 > watermark {
                break;
            }
            let ((_, si, start), groups) = entry.remove_entry();
            self.take(si, start, groups, false, out);
        }
    }

    /// Removes and returns every remaining window with data, marked partial unless its end
    /// is at or before `watermark` (end of a replay).
    pub fn flush_all(&mut self, watermark: Millis, out: &mut Vec<ClosedWindow>) {
        self.close(watermark, out);
        while let Some(((_, si, start), groups)) = self.open.pop_first() {
            self.take(si, start, groups, true, out);
        }
    }

    fn take(
        &mut self,
        si: u8,
        start: Millis,
        mut groups: Vec<(u8, GroupValues)>,
        partial: bool,
        out: &mut Vec<ClosedWindow>,
    ) {
        groups.sort_unstable();
        for (gi, values) in groups {
            let key = WindowKey {
                size_idx: si,
                start,
                group_idx: gi,
                values,
            };
            if let Some(agg) = self.map.remove(&key) {
                out.push(ClosedWindow {
                    key,
                    size: self.sizes[si as usize],
                    agg,
                    partial,
                });
            }
        }
    }

    /// Number of window × group aggregates currently open.
    pub fn open_aggregates(&self) -> usize {
        self.map.len()
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
