//! Per-ticket state (SPEC §3): dimensions, SLA clocks, public agent messages, solves.

use crate::kpi::{Dims, SlaKind};
use crate::ts::Millis;

/// Where an SLA clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Still running: the customer is waiting.
    Running,
    /// Stopped after its due, before the watermark passed the due: the outcome is a breach,
    /// reported (at the due) when the timer fires.
    StoppedLate,
    Achieved,
    Breached,
}

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub due: Millis,
    pub state: ClockState,
}

impl Clock {
    /// The outcome is not decided yet (its timer still has work to do).
    pub fn pending(&self) -> bool {
        matches!(self.state, ClockState::Running | ClockState::StoppedLate)
    }
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: Box<str>,
    pub customer: Box<str>,
    pub dims: Dims,
    pub created: Millis,
    pub last_event: Millis,
    pub public_agent_messages: u32,
    pub first_response_seen: bool,
    pub solved_once: bool,
    /// Not currently solved.
    pub open: bool,
    pub first_response: Clock,
    pub resolution: Clock,
}

/// What a ticket contributes to the current-state gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contribution {
    pub open: bool,
    /// Open, first-response SLA breached, still no public agent reply.
    pub first_response_breached_waiting: bool,
    /// Open (not solved) with the resolution SLA breached.
    pub resolution_breached_open: bool,
}

impl Ticket {
    pub fn clock_mut(&mut self, kind: SlaKind) -> &mut Clock {
        match kind {
            SlaKind::FirstResponse => &mut self.first_response,
            SlaKind::Resolution => &mut self.resolution,
        }
    }

    pub fn clock(&self, kind: SlaKind) -> &Clock {
        match kind {
            SlaKind::FirstResponse => &self.first_response,
            SlaKind::Resolution => &self.resolution,
        }
    }

    pub fn contribution(&self) -> Contribution {
        Contribution {
            open: self.open,
            first_response_breached_waiting: self.open
                && !self.first_response_seen
                && self.first_response.state == ClockState::Breached,
            resolution_breached_open: self.open && self.resolution.state == ClockState::Breached,
        }
    }

    /// Ticket state is kept `solved_retention` after its last event once solved,
    /// `open_retention` while open, and never while an SLA outcome is pending.
    pub fn expired(
        &self,
        watermark: Millis,
        open_retention: Millis,
        solved_retention: Millis,
    ) -> bool {
        let keep = if self.open {
            open_retention
        } else {
            solved_retention
        };
        watermark > self.last_event.saturating_add(keep)
            && !self.first_response.pending()
            && !self.resolution.pending()
    }
}
