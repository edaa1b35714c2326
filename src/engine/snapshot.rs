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

use std::collections::VecDeque;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use super::customer::{Cohort, Customer, PendingRisk, RecoveryCase, RiskScore};
use super::partition::Partition;
use super::sched::{Input, What, INPUT, TIMER};
use super::ticket::{text_key, ticket_key, Clock, ClockState, Ticket};
use crate::event::{Category, Channel, Priority};
use crate::kpi::{Dims, Signal, SlaKind, Trigger};
use crate::state::codec::{CodecError, Reader, Writer};
use crate::state::{self, kind, Key, Manifest, Restored, StateError, StateRecord};
use crate::ts::Millis;
use crate::window::{Aggregate, PartRef, WindowKey};

type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Version of the core encoding inside [`state::FORMAT_VERSION`].
const CORE_VERSION: u64 = 1;

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
fn other(slot: u8) -> u8 {
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
                id: ticket_id(&t.customer, &t.id),
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

    /// Notes an event id remembered.
    pub fn dedup_added(&mut self, id: u128, time: Millis) {
        if self.enabled {
            self.dedup.push((id, time));
        }
    }
}

/// The entity id of a ticket: customer, 0xff, ticket id.
fn ticket_id(customer: &str, ticket: &str) -> Vec<u8> {
    let mut id = customer.as_bytes().to_vec();
    id.push(0xff);
    id.extend_from_slice(ticket.as_bytes());
    id
}

/// The customer and ticket of a ticket's entity id.
fn split_ticket_id(id: &[u8]) -> Result<(&str, &str), CodecError> {
    let at = id
        .iter()
        .position(|b| *b == 0xff)
        .ok_or_else(|| CodecError("ticket id without separator".into()))?;
    let s = |b| std::str::from_utf8(b).map_err(|_| CodecError("ticket id not UTF-8".into()));
    Ok((s(&id[..at])?, s(&id[at + 1..])?))
}

/// The entity id of a window part.
fn part_id(k: &WindowKey) -> Vec<u8> {
    let mut id = Vec::with_capacity(26);
    id.push(k.size_idx);
    id.extend_from_slice(&k.start.to_be_bytes());
    id.push(k.group_idx);
    for v in k.values {
        id.extend_from_slice(&v.to_be_bytes());
    }
    id
}

fn parse_part_id(id: &[u8]) -> Result<WindowKey, CodecError> {
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

/// What a checkpoint wrote, kept until it is complete (or abandoned).
#[derive(Debug)]
enum Written {
    Ticket(u128, Vec<u8>, u8),
    Customer(u128, Vec<u8>, u8),
    Part(WindowKey, u8),
}

/// A checkpoint in flight: its records, its manifest, and what completing or abandoning it
/// does to the bookkeeping.
#[derive(Debug)]
pub struct Checkpoint {
    /// The partition.
    pub partition: i32,
    /// Its generation.
    pub gen: u64,
    /// The records to write first.
    pub records: Vec<StateRecord>,
    /// The manifest to write once they and every output derived before the checkpoint's
    /// position are acknowledged.
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

fn dims_of(tk: &Ticket) -> (u32, u8, u8, u8) {
    let d = tk.dims;
    (
        d.team.unwrap_or(0),
        d.channel.map_or(0, |c| c.index() as u8),
        d.priority.map_or(0, |c| c.index() as u8),
        d.category.map_or(0, |c| c.index() as u8),
    )
}

fn encode_clock(w: &mut Writer, c: &Clock) {
    w.i64(c.due);
    w.u8(c.state.code());
    w.u64(c.seq);
    w.u64(u64::from(c.team_at_due));
    w.bool(c.late5);
}

fn decode_clock(r: &mut Reader<'_>) -> Result<Clock, CodecError> {
    Ok(Clock {
        due: r.i64()?,
        state: ClockState::from_code(r.u8()?).ok_or_else(|| CodecError("clock state".into()))?,
        seq: r.u64()?,
        team_at_due: r.u32()?,
        late5: r.bool()?,
    })
}

fn encode_ticket(tk: &Ticket) -> Vec<u8> {
    let mut w = Writer::new();
    let (team, ch, pr, ca) = dims_of(tk);
    w.u64(u64::from(team));
    w.u8(ch);
    w.u8(pr);
    w.u8(ca);
    w.i64(tk.created);
    w.i64(tk.last_event);
    w.u64(u64::from(tk.public_agent_messages));
    w.u8(tk.first_response_seen as u8 | (tk.solved_once as u8) << 1 | (tk.open as u8) << 2);
    encode_clock(&mut w, &tk.first_response);
    encode_clock(&mut w, &tk.resolution);
    w.buf
}

fn decode_ticket(customer: &str, id: &str, b: &[u8]) -> Result<Ticket, CodecError> {
    let mut r = Reader::new(b);
    let team = r.u32()?;
    let enm = |v: u8, what: &str| CodecError(format!("{what} {v}"));
    let ch = r.u8()?;
    let pr = r.u8()?;
    let ca = r.u8()?;
    let dims = Dims {
        team: Some(team),
        channel: Some(Channel::from_index(u32::from(ch)).ok_or_else(|| enm(ch, "channel"))?),
        priority: Some(Priority::from_index(u32::from(pr)).ok_or_else(|| enm(pr, "priority"))?),
        category: Some(Category::from_index(u32::from(ca)).ok_or_else(|| enm(ca, "category"))?),
    };
    let created = r.i64()?;
    let last_event = r.i64()?;
    let public_agent_messages = r.u32()?;
    let flags = r.u8()?;
    Ok(Ticket {
        id: id.into(),
        customer: customer.into(),
        dims,
        created,
        last_event,
        public_agent_messages,
        first_response_seen: flags & 1 != 0,
        solved_once: flags & 2 != 0,
        open: flags & 4 != 0,
        first_response: decode_clock(&mut r)?,
        resolution: decode_clock(&mut r)?,
        ck: Durable::default(),
    })
}

fn trigger_code(t: Trigger) -> u8 {
    match t {
        Trigger::Csat => 0,
        Trigger::Nps => 1,
    }
}

fn trigger_of(c: u8) -> Result<Trigger, CodecError> {
    match c {
        0 => Ok(Trigger::Csat),
        1 => Ok(Trigger::Nps),
        _ => Err(CodecError(format!("trigger {c}"))),
    }
}

fn encode_customer(c: &Customer) -> Vec<u8> {
    let mut w = Writer::new();
    w.i64(c.last_event);
    w.f64(c.risk.score);
    w.opt_i64(c.risk.tau);
    let mut mask = 0u64;
    for (i, v) in c.risk.sums.iter().enumerate() {
        if *v != 0.0 {
            mask |= 1 << i;
        }
    }
    w.u64(mask);
    for v in c.risk.sums.iter().filter(|v| **v != 0.0) {
        w.f64(*v);
    }
    w.opt_i64(c.last_risk);
    w.len(c.pending_risks.len());
    for p in &c.pending_risks {
        w.u64(p.id);
        w.i64(p.time);
        w.u64(p.seq);
    }
    match &c.recovery {
        None => w.u8(0),
        Some(rc) => {
            w.u8(1);
            w.u64(rc.id);
            w.i64(rc.opened);
            w.i64(rc.due);
            w.u8(trigger_code(rc.trigger));
            w.u64(rc.seq);
        }
    }
    w.len(c.created.len());
    for t in &c.created {
        w.i64(*t);
    }
    w.len(c.cohorts.len());
    for k in &c.cohorts {
        w.u64(k.id);
        w.str(&k.ticket);
        w.i64(k.solved);
        w.u64(k.seq);
    }
    w.len(c.csat_by_ticket.len());
    for (t, s) in &c.csat_by_ticket {
        w.str(t);
        w.u8(*s);
    }
    w.u64(c.next_id);
    w.buf
}

fn decode_customer(key: &str, b: &[u8]) -> Result<Customer, CodecError> {
    let mut r = Reader::new(b);
    let mut c = Customer::new(key, r.i64()?);
    let mut risk = RiskScore {
        score: r.f64()?,
        tau: r.opt_i64()?,
        ..RiskScore::default()
    };
    let mask = r.u64()?;
    for i in 0..Signal::ALL.len() {
        if mask & (1 << i) != 0 {
            risk.sums[i] = r.f64()?;
        }
    }
    c.risk = risk;
    c.last_risk = r.opt_i64()?;
    for _ in 0..r.len()? {
        c.pending_risks.push(PendingRisk {
            id: r.u64()?,
            time: r.i64()?,
            seq: r.u64()?,
        });
    }
    if r.bool()? {
        c.recovery = Some(RecoveryCase {
            id: r.u64()?,
            opened: r.i64()?,
            due: r.i64()?,
            trigger: trigger_of(r.u8()?)?,
            seq: r.u64()?,
        });
    }
    let n = r.len()?;
    c.created = VecDeque::with_capacity(n);
    for _ in 0..n {
        c.created.push_back(r.i64()?);
    }
    for _ in 0..r.len()? {
        c.cohorts.push(Cohort {
            id: r.u64()?,
            ticket: r.str()?.into(),
            solved: r.i64()?,
            seq: r.u64()?,
        });
    }
    for _ in 0..r.len()? {
        c.csat_by_ticket.push((r.str()?.into(), r.u8()?));
    }
    c.next_id = r.u64()?;
    Ok(c)
}

fn encode_input(w: &mut Writer, i: &Input) {
    match i {
        Input::Csat {
            score,
            ticket,
            known,
        } => {
            w.u8(0);
            w.u8(*score);
            w.opt_str(ticket.as_deref());
            w.bool(*known);
        }
        Input::Nps(s) => {
            w.u8(1);
            w.u8(*s);
        }
        Input::Ces(s) => {
            w.u8(2);
            w.u8(*s);
        }
        Input::Reopen => w.u8(3),
        Input::Escalation => w.u8(4),
        Input::TicketCreated => w.u8(5),
        Input::FirstSolve(t) => {
            w.u8(6);
            w.str(t);
        }
        Input::Return => w.u8(7),
        Input::WarrantyClaim => w.u8(8),
        Input::Churn => w.u8(9),
        Input::Order => w.u8(10),
        Input::Contact => w.u8(11),
        Input::SlaBreach => w.u8(12),
    }
}

fn decode_input(r: &mut Reader<'_>) -> Result<Input, CodecError> {
    Ok(match r.u8()? {
        0 => Input::Csat {
            score: r.u8()?,
            ticket: r.opt_str()?.map(Into::into),
            known: r.bool()?,
        },
        1 => Input::Nps(r.u8()?),
        2 => Input::Ces(r.u8()?),
        3 => Input::Reopen,
        4 => Input::Escalation,
        5 => Input::TicketCreated,
        6 => Input::FirstSolve(r.str()?.into()),
        7 => Input::Return,
        8 => Input::WarrantyClaim,
        9 => Input::Churn,
        10 => Input::Order,
        11 => Input::Contact,
        12 => Input::SlaBreach,
        t => return Err(CodecError(format!("after-sales input tag {t}"))),
    })
}

fn encode_part(sealed: Option<bool>, agg: &Aggregate) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(match sealed {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    agg.encode(&mut w);
    w.buf
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
            w.str(shard.customers.get(*customer).map_or("", |c| &c.key));
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
        // Tickets and customers changed.
        for key in std::mem::take(&mut shard.log.tickets) {
            let Some(tk) = shard
                .ticket_ids
                .get(&key)
                .and_then(|i| shard.tickets.get_mut(*i))
            else {
                continue;
            };
            tk.ck.touched = false;
            let slot = other(tk.ck.slot);
            let id = ticket_id(&tk.customer, &tk.id);
            records.extend(state::entity_version(
                kind::TICKET,
                slot,
                &id,
                gen,
                Some(&encode_ticket(tk)),
            ));
            written.push(Written::Ticket(key, id, slot));
        }
        for key in std::mem::take(&mut shard.log.customers) {
            let Some(c) = shard
                .customer_ids
                .get(&key)
                .and_then(|i| shard.customers.get_mut(*i))
            else {
                continue;
            };
            c.ck.touched = false;
            let slot = other(c.ck.slot);
            let id = c.key.as_bytes().to_vec();
            records.extend(state::entity_version(
                kind::CUSTOMER,
                slot,
                &id,
                gen,
                Some(&encode_customer(c)),
            ));
            written.push(Written::Customer(key, id, slot));
        }
        // Deletions: a marker in the other slot (unless the key lives again: the new
        // incarnation's version supersedes, and it must not overwrite the durable slot).
        let mut deleted = Vec::new();
        for g in std::mem::take(&mut shard.log.gone) {
            let live = match g.kind {
                kind::TICKET => shard
                    .ticket_ids
                    .get(&g.key)
                    .and_then(|i| shard.tickets.get_mut(*i))
                    .map(|t| &mut t.ck),
                _ => shard
                    .customer_ids
                    .get(&g.key)
                    .and_then(|i| shard.customers.get_mut(*i))
                    .map(|c| &mut c.ck),
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
        let bytes = records
            .iter()
            .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>() as u64;
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
            bytes,
        };
        Checkpoint {
            partition: self.core.partition,
            gen,
            records,
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
                        shard
                            .ticket_ids
                            .get(&key)
                            .and_then(|i| shard.tickets.get_mut(*i))
                            .map(|t| &mut t.ck)
                    } else {
                        shard
                            .customer_ids
                            .get(&key)
                            .and_then(|i| shard.customers.get_mut(*i))
                            .map(|c| &mut c.ck)
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
    /// it wrote is written again by the next one.
    pub fn abandon_checkpoint(&mut self, ck: Checkpoint) {
        let shard = &mut self.shard;
        for w in ck.written {
            match w {
                Written::Ticket(key, ..) => {
                    if let Some(tk) = shard
                        .ticket_ids
                        .get(&key)
                        .and_then(|i| shard.tickets.get_mut(*i))
                    {
                        shard.log.touch_ticket(key, tk);
                    }
                }
                Written::Customer(key, ..) => {
                    if let Some(c) = shard
                        .customer_ids
                        .get(&key)
                        .and_then(|i| shard.customers.get_mut(*i))
                    {
                        shard.log.touch_customer(c);
                    }
                }
                Written::Part(key, _) => self.core.windows.touch(key),
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

    /// Rebuilds this (fresh) partition from a restored checkpoint: entities, core, dedup
    /// memory, and the timers of every entity in the order they were set.
    pub fn restore(&mut self, r: &Restored) -> Result<(), StateError> {
        let cfg = std::sync::Arc::clone(&self.core.cfg);
        let (core, shard) = (&mut self.core, &mut self.shard);
        // Core.
        let mut c = Reader::new(&r.core);
        let v = c.u64()?;
        if v != CORE_VERSION {
            return Err(CodecError(format!("core version {v}")).into());
        }
        let wm = c.i64()?;
        core.watermark.advance(wm);
        shard.clock.max_time = c.opt_i64()?;
        core.merged_through = c.i64()?;
        core.windows.set_closed_through(c.i64()?);
        shard.next_sweep = c.i64()?;
        let n = c.len()?;
        let mut teams = super::Interner::default();
        for _ in 0..n {
            teams.intern(c.str()?);
        }
        core.teams = teams;
        let last_seq = c.u64()?;
        let n = c.len()?;
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let time = c.i64()?;
            let seq = c.u64()?;
            let customer = c.str()?.to_string();
            held.push((time, seq, customer, decode_input(&mut c)?));
        }
        let n = c.len()?;
        let mut segments = Vec::with_capacity(n);
        for _ in 0..n {
            segments.push((c.u64()?, c.u32()?, c.i64()?));
        }
        // Entities.
        let signals = &cfg.signals;
        for e in &r.entities {
            match e.kind {
                kind::TICKET => {
                    let (customer, id) = split_ticket_id(&e.id)?;
                    let mut tk = decode_ticket(customer, id, &e.payload)?;
                    tk.ck.slot = e.slot;
                    let key = ticket_key(customer, id);
                    let clocks = [tk.first_response, tk.resolution];
                    let (idx, generation) = shard.tickets.insert(tk);
                    shard.ticket_ids.insert(key, idx);
                    for (kind, c) in SlaKind::ALL.into_iter().zip(clocks) {
                        if c.state == ClockState::Running {
                            let what = What::Sla {
                                ticket: idx,
                                generation,
                                kind,
                            };
                            shard.sched.push_restored(c.due, TIMER, c.seq, what);
                        }
                    }
                }
                kind::CUSTOMER => {
                    let key =
                        std::str::from_utf8(&e.id).map_err(|_| CodecError("customer id".into()))?;
                    let mut cu = decode_customer(key, &e.payload)?;
                    cu.ck.slot = e.slot;
                    let (idx, _) = shard.customers.insert(cu);
                    shard.customer_ids.insert(text_key(key), idx);
                    let mut timers: Vec<(Millis, u64, What)> = Vec::new();
                    if let Some(cu) = shard.customers.get(idx) {
                        if let Some(rc) = &cu.recovery {
                            timers.push((
                                rc.due,
                                rc.seq,
                                What::RecoveryDue {
                                    customer: idx,
                                    case: rc.id,
                                },
                            ));
                        }
                        for p in &cu.pending_risks {
                            let due = p.time.saturating_add(signals.effectiveness_horizon.0);
                            timers.push((
                                due,
                                p.seq,
                                What::RiskExpiry {
                                    customer: idx,
                                    risk: p.id,
                                },
                            ));
                        }
                        for k in &cu.cohorts {
                            let due = k.solved.saturating_add(signals.repurchase_horizon.0);
                            timers.push((
                                due,
                                k.seq,
                                What::CohortExpiry {
                                    customer: idx,
                                    cohort: k.id,
                                },
                            ));
                        }
                    }
                    for (due, seq, what) in timers {
                        shard.sched.push_restored(due, TIMER, seq, what);
                    }
                }
                kind::WINDOW => {
                    let key = parse_part_id(&e.id)?;
                    let mut rd = Reader::new(&e.payload);
                    let sealed = match rd.u8()? {
                        0 => None,
                        1 => Some(false),
                        2 => Some(true),
                        t => return Err(CodecError(format!("window part state {t}")).into()),
                    };
                    let agg = Aggregate::decode(&mut rd)?;
                    core.windows.restore_part(key, agg, sealed);
                    shard.log.part_slots.insert(key, e.slot);
                }
                _ => {}
            }
        }
        // Held inputs refer to their customer's slot.
        for (time, seq, customer, input) in held {
            let Some(&idx) = shard.customer_ids.get(&text_key(&customer)) else {
                return Err(StateError::Missing {
                    partition: core.partition,
                    gen: r.manifest.gen,
                    what: format!("customer {customer:?} of a held input"),
                });
            };
            if let Some(cu) = shard.customers.get_mut(idx) {
                cu.held += 1;
            }
            shard.sched.push_restored(
                time,
                INPUT,
                seq,
                What::Input {
                    customer: idx,
                    input,
                },
            );
        }
        shard.sched.set_last_seq(last_seq);
        // Dedup memory, oldest segment first (a later entry wins).
        for seg in &r.dedup {
            let mut rd = Reader::new(seg);
            let n = rd.len()?;
            for _ in 0..n {
                let b = rd.remaining();
                if b.len() < 16 {
                    return Err(CodecError("dedup entry".into()).into());
                }
                let mut id = [0u8; 16];
                id.copy_from_slice(&b[..16]);
                rd = Reader::new(&b[16..]);
                let t = rd.i64()?;
                shard.dedup.insert(u128::from_le_bytes(id), t);
            }
        }
        shard.log.segments = segments;
        shard.log.core = Some((r.manifest.gen, r.manifest.core_chunks));
        self.recount_gauges();
        Ok(())
    }
}
