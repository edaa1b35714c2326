//! The state keys of an event (its id's, its customer's, its ticket's), computed once and
//! ahead of the engine (on replay's other thread), and what the engine does with them: the
//! prefetch hints, and the lookups of the event being applied (issue 10: each key was hashed
//! again at every lookup).

use super::core::Core;
use super::partition::Shard;
use super::ticket::{text_key, ticket_key};
use crate::event::Event;
use crate::ts::Millis;

/// The state keys an event's lookups use: its id's, its customer's and its ticket's (if it
/// names one). Computed ahead, off the engine's thread, for [`super::Engine::prefetch_index`]
/// and for the event's lookups themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StateKeys {
    pub(super) id: u128,
    pub(super) customer: u128,
    pub(super) ticket: Option<u128>,
}

impl StateKeys {
    /// The keys of `ev`.
    pub fn of(ev: &Event<'_>) -> StateKeys {
        StateKeys {
            id: text_key(&ev.id),
            customer: text_key(&ev.customer),
            ticket: ev.body.ticket().map(|t| ticket_key(&ev.customer, t)),
        }
    }
}

impl Shard {
    /// See [`super::Engine::prefetch_index`].
    pub fn prefetch_index(&self, k: &StateKeys) {
        self.dedup.prefetch(k.id);
        self.customers.prefetch_index(k.customer);
        if let Some(t) = k.ticket {
            self.tickets.prefetch_index(t);
        }
    }

    /// See [`super::Engine::prefetch_state`].
    pub fn prefetch_state(&self, k: &StateKeys) {
        self.customers.prefetch_slot(k.customer);
        if let Some(t) = k.ticket {
            self.tickets.prefetch_slot(t);
        }
    }

    /// The slot of the ticket `id` of `customer` that the event being applied names, if it
    /// exists and has not expired ([`Self::live_ticket_keyed`]).
    pub fn ev_ticket(&mut self, core: &mut Core, customer: &str, id: &str) -> Option<u32> {
        self.live_ticket_keyed(core, self.ev_ticket_key(customer, id))
    }

    /// The key of the ticket `id` of `customer`, which the event being applied names: the one
    /// computed ahead ([`StateKeys::ticket`]).
    pub fn ev_ticket_key(&self, customer: &str, id: &str) -> u128 {
        let key = self.ev.ticket.unwrap_or_else(|| ticket_key(customer, id));
        if cfg!(test) {
            assert_eq!(key, ticket_key(customer, id), "the event's ticket");
        }
        key
    }

    /// The slot of the customer `key` of the event being applied, created if needed; idle
    /// state past retention starts afresh. Its key is the one computed ahead.
    pub fn ev_customer(&mut self, core: &mut Core, key: &str, t: Millis) -> u32 {
        if cfg!(test) {
            assert_eq!(self.ev.customer, text_key(key), "the event's customer");
        }
        self.customer_keyed(core, key, self.ev.customer, t, true)
    }
}
