//! Event-time progress (SPEC §2): what each partition has applied, and the watermark derived
//! from it.
//!
//! Each partition keeps its [`PartitionClock`] (the largest event time applied from it) and
//! its [`Watermark`]: that time minus the allowed lateness, never moving back, and in live
//! mode also moved forward by idle advances.

use crate::ts::Millis;

/// One partition's event-time progress.
#[derive(Debug, Clone, Default)]
pub struct PartitionClock {
    /// Largest event time of an event applied from this partition.
    pub max_time: Option<Millis>,
}

impl PartitionClock {
    /// Notes an applied event's time.
    pub fn observe(&mut self, t: Millis) {
        self.max_time = Some(self.max_time.map_or(t, |m| m.max(t)));
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
}
