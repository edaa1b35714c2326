//! Per-ticket state (SPEC §3): dimensions, SLA clocks, public agent messages, solves.
//!
//! A ticket belongs to the customer that created it and is identified by (customer, ticket
//! id) (SPEC §2): see [`ticket_key`].

use crate::kpi::{Dims, SlaKind};
use crate::ts::Millis;

/// Where an SLA clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Still running: the customer is waiting; its timer reports a breach at the due.
    Running,
    /// Stopped at or before its due.
    Achieved,
    /// Breached: the timer fired with the clock running, or it stopped after its due.
    Breached,
}

impl ClockState {
    /// The state's code in checkpoints.
    pub fn code(self) -> u8 {
        match self {
            ClockState::Running => 0,
            ClockState::Achieved => 1,
            ClockState::Breached => 2,
        }
    }

    /// The state of a checkpoint code.
    pub fn from_code(c: u8) -> Option<ClockState> {
        Some(match c {
            0 => ClockState::Running,
            1 => ClockState::Achieved,
            2 => ClockState::Breached,
            _ => return None,
        })
    }
}

/// One SLA clock of a ticket.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// created + target(priority).
    pub due: Millis,
    /// Where it stands.
    pub state: ClockState,
    /// The scheduler sequence number of its timer (ties fire in the order set, also after a
    /// restore).
    pub seq: u64,
    /// The ticket's team as it was at the due: after its events with time ≤ due (in arrival
    /// order) and before any with a later time (SPEC §3: a breach takes these dimensions).
    pub team_at_due: u32,
    /// The due was already behind the watermark when the ticket was created (a late
    /// `ticket.created`): its breach is a late after-sales input, not applied (SPEC §5).
    pub late5: bool,
}

/// The state of one ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The customer that created it (its owner) followed by the ticket id, in one string,
    /// inline up to 24 bytes (memory, issue 10): [`Ticket::customer`], [`Ticket::id`].
    pub(super) names: compact_str::CompactString,
    /// Where the ticket id starts in `names`.
    pub(super) split: u32,
    /// Its dimensions now (team changes with escalations).
    pub dims: Dims,
    /// `ticket.created` time.
    pub created: Millis,
    /// Time of its latest event (retention).
    pub last_event: Millis,
    /// Public agent messages so far (FCR needs only whether it is at most 1; the count
    /// saturates at 65,535 so that a ticket fits 112 bytes).
    pub public_agent_messages: u16,
    /// A public agent message was seen (first response measured).
    pub first_response_seen: bool,
    /// Solved at least once (first solve measured).
    pub solved_once: bool,
    /// Not currently solved.
    pub open: bool,
    /// The first-response SLA clock.
    pub first_response: Clock,
    /// The resolution SLA clock.
    pub resolution: Clock,
    /// Checkpoint bookkeeping (see `engine::snapshot`).
    pub ck: super::snapshot::Durable,
}

impl Ticket {
    /// The names of a ticket `id` of `customer` (for [`Ticket`]'s `names` and `split`).
    pub fn names(customer: &str, id: &str) -> (compact_str::CompactString, u32) {
        let mut s = compact_str::CompactString::with_capacity(customer.len() + id.len());
        s.push_str(customer);
        s.push_str(id);
        (s, customer.len() as u32)
    }

    /// The ticket id.
    pub fn id(&self) -> &str {
        self.names.get(self.split as usize..).unwrap_or_default()
    }

    /// The customer that created it (its owner).
    pub fn customer(&self) -> &str {
        self.names.get(..self.split as usize).unwrap_or_default()
    }
}

/// What a ticket contributes to the current-state gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contribution {
    /// Counted in `cxstream_open_tickets`.
    pub open: bool,
    /// Open, first-response SLA breached, still no public agent reply.
    pub first_response_breached_waiting: bool,
    /// Open (not solved) with the resolution SLA breached.
    pub resolution_breached_open: bool,
}

/// The state key of a ticket: a 128-bit hash of (customer, ticket id), unambiguous (0xff
/// never occurs in UTF-8) and stable across processes (xxh3).
pub fn ticket_key(customer: &str, ticket: &str) -> u128 {
    // XXH3 of the bytes customer, 0xff, ticket. In one call from a buffer on the stack when
    // they fit (the usual ids); streamed otherwise — the same digest either way.
    let (c, t) = (customer.as_bytes(), ticket.as_bytes());
    let mut buf = [0u8; 128];
    if let Some(b) = buf.get_mut(..c.len() + 1 + t.len()) {
        b[..c.len()].copy_from_slice(c);
        b[c.len()] = 0xff;
        b[c.len() + 1..].copy_from_slice(t);
        return xxhash_rust::xxh3::xxh3_128(b);
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(c);
    h.update(&[0xff]);
    h.update(t);
    h.digest128()
}

/// The state key of a customer (or of an event id in the dedup memory).
pub fn text_key(s: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(s.as_bytes())
}

impl Ticket {
    /// One of its clocks.
    pub fn clock_mut(&mut self, kind: SlaKind) -> &mut Clock {
        match kind {
            SlaKind::FirstResponse => &mut self.first_response,
            SlaKind::Resolution => &mut self.resolution,
        }
    }

    /// One of its clocks.
    pub fn clock(&self, kind: SlaKind) -> &Clock {
        match kind {
            SlaKind::FirstResponse => &self.first_response,
            SlaKind::Resolution => &self.resolution,
        }
    }

    /// Its contribution to the current-state gauges.
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
    /// `open_retention` while open, and never while an SLA clock is running.
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
            && self.first_response.state != ClockState::Running
            && self.resolution.state != ClockState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is the XXH3 of customer, 0xff, ticket, whether hashed in one call or
    /// streamed: checkpoints of earlier versions keep their keys.
    #[test]
    fn ticket_keys_are_the_streamed_digest_at_every_length() {
        for (cl, tl) in [
            (0, 0),
            (1, 1),
            (8, 11),
            (63, 64),
            (64, 63),
            (100, 200),
            (400, 512),
        ] {
            let (c, t) = ("c".repeat(cl), "té".repeat(tl / 2));
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(c.as_bytes());
            h.update(&[0xff]);
            h.update(t.as_bytes());
            assert_eq!(ticket_key(&c, &t), h.digest128(), "{cl} {tl}");
        }
    }

    /// Memory (issue 10): a ticket is held while it is open or within retention; its owner and
    /// id share one allocation.
    #[test]
    fn a_ticket_stays_compact_and_keeps_its_names() {
        assert!(
            std::mem::size_of::<Ticket>() <= 112,
            "{}",
            std::mem::size_of::<Ticket>()
        );
        let (names, split) = Ticket::names("c0000001", "t0000000001");
        assert_eq!(&names[..split as usize], "c0000001");
        assert_eq!(&names[split as usize..], "t0000000001");
    }
}
