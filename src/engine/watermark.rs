//! Event-time progress (SPEC §2): what each partition has applied, and the watermark derived
//! from it.
//!
//! Each partition keeps its [`PartitionClock`]: the largest event time applied from it, and in
//! live mode whether it holds the watermark back until its first event (a newly assigned
//! partition may hold a backlog older than what the others delivered first). The watermark
//! is the minimum over the partitions with data of their clock minus the allowed lateness,
//! never moving back ([`Watermark`]).

use crate::ts::Millis;

/// One partition's event-time progress.
#[derive(Debug, Clone, Default)]
pub struct PartitionClock {
    /// Largest event time of an event applied from this partition.
    pub max_time: Option<Millis>,
    /// Live mode: assigned but no event seen yet — hold the watermark where it is.
    pub hold: bool,
}

impl PartitionClock {
    /// Notes an applied event's time.
    pub fn observe(&mut self, t: Millis) {
        self.max_time = Some(self.max_time.map_or(t, |m| m.max(t)));
    }

    /// Holds the watermark: assigned, waiting for its first event.
    pub fn holding(&self) -> bool {
        self.hold && self.max_time.is_none()
    }
}

/// A watermark that never moves back; `Millis::MIN` until it has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark(Millis);

impl Default for Watermark {
    fn default() -> Self {
        Watermark(Millis::MIN)
    }
}

impl Watermark {
    /// The current value (`Millis::MIN` before any).
    pub fn get(self) -> Millis {
        self.0
    }

    /// The value once there is one.
    pub fn value(self) -> Option<Millis> {
        (self.0 != Millis::MIN).then_some(self.0)
    }

    /// Moves to `w` if it is later; returns whether it moved.
    pub fn advance(&mut self, w: Millis) -> bool {
        if w > self.0 {
            self.0 = w;
            true
        } else {
            false
        }
    }

    /// The candidate of SPEC §2 over `clocks`: min over those with data of (max event time −
    /// `lateness`), or `None` while a partition holds it or none has data.
    pub fn candidate<'a>(
        clocks: impl Iterator<Item = &'a PartitionClock> + Clone,
        lateness: Millis,
    ) -> Option<Millis> {
        if clocks.clone().any(PartitionClock::holding) {
            return None;
        }
        let min_max = clocks.filter_map(|c| c.max_time).min()?;
        Some(min_max.saturating_sub(lateness))
    }
}
