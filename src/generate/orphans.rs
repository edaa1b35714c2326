//! Orphan ticket events: `ticket.message`, `ticket.solved`, `ticket.reopened` and
//! `ticket.escalated` lines for tickets that are never created (ids from `t9000000001` up).
//!
//! They are valid events that the engine must count as orphans rather than act on; their
//! times are just behind the stream, like the other injected lines.

use rand::Rng;

use super::tables::{Team, AGENTS_PER_TEAM, FRONT_TEAMS};
use super::Generator;
use crate::event::{Author, EventType};

/// Orphan ticket numbers start above this one, far beyond real and invalid lines' numbers.
const FIRST_ORPHAN: u64 = 9_000_000_000;

impl Generator {
    /// Writes a ticket event for a ticket that never exists.
    pub(super) fn write_orphan(&mut self) {
        let t = self.inject_time();
        let slot = self.pick_slot();
        let cust = self.customers[slot as usize].no;
        let ticket = FIRST_ORPHAN + self.next_orphan;
        self.next_orphan += 1;
        let team = FRONT_TEAMS[self.rng.gen_range(0..4)];
        let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
        let ty = match self.rng.gen_range(0..20) {
            0..=9 => EventType::TicketMessage,
            10..=14 => EventType::TicketSolved,
            15..=16 => EventType::TicketReopened,
            _ => EventType::TicketEscalated,
        };
        self.begin(ty, t, cust);
        self.out.ticket(ticket);
        match ty {
            EventType::TicketMessage if self.chance(0.5) => {
                self.out.str("author", Author::Agent.as_str());
                self.out.agent(team, agent);
            }
            EventType::TicketMessage => self.out.str("author", Author::Customer.as_str()),
            EventType::TicketSolved => self.out.agent(team, agent),
            EventType::TicketReopened => {}
            _ => self.out.str("team", Team::Escalations.name()),
        }
        self.end();
    }
}
