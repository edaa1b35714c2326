//! The encoding of a partition's entities in checkpoints: tickets, customers, window parts
//! and held after-sales inputs, with the codec of [`crate::state::codec`].

use super::Durable;
use crate::engine::customer::{AfterSales, Cohort, Customer, PendingRisk, RecoveryCase};
use crate::engine::sched::Input;
use crate::engine::ticket::{Clock, ClockState, Ticket};
use crate::event::{Category, Channel, Priority};
use crate::kpi::{Dims, Signal, Trigger};
use crate::state::codec::{CodecError, Reader, Writer};
use crate::window::Aggregate;

pub(super) fn dims_of(tk: &Ticket) -> (u32, u8, u8, u8) {
    let d = tk.dims;
    (
        d.team.unwrap_or(0),
        d.channel.map_or(0, |c| c.index() as u8),
        d.priority.map_or(0, |c| c.index() as u8),
        d.category.map_or(0, |c| c.index() as u8),
    )
}

pub(super) fn encode_clock(w: &mut Writer, c: &Clock) {
    w.i64(c.due);
    w.u8(c.state.code());
    w.u64(c.seq);
    w.u64(u64::from(c.team_at_due));
    w.bool(c.late5);
}

pub(super) fn decode_clock(r: &mut Reader<'_>) -> Result<Clock, CodecError> {
    Ok(Clock {
        due: r.i64()?,
        state: ClockState::from_code(r.u8()?).ok_or_else(|| CodecError("clock state".into()))?,
        seq: r.u64()?,
        team_at_due: r.u32()?,
        late5: r.bool()?,
    })
}

pub(super) fn encode_ticket(tk: &Ticket) -> Vec<u8> {
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

pub(super) fn decode_ticket(customer: &str, id: &str, b: &[u8]) -> Result<Ticket, CodecError> {
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
    let public_agent_messages = u16::try_from(r.u32()?).unwrap_or(u16::MAX);
    let flags = r.u8()?;
    let (names, split) = Ticket::names(customer, id);
    Ok(Ticket {
        names,
        split,
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

pub(super) fn trigger_code(t: Trigger) -> u8 {
    match t {
        Trigger::Csat => 0,
        Trigger::Nps => 1,
    }
}

pub(super) fn trigger_of(c: u8) -> Result<Trigger, CodecError> {
    match c {
        0 => Ok(Trigger::Csat),
        1 => Ok(Trigger::Nps),
        _ => Err(CodecError(format!("trigger {c}"))),
    }
}

pub(super) fn encode_customer(c: &Customer) -> Vec<u8> {
    let mut w = Writer::new();
    w.i64(c.last_event);
    let a = c.after();
    w.f64(a.risk.score);
    w.opt_i64(a.risk.tau);
    let sums = a.risk.sums();
    let mut mask = 0u64;
    for (i, v) in sums.iter().enumerate() {
        if *v != 0.0 {
            mask |= 1 << i;
        }
    }
    w.u64(mask);
    for v in sums.iter().filter(|v| **v != 0.0) {
        w.f64(*v);
    }
    w.opt_i64(a.last_risk);
    w.len(a.pending_risks.len());
    for p in &a.pending_risks {
        w.u64(p.id);
        w.i64(p.time);
        w.u64(p.seq);
    }
    match &a.recovery {
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
    for t in c.created.iter() {
        w.i64(*t);
    }
    w.len(a.cohorts.len());
    for k in &a.cohorts {
        w.u64(k.id);
        w.str(&k.ticket);
        w.i64(k.solved);
        w.u64(k.seq);
    }
    w.len(a.csat_by_ticket.len());
    for (t, s) in &a.csat_by_ticket {
        w.str(t);
        w.u8(*s);
    }
    w.u64(a.next_id);
    w.buf
}

pub(super) fn decode_customer(key: &str, b: &[u8]) -> Result<Customer, CodecError> {
    let mut r = Reader::new(b);
    let mut c = Customer::new(key, r.i64()?);
    let mut a = AfterSales::default();
    let risk = &mut a.risk;
    risk.score = r.f64()?;
    risk.tau = r.opt_i64()?;
    let mask = r.u64()?;
    for i in 0..Signal::ALL.len() {
        if mask & (1 << i) != 0 {
            risk.set_sum(i, r.f64()?);
        }
    }
    a.last_risk = r.opt_i64()?;
    for _ in 0..r.len()? {
        a.pending_risks.push(PendingRisk {
            id: r.u64()?,
            time: r.i64()?,
            seq: r.u64()?,
        });
    }
    if r.bool()? {
        a.recovery = Some(Box::new(RecoveryCase {
            id: r.u64()?,
            opened: r.i64()?,
            due: r.i64()?,
            trigger: trigger_of(r.u8()?)?,
            seq: r.u64()?,
        }));
    }
    let n = r.len()?;
    for _ in 0..n {
        c.created.push(r.i64()?);
    }
    for _ in 0..r.len()? {
        a.cohorts.push(Cohort {
            id: r.u64()?,
            ticket: r.str()?.into(),
            solved: r.i64()?,
            seq: r.u64()?,
        });
    }
    for _ in 0..r.len()? {
        a.csat_by_ticket.push((r.str()?.into(), r.u8()?));
    }
    a.next_id = r.u64()?;
    if !a.is_empty() {
        c.after = Some(Box::new(a));
    }
    Ok(c)
}

pub(super) fn encode_input(w: &mut Writer, i: &Input) {
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

pub(super) fn decode_input(r: &mut Reader<'_>) -> Result<Input, CodecError> {
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

pub(super) fn encode_part(sealed: Option<bool>, agg: &Aggregate) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(match sealed {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    agg.encode(&mut w);
    w.buf
}
