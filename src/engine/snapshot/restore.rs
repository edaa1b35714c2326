//! Rebuilding a partition from a restored checkpoint: entities, core, dedup memory, and the
//! timers of every entity in the order they were set.

use super::codec::{decode_customer, decode_input, decode_ticket};
use super::{parse_part_id, split_ticket_id, CORE_VERSION};
use crate::engine::partition::Partition;
use crate::engine::sched::{What, INPUT, TIMER};
use crate::engine::ticket::{text_key, ticket_key, ClockState};
use crate::state::codec::{CodecError, Reader};
use crate::state::{kind, Restored, StateError};
use crate::ts::Millis;
use crate::window::Aggregate;

impl Partition {
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
        let mut teams = crate::engine::Interner::default();
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
                    let idx = shard.tickets.insert(key, tk);
                    for c in clocks {
                        if c.state == ClockState::Running {
                            let what = What::Sla { ticket: idx };
                            shard.sched.push_restored(c.due, TIMER, c.seq, what);
                        }
                    }
                }
                kind::CUSTOMER => {
                    let key =
                        std::str::from_utf8(&e.id).map_err(|_| CodecError("customer id".into()))?;
                    let mut cu = decode_customer(key, &e.payload)?;
                    cu.ck.slot = e.slot;
                    let idx = shard.customers.insert(text_key(key), cu);
                    let mut timers: Vec<(Millis, u64, What)> = Vec::new();
                    if let Some(cu) = shard.customers.get(idx) {
                        if let Some(rc) = &cu.after().recovery {
                            timers.push((
                                rc.due,
                                rc.seq,
                                What::RecoveryDue {
                                    customer: idx,
                                    case: rc.id,
                                },
                            ));
                        }
                        for p in &cu.after().pending_risks {
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
                        for k in &cu.after().cohorts {
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
            let Some(idx) = shard.customers.find(text_key(&customer)) else {
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
                    input: Box::new(input),
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
