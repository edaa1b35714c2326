//! The hook through which measurements and current-state changes leave the engine for the
//! Prometheus layer (SPEC §6). The engine knows nothing about Prometheus: it calls these
//! methods, and `crate::metrics` implements them.

use super::Interner;
use crate::kpi::{Measurement, SlaKind};

/// Receives every measurement (late or not) and every change of the current-state gauges.
pub trait Observer: Send {
    /// A fresh observer of the same sink for another partition (each partition resolves its
    /// own team ids, so observers that cache by id must not be shared). `None`: not forkable.
    fn fork(&self) -> Option<Box<dyn Observer>> {
        None
    }

    /// A KPI measurement; `teams` resolves its team id.
    fn measurement(&mut self, _m: &Measurement, _teams: &Interner) {}
    /// `cxstream_open_tickets{team,priority}` changed by `delta`.
    fn open_tickets(&mut self, _team: &str, _priority: &str, _delta: i64) {}
    /// `cxstream_sla_breached_open_tickets{sla,team,priority}` changed by `delta`.
    fn breached_open(&mut self, _sla: SlaKind, _team: &str, _priority: &str, _delta: i64) {}
}
