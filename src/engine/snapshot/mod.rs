//! Checkpoints of a partition's state (SPEC §7): what changed since the last one, its
//! encoding as state-topic records ([`crate::state`] has the layout and why it is safe), and
//! the restore that rebuilds a partition — timers in the order they were set included — from
//! what a restore read back.
//!
//! A checkpoint is taken on the polling thread between batches, so it is a consistent cut at
//! the partition's input position. It is incremental: tickets, customers and window parts
//! changed since the previous checkpoint, deletions, the event ids the dedup memory gained,
//! and the partition's core (watermark, clock, team names, held after-sales inputs), which is
//! small and written whole. Timers are not written: every timer belongs to an entity that
//! records its due and sequence number, and a restore sets them again from there.
//!
//! ```text
//! mod.rs         what changed since the last checkpoint (the bookkeeping the engine keeps)
//! codec.rs       the encoding of tickets, customers, window parts and held inputs
//! checkpoint.rs  taking, completing and abandoning a checkpoint
//! restore.rs     rebuilding a partition from a restored checkpoint
//! ```

mod checkpoint;
mod codec;
mod restore;

pub use checkpoint::{Checkpoint, CheckpointMeta};

use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use super::customer::Customer;
use super::ticket::{text_key, Ticket};
use crate::state::codec::CodecError;
use crate::state::kind;
use crate::ts::Millis;
use crate::window::WindowKey;

type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Version of the core encoding inside [`state::FORMAT_VERSION`].
pub(super) const CORE_VERSION: u64 = 1;

/// Checkpoint bookkeeping of one entity (ticket, customer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    /// Which of its two state-topic slots holds its version in the latest complete checkpoint
    /// (0: none yet, 1 or 2).
    pub slot: u8,
    /// Changed since the last checkpoint (it is in the log's list).
    pub touched: bool,
}

/// The slot a new version goes to: not the one the latest complete checkpoint uses.
pub(super) fn other(slot: u8) -> u8 {
    if slot == 1 {
        2
    } else {
        1
    }
}

/// An entity deleted since the last checkpoint that has a durable version to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// [`kind`].
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
    /// Durable slot of each window part (parts are few; they carry no bookkeeping field).
    pub part_slots: FxMap<WindowKey, u8>,
    /// Live dedup segments of the latest complete checkpoint: generation, chunks, largest
    /// event time.
    pub segments: Vec<(u64, u32, Millis)>,
    /// Generation and chunk count of the latest complete checkpoint's core.
    pub core: Option<(u64, u32)>,
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
            self.gone.push(Gone {
                kind: kind::TICKET,
                key,
                id: ticket_id(t.customer(), t.id()),
                slot: t.ck.slot,
            });
        }
    }

    /// Notes a customer deleted.
    pub fn customer_gone(&mut self, key: u128, c: &Customer) {
        if self.enabled && c.ck.slot != 0 {
            self.gone.push(Gone {
                kind: kind::CUSTOMER,
                key,
                id: c.key.as_bytes().to_vec(),
                slot: c.ck.slot,
            });
        }
    }

    /// An abandoned checkpoint wrote a version of an entity into `slot`, and the entity is
    /// gone: the next checkpoint must write a deletion marker over it. Its deletion may be
    /// noted already (it had a durable version in the other slot); otherwise note one whose
    /// durable version is the other slot (a tombstone of a key that holds nothing is
    /// harmless).
    pub fn cover(&mut self, kind: u8, key: u128, id: Vec<u8>, slot: u8) {
        if !self.gone.iter().any(|g| g.kind == kind && g.key == key) {
            self.gone.push(Gone {
                kind,
                key,
                id,
                slot: other(slot),
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

/// The entity id of a ticket: customer, 0xff, ticket id.
pub(super) fn ticket_id(customer: &str, ticket: &str) -> Vec<u8> {
    let mut id = customer.as_bytes().to_vec();
    id.push(0xff);
    id.extend_from_slice(ticket.as_bytes());
    id
}

/// The customer and ticket of a ticket's entity id.
pub(super) fn split_ticket_id(id: &[u8]) -> Result<(&str, &str), CodecError> {
    let at = id
        .iter()
        .position(|b| *b == 0xff)
        .ok_or_else(|| CodecError("ticket id without separator".into()))?;
    let s = |b| std::str::from_utf8(b).map_err(|_| CodecError("ticket id not UTF-8".into()));
    Ok((s(&id[..at])?, s(&id[at + 1..])?))
}

/// The entity id of a window part.
pub(super) fn part_id(k: &WindowKey) -> Vec<u8> {
    let mut id = Vec::with_capacity(26);
    id.push(k.size_idx);
    id.extend_from_slice(&k.start.to_be_bytes());
    id.push(k.group_idx);
    for v in k.values {
        id.extend_from_slice(&v.to_be_bytes());
    }
    id
}

pub(super) fn parse_part_id(id: &[u8]) -> Result<WindowKey, CodecError> {
    if id.len() != 26 {
        return Err(CodecError("window part id length".into()));
    }
    let u32_at = |i: usize| u32::from_be_bytes([id[i], id[i + 1], id[i + 2], id[i + 3]]);
    let mut start = [0u8; 8];
    start.copy_from_slice(&id[1..9]);
    Ok(WindowKey {
        size_idx: id[0],
        start: i64::from_be_bytes(start),
        group_idx: id[9],
        values: [u32_at(10), u32_at(14), u32_at(18), u32_at(22)],
    })
}
