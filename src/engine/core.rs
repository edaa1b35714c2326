//! What every partition shares during a step: the configuration, the team interner, the
//! window store, the watermark, the output buffer, the counters and the observer. Measurements
//! go through [`Core::measure`] to the windows and the observer alike — one definition of each
//! KPI feeds both (GUIDE §1).

use std::sync::Arc;

use super::ticket::Contribution;
use super::watermark::Watermark;
use super::{Interner, Observer, Stats};
use crate::config::Config;
use crate::kpi::{Dims, Kpi, Measurement, SlaKind};
use crate::output::{Record, WindowRecord};
use crate::ts::Millis;
use crate::window::WindowStore;

/// State shared by the partitions of one engine.
pub(super) struct Core {
    /// The configuration (windows, lateness, targets, signal settings).
    pub cfg: Arc<Config>,
    /// Team names of measurements and window keys.
    pub teams: Interner,
    /// Open window × group aggregates.
    pub windows: WindowStore,
    /// The watermark (SPEC §2).
    pub watermark: Watermark,
    /// Records emitted and not drained yet, in order.
    pub out: Vec<Record>,
    /// Cumulative counters.
    pub stats: Stats,
    /// The Prometheus layer, if any.
    pub observer: Option<Box<dyn Observer>>,
}

impl Core {
    /// A measurement (SPEC §3/§5): into its windows (a contribution to a closed window is
    /// dropped and counted) and to the observer.
    pub fn measure(&mut self, time: Millis, dims: Dims, kpi: Kpi, partition: i32) {
        let m = Measurement { time, dims, kpi };
        self.stats.late_contributions += self.windows.record(&m, partition) as u64;
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

    /// Closes the windows whose end `watermark` reached (SPEC §2) — or, at the end of a finite
    /// input (`flush`), every window with data — and emits their records.
    pub fn close_windows(&mut self, watermark: Millis, flush: bool) {
        let mut closed = Vec::new();
        if flush {
            self.windows.flush_all(watermark, &mut closed);
        } else {
            self.windows.close(watermark, &mut closed);
        }
        for w in closed {
            let teams = &self.teams;
            let group = self.windows.group_names(&w.key, |id| teams.name(id));
            self.emit(Record::Window(Box::new(WindowRecord { window: w, group })));
        }
    }
}
