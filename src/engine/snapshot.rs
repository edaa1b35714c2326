//! Checkpoint bookkeeping of a partition's state (SPEC §7): which entities changed since the
//! last checkpoint, which were deleted, which event ids the dedup memory gained. The
//! encoding of a checkpoint and its restore build on this (`crate::state`).

use super::customer::Customer;
use super::ticket::{text_key, Ticket};
use crate::ts::Millis;

/// Checkpoint bookkeeping of one entity (ticket, customer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    /// Which of its two state-topic slots holds its version in the latest complete checkpoint
    /// (0: none yet, 1 or 2).
    pub slot: u8,
    /// Changed since the last checkpoint (it is in the log's list).
    pub touched: bool,
}

/// An entity deleted since the last checkpoint that has a durable version to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// `b't'` ticket, `b'c'` customer.
    pub kind: u8,
    /// Its state key.
    pub key: u128,
    /// Its entity id bytes (customer, or customer 0xff ticket).
    pub id: Vec<u8>,
    /// The slot of its durable version.
    pub slot: u8,
}

/// What changed in a partition's state since the last checkpoint.
#[derive(Debug, Default)]
pub struct ShardLog {
    /// Changes are tracked (checkpoints are taken).
    pub enabled: bool,
    /// Tickets changed, by key (each at most once).
    pub tickets: Vec<u128>,
    /// Customers changed, by key (each at most once).
    pub customers: Vec<u128>,
    /// Entities deleted that have a durable version.
    pub gone: Vec<Gone>,
    /// Event ids remembered (or re-remembered) by the dedup memory, with their times.
    pub dedup: Vec<(u128, Millis)>,
}

impl ShardLog {
    /// Notes a ticket changed.
    pub fn touch_ticket(&mut self, key: u128, t: &mut Ticket) {
        if self.enabled && !t.ck.touched {
            t.ck.touched = true;
            self.tickets.push(key);
        }
    }

    /// Notes a customer changed.
    pub fn touch_customer(&mut self, c: &mut Customer) {
        if self.enabled && !c.ck.touched {
            c.ck.touched = true;
            self.customers.push(text_key(&c.key));
        }
    }

    /// Notes a ticket deleted.
    pub fn ticket_gone(&mut self, key: u128, t: &Ticket) {
        if self.enabled && t.ck.slot != 0 {
            let mut id = t.customer.as_bytes().to_vec();
            id.push(0xff);
            id.extend_from_slice(t.id.as_bytes());
            self.gone.push(Gone {
                kind: b't',
                key,
                id,
                slot: t.ck.slot,
            });
        }
    }

    /// Notes a customer deleted.
    pub fn customer_gone(&mut self, key: u128, c: &Customer) {
        if self.enabled && c.ck.slot != 0 {
            self.gone.push(Gone {
                kind: b'c',
                key,
                id: c.key.as_bytes().to_vec(),
                slot: c.ck.slot,
            });
        }
    }

    /// Notes an event id remembered.
    pub fn dedup_added(&mut self, id: u128, time: Millis) {
        if self.enabled {
            self.dedup.push((id, time));
        }
    }
}
