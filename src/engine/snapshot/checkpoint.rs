//! Taking a checkpoint of a partition, and what completing or abandoning it does to the
//! bookkeeping (see [`crate::state`] for why the slots and generations make it safe).

use std::collections::VecDeque;

use super::codec::{encode_customer, encode_input, encode_part, encode_ticket};
use super::{other, part_id, ticket_id, Gone, CORE_VERSION};
use crate::engine::customer::Customer;
use crate::engine::partition::Partition;
use crate::engine::sched::What;
use crate::engine::ticket::Ticket;
use crate::state::codec::Writer;
use crate::state::{self, kind, Key, Manifest, StateRecord};
use crate::ts::Millis;
use crate::window::{PartRef, WindowKey};

/// What a checkpoint wrote, kept until it is complete (or abandoned).
#[derive(Debug)]
pub(super) enum Written {
    Ticket(u128, Vec<u8>, u8),
    Customer(u128, Vec<u8>, u8),
    Part(WindowKey, u8),
}

/// A checkpoint in flight: its records, its manifest, and what completing or abandoning it
/// does to the bookkeeping.
///
/// Taking one is a consistent cut of the partition at its input position, but the changed
/// tickets and customers are only **copied** then (a ticket is a 112-byte copy, a customer a
/// few more): they are encoded one at a time as their records are asked for
/// ([`Checkpoint::peek`], [`Checkpoint::pop`]), so the runtime spreads the encoding over its
/// loop iterations instead of stopping the input for it (issue 10: at 20,000 events/s, the
/// encoding of ~100k changed entities at once held the loop for 79–674 ms every interval).
/// The copies are the state at the cut whatever the engine does meanwhile.
#[derive(Debug)]
pub struct Checkpoint {
    /// The partition.
    pub partition: i32,
    /// Its generation.
    pub gen: u64,
    /// Records encoded and not taken yet, in order (at first: deletion markers, window
    /// parts, dedup segments, the core).
    ready: VecDeque<StateRecord>,
    /// Changed tickets as they were at the cut: key, copy, the slot their version goes to.
    tickets: std::vec::IntoIter<(u128, Ticket, u8)>,
    /// Changed customers as they were at the cut.
    customers: std::vec::IntoIter<(u128, Customer, u8)>,
    /// The manifest to write once every record is taken and they and every output derived
    /// before the checkpoint's position are acknowledged (its `bytes` sums the records taken).
    pub manifest: Manifest,
    written: Vec<Written>,
    /// Deletion markers written: the gone entity, and the marker's slot.
    deleted: Vec<(Gone, u8)>,
    /// Window parts whose deletion marker was written: key, old slot, marker slot.
    parts_deleted: Vec<(WindowKey, u8, u8)>,
    dedup: Vec<(u128, Millis)>,
    segments_after: Vec<(u64, u32, Millis)>,
    expired: Vec<(u64, u32, Millis)>,
    core_after: (u64, u32),
}

impl Checkpoint {
    /// The next record to write, encoded now if it is an entity's; `None` once every record
    /// is taken.
    pub fn peek(&mut self) -> Option<&StateRecord> {
        if self.ready.is_empty() {
            self.encode_next();
        }
        self.ready.front()
    }

    /// Takes the next record to write (see [`Checkpoint::peek`]).
    pub fn pop(&mut self) -> Option<StateRecord> {
        if self.ready.is_empty() {
            self.encode_next();
        }
        let r = self.ready.pop_front()?;
        self.manifest.bytes += r.bytes();
        Some(r)
    }

    /// Every record is taken: the manifest is final.
    pub fn is_drained(&self) -> bool {
        self.ready.is_empty() && self.tickets.len() == 0 && self.customers.len() == 0
    }

    /// Records still to take, at least (an entity makes one or more).
    pub fn records_left(&self) -> usize {
        self.ready.len() + self.tickets.len() + self.customers.len()
    }

    /// Takes every record left, encoding them all now.
    pub fn take_records(&mut self) -> Vec<StateRecord> {
        let mut out = Vec::with_capacity(self.records_left());
        while let Some(r) = self.pop() {
            out.push(r);
        }
        out
    }

    /// Encodes the next changed ticket or customer into `ready`.
    fn encode_next(&mut self) {
        if let Some((key, tk, slot)) = self.tickets.next() {
            let id = ticket_id(tk.customer(), tk.id());
            self.push_version(kind::TICKET, &id, slot, &encode_ticket(&tk));
            self.written.push(Written::Ticket(key, id, slot));
        } else if let Some((key, c, slot)) = self.customers.next() {
            let id = c.key.as_bytes().to_vec();
            self.push_version(kind::CUSTOMER, &id, slot, &encode_customer(&c));
            self.written.push(Written::Customer(key, id, slot));
        }
        if self.tickets.len() == 0 && self.customers.len() == 0 {
            // All encoded: free the copies now, not when the checkpoint completes.
            self.tickets = Vec::new().into_iter();
            self.customers = Vec::new().into_iter();
        }
    }

    /// Queues the records of an entity's new version.
    fn push_version(&mut self, kind: u8, id: &[u8], slot: u8, value: &[u8]) {
        self.ready
            .extend(state::entity_version(kind, slot, id, self.gen, Some(value)));
    }
}

/// What the runtime passes to a checkpoint besides the state.
#[derive(Debug, Clone)]
pub struct CheckpointMeta {
    /// Generation.
    pub gen: u64,
    /// Fingerprint of the result-shaping configuration.
    pub fingerprint: u64,
    /// Input partition count.
    pub input_partitions: i32,
    /// Next offset per input topic.
    pub positions: Vec<(String, i64)>,
    /// Last idle advance included.
    pub advance_seq: u64,
    /// Wall clock now.
    pub written_at: Millis,
}

impl Partition {
    /// Tracks changes from now on (the runtime takes checkpoints of this partition).
    pub fn track_changes(&mut self) {
        self.shard.log.enabled = true;
        self.core.windows.track_changes();
    }

    /// Whether anything changed since the last checkpoint.
    pub fn has_changes(&self) -> bool {
        let l = &self.shard.log;
        !(l.tickets.is_empty() && l.customers.is_empty() && l.gone.is_empty() && l.dedup.is_empty())
            || self.core.windows.has_touched()
    }

    fn encode_core(&self, segments: &[(u64, u32, Millis)]) -> Vec<u8> {
        let (core, shard) = (&self.core, &self.shard);
        let mut w = Writer::new();
        w.u64(CORE_VERSION);
        w.i64(core.watermark.get());
        w.opt_i64(shard.clock.max_time);
        w.i64(core.merged_through);
        w.i64(core.windows.closed_through());
        w.i64(shard.next_sweep);
        w.len(core.teams.len());
        for i in 0..core.teams.len() {
            w.str(core.teams.name(i as u32));
        }
        w.u64(shard.sched.last_seq());
        let mut held: Vec<_> = shard.sched.held_inputs().collect();
        held.sort_by_key(|i| i.seq);
        w.len(held.len());
        for item in held {
            let What::Input { customer, input } = &item.what else {
                continue;
            };
            w.i64(item.time);
            w.u64(item.seq);
            w.str(
                shard
                    .customers
                    .get(*customer)
                    .map_or("", |c| c.key.as_str()),
            );
            encode_input(&mut w, input);
        }
        w.len(segments.len());
        for (g, n, m) in segments {
            w.u64(*g);
            w.u64(u64::from(*n));
            w.i64(*m);
        }
        w.buf
    }

    /// Takes a checkpoint: the records of everything changed since the previous one, and the
    /// manifest to write after them.
    pub fn begin_checkpoint(&mut self, meta: &CheckpointMeta) -> Checkpoint {
        let gen = meta.gen;
        let mut records = Vec::new();
        let mut written = Vec::new();
        let shard = &mut self.shard;
        // Deletions first: a marker in the other slot — unless the key lives again. Then the
        // new incarnation adopts the durable slot of the old one *before* its version is
        // written below, so that version goes to the other slot and never overwrites the one
        // the latest complete checkpoint needs (a crash mid-checkpoint would lose it).
        let mut deleted = Vec::new();
        for g in std::mem::take(&mut shard.log.gone) {
            let live = match g.kind {
                kind::TICKET => shard.tickets.by_key_mut(g.key).map(|t| &mut t.ck),
                _ => shard.customers.by_key_mut(g.key).map(|c| &mut c.ck),
            };
            if let Some(ck) = live {
                if ck.slot == 0 {
                    ck.slot = g.slot;
                }
                continue;
            }
            let slot = other(g.slot);
            records.extend(state::entity_version(g.kind, slot, &g.id, gen, None));
            deleted.push((g, slot));
        }
        // Tickets and customers changed: copied now, encoded as they are asked for.
        let mut tickets = Vec::with_capacity(shard.log.tickets.len());
        let keys = std::mem::take(&mut shard.log.tickets);
        for (i, &key) in keys.iter().enumerate() {
            shard.tickets.prefetch_walk(&keys, i);
            let Some(tk) = shard.tickets.by_key_mut(key) else {
                continue;
            };
            tk.ck.touched = false;
            tickets.push((key, tk.clone(), other(tk.ck.slot)));
        }
        let mut customers = Vec::with_capacity(shard.log.customers.len());
        let keys = std::mem::take(&mut shard.log.customers);
        for (i, &key) in keys.iter().enumerate() {
            shard.customers.prefetch_walk(&keys, i);
            // Its after-sales state (boxed, copied below) once its slot is cached.
            if let Some(a) = keys
                .get(i + 4)
                .and_then(|&k| shard.customers.find(k))
                .and_then(|j| shard.customers.get(j))
                .and_then(|c| c.after.as_deref())
            {
                crate::engine::slab::prefetch(a);
            }
            let Some(c) = shard.customers.by_key_mut(key) else {
                continue;
            };
            c.ck.touched = false;
            customers.push((key, c.clone(), other(c.ck.slot)));
        }
        // Window parts changed, sealed or merged.
        let mut parts_deleted = Vec::new();
        for key in self.core.windows.take_touched() {
            let old = shard.log.part_slots.get(&key).copied().unwrap_or(0);
            let slot = other(old);
            let value = match self.core.windows.part(&key) {
                PartRef::Open(a) => Some(encode_part(None, a)),
                PartRef::Sealed(c) => Some(encode_part(Some(c.partial), &c.agg)),
                PartRef::Gone => None,
            };
            match value {
                Some(v) => {
                    records.extend(state::entity_version(
                        kind::WINDOW,
                        slot,
                        &part_id(&key),
                        gen,
                        Some(&v),
                    ));
                    written.push(Written::Part(key, slot));
                }
                None if old != 0 => {
                    records.extend(state::entity_version(
                        kind::WINDOW,
                        slot,
                        &part_id(&key),
                        gen,
                        None,
                    ));
                    parts_deleted.push((key, old, slot));
                }
                None => {}
            }
        }
        // The dedup memory: the ids remembered since, as a new segment; segments whose every
        // id is past the horizon at the watermark are dropped.
        let dedup = std::mem::take(&mut shard.log.dedup);
        let w = self.core.watermark.get();
        let horizon = self.core.cfg.engine.dedup_horizon.0;
        let (mut segments_after, expired): (Vec<_>, Vec<_>) = shard
            .log
            .segments
            .iter()
            .copied()
            .partition(|(_, _, m)| w <= m.saturating_add(horizon));
        if !dedup.is_empty() {
            let mut sw = Writer::new();
            sw.len(dedup.len());
            let mut max = Millis::MIN;
            for (id, t) in &dedup {
                sw.buf.extend_from_slice(&id.to_le_bytes());
                sw.i64(*t);
                max = max.max(*t);
            }
            let recs = state::chunks(&sw.buf, |i| Key::Dedup { gen, i }.bytes());
            segments_after.push((gen, recs.len() as u32, max));
            records.extend(recs);
        }
        // The core, whole.
        let core_bytes = self.encode_core(&segments_after);
        let core_recs = state::chunks(&core_bytes, |i| Key::Core { gen, i }.bytes());
        let core_after = (gen, core_recs.len() as u32);
        records.extend(core_recs);
        let manifest = Manifest {
            format: state::FORMAT_VERSION,
            fingerprint: meta.fingerprint,
            input_partitions: meta.input_partitions,
            partition: self.core.partition,
            gen,
            written_at: meta.written_at,
            positions: meta.positions.clone(),
            advance_seq: meta.advance_seq,
            core_chunks: core_after.1,
            dedup: segments_after.iter().map(|(g, n, _)| (*g, *n)).collect(),
            watermark: self.core.watermark.value(),
            tickets: self.shard.tickets.len() as u64,
            customers: self.shard.customers.len() as u64,
            window_parts: self.core.windows.open_aggregates() as u64,
            bytes: 0,
        };
        Checkpoint {
            partition: self.core.partition,
            gen,
            ready: records.into(),
            tickets: tickets.into_iter(),
            customers: customers.into_iter(),
            manifest,
            written,
            deleted,
            parts_deleted,
            dedup,
            segments_after,
            expired,
            core_after,
        }
    }

    /// The checkpoint is complete (its manifest is acknowledged): the versions it wrote are
    /// now the durable ones. Returns the tombstones for what it made obsolete.
    pub fn complete_checkpoint(&mut self, ck: Checkpoint) -> Vec<StateRecord> {
        let shard = &mut self.shard;
        let mut tomb = Vec::new();
        let t = |key: Vec<u8>| StateRecord { key, value: None };
        for w in ck.written {
            let kind = match w {
                Written::Ticket(..) => kind::TICKET,
                Written::Customer(..) => kind::CUSTOMER,
                Written::Part(..) => kind::WINDOW,
            };
            match w {
                Written::Ticket(key, id, slot) | Written::Customer(key, id, slot) => {
                    let live = if kind == kind::TICKET {
                        shard.tickets.by_key_mut(key).map(|t| &mut t.ck)
                    } else {
                        shard.customers.by_key_mut(key).map(|c| &mut c.ck)
                    };
                    match live {
                        Some(ckd) => ckd.slot = slot,
                        None => {
                            // Deleted after the checkpoint was taken: its durable version is
                            // the one just written; the deletion marker goes to the other slot.
                            match shard
                                .log
                                .gone
                                .iter_mut()
                                .find(|g| g.key == key && g.kind == kind)
                            {
                                Some(g) => g.slot = slot,
                                None => shard.log.gone.push(Gone {
                                    kind,
                                    key,
                                    id,
                                    slot,
                                }),
                            }
                        }
                    }
                }
                Written::Part(key, slot) => {
                    shard.log.part_slots.insert(key, slot);
                }
            }
        }
        // Deleted entities: both slots go, the older version first.
        for (g, marker) in ck.deleted {
            tomb.push(t(Key::Entity {
                kind: g.kind,
                slot: g.slot,
                i: 0,
                id: &g.id,
            }
            .bytes()));
            tomb.push(t(Key::Entity {
                kind: g.kind,
                slot: marker,
                i: 0,
                id: &g.id,
            }
            .bytes()));
        }
        for (key, old, marker) in ck.parts_deleted {
            let id = part_id(&key);
            tomb.push(t(Key::Entity {
                kind: kind::WINDOW,
                slot: old,
                i: 0,
                id: &id,
            }
            .bytes()));
            tomb.push(t(Key::Entity {
                kind: kind::WINDOW,
                slot: marker,
                i: 0,
                id: &id,
            }
            .bytes()));
            if shard.log.part_slots.get(&key) == Some(&old) {
                shard.log.part_slots.remove(&key);
            }
        }
        for (g, n, _) in ck.expired {
            for i in 0..n {
                tomb.push(t(Key::Dedup { gen: g, i }.bytes()));
            }
        }
        if let Some((g, n)) = shard.log.core.replace(ck.core_after) {
            for i in 0..n {
                tomb.push(t(Key::Core { gen: g, i }.bytes()));
            }
        }
        shard.log.segments = ck.segments_after;
        tomb
    }

    /// The checkpoint will never be complete (its records were not all acknowledged): what
    /// it wrote is written again by the next one. Its versions stay in the log, and a later
    /// complete checkpoint (a higher generation) would take them as valid: the slot of each
    /// must get a newer version or, if the entity is gone by then, a deletion marker.
    pub fn abandon_checkpoint(&mut self, ck: Checkpoint) {
        let shard = &mut self.shard;
        // Copies never encoded wrote nothing: the live entity is simply changed again (one
        // gone since has its deletion noted already, if it had a durable version).
        for (key, ..) in ck.tickets {
            if let Some(tk) = shard.tickets.by_key_mut(key) {
                shard.log.touch_ticket(key, tk);
            }
        }
        for (key, ..) in ck.customers {
            if let Some(c) = shard.customers.by_key_mut(key) {
                shard.log.touch_customer(c);
            }
        }
        for w in ck.written {
            match w {
                Written::Ticket(key, id, slot) => match shard.tickets.by_key_mut(key) {
                    Some(tk) => {
                        adopt_stray(&mut tk.ck, slot);
                        shard.log.touch_ticket(key, tk);
                    }
                    None => shard.log.cover(kind::TICKET, key, id, slot),
                },
                Written::Customer(key, id, slot) => match shard.customers.by_key_mut(key) {
                    Some(c) => {
                        adopt_stray(&mut c.ck, slot);
                        shard.log.touch_customer(c);
                    }
                    None => shard.log.cover(kind::CUSTOMER, key, id, slot),
                },
                Written::Part(key, slot) => {
                    // A part with no durable version: pretend one in the other slot, so the
                    // next checkpoint writes (a version or a deletion marker) into `slot`.
                    shard.log.part_slots.entry(key).or_insert(other(slot));
                    self.core.windows.touch(key);
                }
            }
        }
        for (g, _) in ck.deleted {
            shard.log.gone.push(g);
        }
        for (key, ..) in ck.parts_deleted {
            self.core.windows.touch(key);
        }
        let mut dedup = ck.dedup;
        dedup.append(&mut shard.log.dedup);
        shard.log.dedup = dedup;
    }
}

/// A live entity whose version an abandoned checkpoint wrote into `slot`: if it has no durable
/// version, pretend one in the other slot, so that whatever comes next — a new version, or a
/// deletion marker if it is evicted first — is written over the stray one in `slot`.
fn adopt_stray(ck: &mut super::Durable, slot: u8) {
    if ck.slot == 0 {
        ck.slot = other(slot);
    }
}
