//! One input partition (GUIDE §1: state is sharded by input partition, and a partition is a
//! deterministic function of its own events): its [`Core`] (windows, watermark, output,
//! counters) and its [`Shard`] of state — tickets and customers (in generational slabs, so
//! timers refer to them by `u32` handle), dedup memory, event-time clock and the scheduler of
//! timers and held after-sales inputs.
//!
//! Order of work for each event (SPEC §2): apply it to state; the partition's watermark
//! advances; its timers and held inputs strictly before the new watermark fire in order; its
//! window parts whose end the watermark reached are sealed. Ticket events are handled in
//! [`super::tickets`], the after-sales logic of SPEC §5 in [`super::signals`].

use std::sync::Arc;

use super::core::Core;
use super::customer::Customer;
use super::keys::StateKeys;
use super::sched::{Input, Item, Scheduler, Target, What};
use super::slab::{KeyTimes, Slab};
use super::snapshot::ShardLog;
use super::ticket::{text_key, Contribution, Ticket};
use super::watermark::PartitionClock;
use super::{Disposition, Observer};
use crate::config::Config;
use crate::event::{Body, Event};
use crate::kpi::{Dims, Kpi};
use crate::output::Rejection;
use crate::ts::{Millis, HOUR, SECOND};

/// Tickets, customers, dedup memory, clock and scheduler of one partition.
pub(super) struct Shard {
    /// Event-time progress of this partition.
    pub clock: PartitionClock,
    /// Ticket state by slab handle and by key ([`ticket_key`]).
    pub tickets: Slab<Ticket>,
    /// Customer after-sales state by slab handle and by key ([`text_key`]).
    pub customers: Slab<Customer>,
    /// Event id key → event time, for duplicates within the horizon (SPEC §1).
    pub dedup: KeyTimes,
    /// SLA timers, after-sales timers and held after-sales inputs.
    pub sched: Scheduler,
    /// Watermark from which the next retention sweep may run ([`sweep_every`]).
    pub next_sweep: Millis,
    /// Events applied since the last sweep (not in checkpoints: a restored partition counts
    /// from zero).
    pub since_sweep: u64,
    /// What changed since the last checkpoint (when checkpoints are taken).
    pub log: ShardLog,
    /// The state keys of the event being applied ([`Shard::ev_customer`],
    /// [`Shard::ev_ticket`]): computed once, ahead.
    pub ev: StateKeys,
}

/// One input partition: its context and its state.
pub(super) struct Partition {
    /// Windows, watermark, output, counters, observer.
    pub core: Core,
    /// Tickets, customers, dedup memory, scheduler.
    pub shard: Shard,
}

impl Partition {
    /// An empty partition.
    pub fn new(cfg: Arc<Config>, partition: i32, observer: Option<Box<dyn Observer>>) -> Self {
        Partition {
            core: Core::new(cfg, partition, observer),
            shard: Shard {
                clock: PartitionClock::default(),
                tickets: Slab::default(),
                customers: Slab::default(),
                dedup: KeyTimes::default(),
                sched: Scheduler::default(),
                next_sweep: Millis::MIN,
                since_sweep: 0,
                log: ShardLog::default(),
                ev: StateKeys::default(),
            },
        }
    }

    /// Processes one decoded event of this partition (SPEC §1–§2); `dead_letter` supplies
    /// payload and position if it must be dead-lettered.
    /// `keys` are the event's ([`StateKeys::of`]).
    pub fn process(
        &mut self,
        ev: &Event<'_>,
        keys: &StateKeys,
        dead_letter: impl FnOnce() -> (Vec<u8>, crate::event::SourcePos),
    ) -> Disposition {
        let (core, shard) = (&mut self.core, &mut self.shard);
        let w = core.watermark.get();
        shard.ev = *keys;
        if cfg!(test) {
            assert_eq!(*keys, StateKeys::of(ev), "the keys are the event's");
        }
        let id = keys.id;
        // SPEC §1: a duplicate id within the horizon changes nothing.
        let horizon = core.cfg.engine.dedup_horizon.0;
        if shard
            .dedup
            .get(id)
            .is_some_and(|seen| w <= seen.saturating_add(horizon))
        {
            core.stats.duplicates += 1;
            return Disposition::Duplicate;
        }
        if let Err(rej) = shard.apply(core, ev) {
            match rej {
                Rejection::UnknownTicket => core.stats.orphans += 1,
                Rejection::TicketExists => core.stats.ticket_exists += 1,
            }
            let (payload, source) = dead_letter();
            let error = rej.explain(&ev.customer, ev.body.acted_ticket().unwrap_or_default());
            core.emit(crate::output::Record::dead_letter(
                rej.as_str(),
                error,
                payload,
                source,
            ));
            return Disposition::Rejected(rej);
        }
        shard.dedup.insert(id, ev.time);
        shard.log.dedup_added(id, ev.time);
        shard.since_sweep += 1;
        core.stats.events[ev.body.event_type() as usize] += 1;
        if ev.time < w {
            core.stats.late_events += 1;
        }
        shard.clock.observe(ev.time);
        let lateness = core.cfg.engine.allowed_lateness.0;
        if let Some(m) = shard.clock.max_time {
            self.advance(m.saturating_sub(lateness));
        }
        Disposition::Applied
    }

    /// One step of SPEC §2 after an event or an idle advance: the watermark moves to `w` if
    /// that is later; the scheduler items strictly before the watermark fire — also when it
    /// did not move, since the event may have set a timer already behind it (a late ticket);
    /// the window parts it reached are sealed; retention is swept now and then. Returns
    /// whether the watermark moved.
    pub fn advance(&mut self, w: Millis) -> bool {
        let moved = self.core.watermark.advance(w);
        let w = self.core.watermark.get();
        if w == Millis::MIN {
            return false;
        }
        self.shard.fire_before(&mut self.core, w);
        if moved {
            self.core.windows.close(w);
            if self.shard.sweep_due(w, &self.core.cfg) {
                self.shard.sweep(&mut self.core);
                self.shard.next_sweep = w.saturating_add(sweep_every(&self.core.cfg));
                self.shard.since_sweep = 0;
            }
        }
        moved
    }

    /// End of a finite input (SPEC §2): the watermark moves to `m`, items before `m` fire and
    /// the held inputs at `m` are applied (timers at `m` stay pending); every part is sealed,
    /// the ones whose window does not end by `m` as partial.
    pub fn finish_at(&mut self, m: Millis) {
        self.core.watermark.advance(m);
        let w = self.core.watermark.get();
        self.shard.fire_before(&mut self.core, w);
        while let Some(item) = self.shard.sched.pop_input_at(w) {
            self.shard.handle(&mut self.core, item);
        }
        self.core.windows.flush_all(w);
    }

    /// Reverts this partition's contributions to the current-state gauges (it is revoked).
    pub fn release_gauges(&mut self) {
        for (_, t) in self.shard.tickets.iter() {
            self.core.gauges(
                (t.contribution(), t.dims),
                (Contribution::default(), t.dims),
            );
        }
    }

    /// Recounts the current-state gauges kept in the counters from the state (restore).
    pub fn recount_gauges(&mut self) {
        let mut r = (0, 0);
        for (_, c) in self.shard.customers.iter() {
            r.0 += !c.after().pending_risks.is_empty() as i64;
            r.1 += c.after().recovery.is_some() as i64;
        }
        self.core.stats.customers_at_risk = r.0;
        self.core.stats.recovery_open_cases = r.1;
        for (_, t) in self.shard.tickets.iter() {
            self.core.gauges(
                (Contribution::default(), t.dims),
                (t.contribution(), t.dims),
            );
        }
    }
}

impl Shard {
    /// The slot of the ticket with `key` if it exists and has not expired; expired state is
    /// evicted here (lazily, with the rule the sweep uses).
    pub fn live_ticket_keyed(&mut self, core: &mut Core, key: u128) -> Option<u32> {
        let idx = self.tickets.find(key)?;
        let e = &core.cfg.engine;
        let t = self.tickets.get(idx)?;
        if t.expired(
            core.watermark.get(),
            e.ticket_retention_open.0,
            e.ticket_retention_solved.0,
        ) {
            self.evict_ticket(core, idx);
            return None;
        }
        Some(idx)
    }

    /// Evicts a ticket (retention).
    pub fn evict_ticket(&mut self, core: &mut Core, idx: u32) {
        if let Some((t, key)) = self.tickets.remove(idx) {
            self.log.ticket_gone(key, &t);
            core.stats.evicted_tickets += 1;
            core.gauges(
                (t.contribution(), t.dims),
                (Contribution::default(), t.dims),
            );
        }
    }

    /// [`Self::ev_customer`] of any customer; `touch` says whether `t` counts as the customer's latest event
    /// (an event of the customer) or not (an SLA breach found by a timer).
    pub fn customer_at(&mut self, core: &mut Core, key: &str, t: Millis, touch: bool) -> u32 {
        self.customer_keyed(core, key, text_key(key), t, touch)
    }

    /// [`Self::customer_at`] with `key`'s [`text_key`] `k`.
    pub fn customer_keyed(
        &mut self,
        core: &mut Core,
        key: &str,
        k: u128,
        t: Millis,
        touch: bool,
    ) -> u32 {
        let retention = core.cfg.engine.customer_retention.0;
        if let Some(idx) = self.customers.find(k) {
            if let Some(c) = self.customers.get_mut(idx) {
                if c.evictable(core.watermark.get(), retention) {
                    core.stats.evicted_customers += 1;
                    // Afresh, but the same state-topic entity: its durable version (and
                    // whether it is already noted as changed) stays its own, so the new
                    // version goes to the other slot and is noted once.
                    let ck = c.ck;
                    *c = Customer::new(key, t);
                    c.ck = ck;
                } else if touch {
                    c.last_event = c.last_event.max(t);
                }
                self.log.touch_customer(c);
                return idx;
            }
        }
        let idx = self.customers.insert(k, Customer::new(key, t));
        if let Some(c) = self.customers.get_mut(idx) {
            self.log.touch_customer(c);
        }
        idx
    }

    /// A customer's state, noted as changed for the next checkpoint.
    pub fn customer_mut(&mut self, idx: u32) -> Option<&mut Customer> {
        let c = self.customers.get_mut(idx)?;
        self.log.touch_customer(c);
        Some(c)
    }

    /// Holds an after-sales input until the watermark is strictly past `time` (SPEC §5).
    pub fn hold(&mut self, time: Millis, customer: u32, input: Input) {
        if let Some(c) = self.customers.get_mut(customer) {
            c.held += 1;
        }
        self.sched.push_input(time, customer, input);
    }

    /// Sets a timer; returns its sequence number.
    pub fn timer(&mut self, due: Millis, what: What) -> u64 {
        self.sched.push_timer(due, what)
    }

    /// Fires the scheduler items strictly before `w`, in order (SPEC §2).
    pub fn fire_before(&mut self, core: &mut Core, w: Millis) {
        while let Some(item) = self.sched.pop_before(w) {
            // The next item's state is fetched while this one is handled (issue 10: an SLA
            // due reads a ticket last touched hours of event time ago).
            match self.sched.peek_target() {
                Some(Target::Ticket(h)) => self.tickets.prefetch_handle(h),
                Some(Target::Customer(h)) => self.customers.prefetch_handle(h),
                None => {}
            }
            self.handle(core, item);
        }
    }

    /// Handles one scheduler item whose time the watermark has passed.
    pub fn handle(&mut self, core: &mut Core, item: Item) {
        let time = item.time;
        match item.what {
            What::Sla { ticket } => self.sla_due(core, ticket, item.seq, time),
            What::Input { customer, input } => {
                if let Some(c) = self.customer_mut(customer) {
                    c.held = c.held.saturating_sub(1);
                }
                self.apply_input(core, customer, *input, time);
            }
            What::RecoveryDue { customer, case } => self.recovery_due(core, customer, case, time),
            What::RiskExpiry { customer, risk } => self.risk_expiry(core, customer, risk, time),
            What::CohortExpiry { customer, cohort } => {
                self.cohort_expiry(core, customer, cohort, time)
            }
        }
    }

    /// Applies one valid, non-duplicate event to state (SPEC §3), or says why it cannot be.
    pub fn apply(&mut self, core: &mut Core, ev: &Event<'_>) -> Result<(), Rejection> {
        let t = ev.time;
        // Late on arrival: still updates state and cumulative metrics, but is not an input of
        // the event-time-ordered after-sales logic (SPEC §5).
        let late = t < core.watermark.get();
        if late && is_signal_input(&ev.body) {
            core.stats.late_signal_inputs += 1;
        }
        // The after-sales input an event holds (unless late), and the customer it concerns.
        let held = match &ev.body {
            Body::TicketCreated {
                ticket,
                channel,
                priority,
                team,
                category,
            } => self.ticket_created(
                core,
                ev,
                ticket,
                (*channel, *priority, *category),
                team.as_deref(),
            )?,
            Body::TicketMessage {
                ticket,
                author,
                public,
                ..
            } => self.ticket_message(core, ev, ticket, *author, *public)?,
            Body::TicketSolved { ticket, .. } => self.ticket_solved(core, ev, ticket)?,
            Body::TicketReopened { ticket } => self.ticket_reopened(core, ev, ticket)?,
            Body::TicketEscalated { ticket, team } => {
                self.ticket_escalated(core, ev, ticket, team.as_deref())?
            }
            Body::ContactHandled {
                channel,
                handle_seconds,
                ticket,
                ..
            } => {
                self.ev_customer(core, &ev.customer, t);
                // Its own channel; its other dimensions from a known ticket of its customer.
                let mut dims = Dims {
                    channel: Some(*channel),
                    ..Dims::NONE
                };
                let known = ticket
                    .as_deref()
                    .and_then(|id| self.ev_ticket(core, &ev.customer, id));
                if let Some(tk) = known.and_then(|idx| self.tickets.get(idx)) {
                    dims = Dims {
                        channel: Some(*channel),
                        ..tk.dims
                    };
                }
                core.measure(t, dims, Kpi::Handle(*handle_seconds));
                None
            }
            Body::CustomerContacted { .. } => {
                Some((self.ev_customer(core, &ev.customer, t), Input::Contact))
            }
            Body::SurveyCsat { score, ticket } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Csat(*score));
                let input = Input::Csat {
                    score: *score,
                    ticket: ticket.as_deref().map(Into::into),
                    known: dims.is_some(),
                };
                Some((cust, input))
            }
            Body::SurveyNps { score } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Nps(*score));
                Some((cust, Input::Nps(*score)))
            }
            Body::SurveyCes { score, ticket } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Ces(*score));
                Some((cust, Input::Ces(*score)))
            }
            Body::OrderPlaced { amount, .. } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::OrderPlaced(*amount));
                Some((cust, Input::Order))
            }
            Body::OrderReturned { .. } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Returned);
                Some((cust, Input::Return))
            }
            Body::WarrantyClaimed { .. } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::WarrantyClaim);
                Some((cust, Input::WarrantyClaim))
            }
            Body::CustomerChurned { .. } => {
                let cust = self.ev_customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Churned);
                if late {
                    // Still counted in cxstream_customers_churned_total (every valid event).
                    let horizon = core.cfg.signals.effectiveness_horizon.0;
                    let after_signal = self
                        .customers
                        .get(cust)
                        .is_some_and(|c| c.signalled_within(t, horizon));
                    core.observe_only(t, Kpi::ChurnOutcome { after_signal });
                }
                Some((cust, Input::Churn))
            }
        };
        if let Some((cust, input)) = held {
            if !late {
                self.hold(t, cust, input);
            }
        }
        Ok(())
    }

    /// Dimensions of the ticket a survey names, if it is a known ticket of the survey's
    /// customer (SPEC §5: another customer's ticket counts as unknown).
    fn survey_dims(
        &mut self,
        core: &mut Core,
        ticket: Option<&str>,
        customer: &str,
    ) -> Option<Dims> {
        let idx = self.ev_ticket(core, customer, ticket?)?;
        self.tickets.get(idx).map(|tk| tk.dims)
    }

    /// Whether the retention sweep runs at watermark `w`: once [`sweep_every`] has passed
    /// since the last one, if at least an eighth as many events as the state holds entries
    /// were applied since — or [`sweep_at_least_every`] has passed. A sweep visits every
    /// entry, so this bounds its cost to 8 visits an event where event time runs faster than
    /// the state turns over (a replay: hourly sweeps of 10 days in a second cost a fifth of
    /// the engine's time); live, an hour brings far more events than that, and nothing
    /// changes. The state held past its horizon stays within an eighth of the state (or the
    /// longer interval's worth).
    fn sweep_due(&self, w: Millis, cfg: &Config) -> bool {
        if w < self.next_sweep {
            return false;
        }
        let held = self.tickets.len() + self.customers.len() + self.dedup.len();
        let longest = sweep_at_least_every(cfg) - sweep_every(cfg);
        self.since_sweep.saturating_mul(8) >= held as u64
            || w >= self.next_sweep.saturating_add(longest)
    }

    /// Evicts idle state (SPEC §1 retention) and forgets ids past the dedup horizon. The same
    /// rules are applied lazily on access, so when this runs does not change any result.
    pub fn sweep(&mut self, core: &mut Core) {
        let w = core.watermark.get();
        let e = &core.cfg.engine;
        let (open_ret, solved_ret, cust_ret, horizon) = (
            e.ticket_retention_open.0,
            e.ticket_retention_solved.0,
            e.customer_retention.0,
            e.dedup_horizon.0,
        );
        let expired: Vec<u32> = self
            .tickets
            .iter()
            .filter(|(_, t)| t.expired(w, open_ret, solved_ret))
            .map(|(i, _)| i)
            .collect();
        for idx in expired {
            self.evict_ticket(core, idx);
        }
        let idle: Vec<u32> = self
            .customers
            .iter()
            .filter(|(_, c)| c.evictable(w, cust_ret))
            .map(|(i, _)| i)
            .collect();
        for idx in idle {
            if let Some((c, key)) = self.customers.remove(idx) {
                self.log.customer_gone(key, &c);
                core.stats.evicted_customers += 1;
            }
        }
        self.dedup.retain(|seen| w <= seen.saturating_add(horizon));
    }
}

/// The least event time between two retention sweeps of a partition: a quarter of the
/// shortest of the four horizons (dedup, ticket retention open and solved, customer retention),
/// at least a second and at most an hour. With the defaults (24 h and more) that is an hour;
/// with horizons of minutes the state held past its horizon stays a small fraction of the
/// state within it (sweeping only hourly, a 2-minute dedup horizon would hold up to 31 times
/// the ids it needs). Results never depend on it (the sweep's rules are applied lazily).
pub fn sweep_every(cfg: &Config) -> Millis {
    (shortest_horizon(cfg) / 4).clamp(SECOND, HOUR)
}

/// The most event time that passes between two retention sweeps however few events come: a
/// quarter of the shortest horizon, at least [`sweep_every`] and at most a day (6 hours with
/// the defaults). Between [`sweep_every`] and this, a sweep waits for enough events
/// (`Shard::sweep_due`).
pub fn sweep_at_least_every(cfg: &Config) -> Millis {
    (shortest_horizon(cfg) / 4).clamp(sweep_every(cfg), 24 * HOUR)
}

/// The shortest of the four horizons: dedup, ticket retention open and solved, customer
/// retention.
fn shortest_horizon(cfg: &Config) -> Millis {
    let e = &cfg.engine;
    [
        e.dedup_horizon.0,
        e.ticket_retention_open.0,
        e.ticket_retention_solved.0,
        e.customer_retention.0,
    ]
    .into_iter()
    .min()
    .unwrap_or(HOUR)
}

/// Events whose application feeds the after-sales logic.
fn is_signal_input(b: &Body<'_>) -> bool {
    !matches!(b, Body::ContactHandled { .. })
}
