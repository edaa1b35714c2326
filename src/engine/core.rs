//! The per-partition context of every rule: the configuration, the partition's team interner,
//! its window parts, its watermark, its output buffer, its counters and its observer.
//! Measurements go through [`Core::measure`] to the window parts and the observer alike — one
//! definition of each KPI feeds both (GUIDE §1).

use std::sync::Arc;

use super::ticket::Contribution;
use super::watermark::Watermark;
use super::{Interner, Observer, Stats};
use crate::config::Config;
use crate::kpi::{Dims, Kpi, Measurement, SlaKind};
use crate::output::Record;
use crate::ts::Millis;
use crate::window::WindowStore;

/// What the rules of one partition read and write besides its tickets and customers.
pub(super) struct Core {
    /// The configuration (windows, lateness, targets, signal settings).
    pub cfg: Arc<Config>,
    /// The input partition number (the `partitions` of window records).
    pub partition: i32,
    /// Team names of this partition's measurements and window keys.
    pub teams: Interner,
    /// This partition's window parts.
    pub windows: WindowStore,
    /// This partition's watermark (SPEC §2).
    pub watermark: Watermark,
    /// Windows ending at or before this have been emitted complete by the merge step (kept
    /// per partition so that a restore knows which sealed parts are already out).
    pub merged_through: Millis,
    /// Records emitted and not drained yet, in order.
    pub out: Vec<Record>,
    /// Cumulative counters of this partition (this process only).
    pub stats: Stats,
    /// The Prometheus layer, if any.
    pub observer: Option<Box<dyn Observer>>,
}

impl Core {
    /// A context for `partition` with nothing in it.
    pub fn new(cfg: Arc<Config>, partition: i32, observer: Option<Box<dyn Observer>>) -> Core {
        let windows = WindowStore::new(
            cfg.engine.windows.iter().map(|d| d.0).collect(),
            cfg.engine.group_by.clone(),
        );
        let mut teams = Interner::default();
        teams.intern(crate::event::DEFAULT_TEAM);
        Core {
            cfg,
            partition,
            teams,
            windows,
            watermark: Watermark::default(),
            merged_through: Millis::MIN,
            out: Vec::new(),
            stats: Stats::default(),
            observer,
        }
    }

    /// A measurement (SPEC §3/§5): into this partition's window parts (a contribution to a
    /// sealed part is dropped and counted) and to the observer.
    pub fn measure(&mut self, time: Millis, dims: Dims, kpi: Kpi) {
        let m = Measurement { time, dims, kpi };
        self.stats.late_contributions += self.windows.record(&m, self.partition) as u64;
        if let Some(o) = self.observer.as_mut() {
            o.measurement(&m, &self.teams);
        }
    }

    /// Feeds the Prometheus layer only (no window): used where SPEC §6 counts an event that
    /// the event-time-ordered after-sales logic does not apply.
    pub fn observe_only(&mut self, time: Millis, kpi: Kpi) {
        if let Some(o) = self.observer.as_mut() {
            let m = Measurement {
                time,
                dims: Dims::NONE,
                kpi,
            };
            o.measurement(&m, &self.teams);
        }
    }

    /// Emits an output record.
    pub fn emit(&mut self, r: Record) {
        *self.stats.records.entry(r.type_name()).or_default() += 1;
        self.out.push(r);
    }

    /// Moves a ticket's contribution to the current-state gauges from `before` to `after`.
    pub fn gauges(&mut self, before: (Contribution, Dims), after: (Contribution, Dims)) {
        let Some(o) = self.observer.as_mut() else {
            return;
        };
        for (c, dims, sign) in [(before.0, before.1, -1i64), (after.0, after.1, 1i64)] {
            let team = self.teams.name(dims.team.unwrap_or(0));
            let prio = dims.priority.map_or("", |p| p.as_str());
            if c.open {
                o.open_tickets(team, prio, sign);
            }
            if c.first_response_breached_waiting {
                o.breached_open(SlaKind::FirstResponse, team, prio, sign);
            }
            if c.resolution_breached_open {
                o.breached_open(SlaKind::Resolution, team, prio, sign);
            }
        }
    }
}
