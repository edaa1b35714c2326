//! The state of one input partition (GUIDE §1: state is sharded by input partition) and the
//! dispatch of an applied event to the rules of SPEC §3.
//!
//! A partition owns its tickets and customers (in generational slabs, so timers refer to them
//! by `u32` handle), its dedup memory, its event-time clock and its scheduler of timers and
//! held after-sales inputs. Ticket events are handled in [`super::tickets`], the after-sales
//! logic of SPEC §5 in [`super::signals`].

use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;

use super::core::Core;
use super::customer::Customer;
use super::sched::{Input, Item, Scheduler, What};
use super::slab::Slab;
use super::ticket::{Contribution, Ticket};
use super::watermark::PartitionClock;
use crate::event::{Body, Event};
use crate::kpi::{Dims, Kpi};
use crate::output::Rejection;
use crate::ts::Millis;

pub(super) type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The state of one input partition.
pub(super) struct Partition {
    /// The input partition number (the `partitions` of window records).
    pub partition: i32,
    /// Event-time progress of this partition.
    pub clock: PartitionClock,
    /// Ticket state by slab handle.
    pub tickets: Slab<Ticket>,
    /// Ticket id → slab handle.
    pub ticket_ids: FxMap<Box<str>, u32>,
    /// Customer after-sales state by slab handle.
    pub customers: Slab<Customer>,
    /// Customer id → slab handle.
    pub customer_ids: FxMap<Box<str>, u32>,
    /// Event id → event time, for duplicates within the horizon (SPEC §1).
    pub dedup: FxMap<Box<str>, Millis>,
    /// SLA timers, after-sales timers and held after-sales inputs.
    pub sched: Scheduler,
    /// Time of the last after-sales item applied: inputs and SLA breaches before it are late
    /// for the event-time-ordered logic.
    pub s5_clock: Millis,
}

impl Partition {
    pub fn new(partition: i32) -> Partition {
        Partition {
            partition,
            clock: PartitionClock::default(),
            tickets: Slab::default(),
            ticket_ids: FxMap::default(),
            customers: Slab::default(),
            customer_ids: FxMap::default(),
            dedup: FxMap::default(),
            sched: Scheduler::default(),
            s5_clock: Millis::MIN,
        }
    }

    /// SPEC §1: a duplicate is an id seen within the horizon.
    pub fn is_duplicate(&self, id: &str, watermark: Millis, horizon: Millis) -> bool {
        self.dedup
            .get(id)
            .is_some_and(|&seen| watermark <= seen.saturating_add(horizon))
    }

    /// Remembers an applied event's id with its time.
    pub fn remember(&mut self, id: &str, time: Millis) {
        match self.dedup.get_mut(id) {
            Some(t) => *t = time,
            None => {
                self.dedup.insert(id.into(), time);
            }
        }
    }

    /// The slot of a ticket that exists and has not expired; expired state is evicted here.
    pub fn live_ticket(&mut self, core: &mut Core, id: &str) -> Option<u32> {
        let &idx = self.ticket_ids.get(id)?;
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

    pub fn evict_ticket(&mut self, core: &mut Core, idx: u32) {
        if let Some(t) = self.tickets.remove(idx) {
            self.ticket_ids.remove(&t.id);
            core.stats.evicted_tickets += 1;
            core.gauges(
                (t.contribution(), t.dims),
                (Contribution::default(), t.dims),
            );
        }
    }

    /// The customer's slot, created if needed; idle state past retention starts afresh.
    pub fn customer(&mut self, core: &mut Core, key: &str, t: Millis) -> u32 {
        let retention = core.cfg.engine.customer_retention.0;
        if let Some(&idx) = self.customer_ids.get(key) {
            if let Some(c) = self.customers.get_mut(idx) {
                if c.evictable(core.watermark.get(), retention) {
                    core.stats.evicted_customers += 1;
                    *c = Customer::new(key, t);
                } else {
                    c.last_event = c.last_event.max(t);
                }
                return idx;
            }
        }
        let (idx, _) = self.customers.insert(Customer::new(key, t));
        self.customer_ids.insert(key.into(), idx);
        idx
    }

    /// Holds an after-sales input until the watermark is strictly past `time` (SPEC §5).
    pub fn hold(&mut self, time: Millis, customer: u32, input: Input) {
        if let Some(c) = self.customers.get_mut(customer) {
            c.refs += 1;
        }
        self.sched.push_input(time, customer, input);
    }

    /// Sets a timer; a timer on a customer keeps its state from eviction until it fires.
    pub fn timer(&mut self, due: Millis, what: What) {
        if let Some(c) = what.customer().and_then(|i| self.customers.get_mut(i)) {
            c.refs += 1;
        }
        self.sched.push_timer(due, what);
    }

    /// Fires the scheduler items strictly before `w`, in order (SPEC §2).
    pub fn fire_before(&mut self, core: &mut Core, w: Millis) {
        while let Some(item) = self.sched.pop_before(w) {
            self.handle(core, item);
        }
    }

    /// End of a finite input: items before `m` fire and the held inputs at `m` are applied
    /// (timers at `m` stay pending).
    pub fn finish_at(&mut self, core: &mut Core, m: Millis) {
        self.fire_before(core, m);
        while let Some(item) = self.sched.pop_input_at(m) {
            self.handle(core, item);
        }
    }

    /// Handles one scheduler item whose time the watermark has passed.
    fn handle(&mut self, core: &mut Core, item: Item) {
        let time = item.time;
        if let Some(c) = item.what.customer().and_then(|i| self.customers.get_mut(i)) {
            c.refs = c.refs.saturating_sub(1);
        }
        match item.what {
            What::Sla {
                ticket,
                generation,
                kind,
            } => self.sla_due(core, ticket, generation, kind, time),
            What::Input { customer, input } => {
                self.s5_clock = self.s5_clock.max(time);
                self.apply_input(core, customer, input, time);
            }
            What::RecoveryDue { customer, case } => {
                self.s5_clock = self.s5_clock.max(time);
                self.recovery_due(core, customer, case, time);
            }
            What::RiskExpiry { customer, risk } => {
                self.s5_clock = self.s5_clock.max(time);
                self.risk_expiry(core, customer, risk, time);
            }
            What::CohortExpiry { customer, cohort } => {
                self.s5_clock = self.s5_clock.max(time);
                self.cohort_expiry(core, customer, cohort, time);
            }
        }
    }

    /// Applies one valid, non-duplicate event to state (SPEC §3), or says why it cannot be.
    pub fn apply(&mut self, core: &mut Core, ev: &Event<'_>) -> Result<(), Rejection> {
        let t = ev.time;
        let p = self.partition;
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
                self.customer(core, &ev.customer, t);
                // Its own channel; its other dimensions from a known ticket.
                let mut dims = Dims {
                    channel: Some(*channel),
                    ..Dims::NONE
                };
                if let Some(idx) = ticket.as_deref().and_then(|id| self.live_ticket(core, id)) {
                    if let Some(tk) = self.tickets.get(idx) {
                        dims = Dims {
                            channel: Some(*channel),
                            ..tk.dims
                        };
                    }
                }
                core.measure(t, dims, Kpi::Handle(*handle_seconds), p);
                None
            }
            Body::CustomerContacted { .. } => Some((
                Holder::Slot(self.customer(core, &ev.customer, t)),
                Input::Contact,
            )),
            Body::SurveyCsat { score, ticket } => {
                let cust = self.customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Csat(*score), p);
                let input = Input::Csat {
                    score: *score,
                    ticket: ticket.as_deref().map(Into::into),
                    known: dims.is_some(),
                };
                Some((Holder::Slot(cust), input))
            }
            Body::SurveyNps { score } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Nps(*score), p);
                Some((Holder::Slot(cust), Input::Nps(*score)))
            }
            Body::SurveyCes { score, ticket } => {
                let cust = self.customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Ces(*score), p);
                Some((Holder::Slot(cust), Input::Ces(*score)))
            }
            Body::OrderPlaced { amount, .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::OrderPlaced(*amount), p);
                Some((Holder::Slot(cust), Input::Order))
            }
            Body::OrderReturned { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Returned, p);
                Some((Holder::Slot(cust), Input::Return))
            }
            Body::WarrantyClaimed { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::WarrantyClaim, p);
                Some((Holder::Slot(cust), Input::WarrantyClaim))
            }
            Body::CustomerChurned { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Churned, p);
                if late {
                    // Still counted in cxstream_customers_churned_total (every valid event).
                    let after_signal = self.customers.get(cust).is_some_and(|c| {
                        c.signalled_within(t, core.cfg.signals.effectiveness_horizon.0)
                    });
                    core.observe_only(t, Kpi::ChurnOutcome { after_signal });
                }
                Some((Holder::Slot(cust), Input::Churn))
            }
        };
        if let Some((holder, input)) = held {
            if !late {
                let cust = match holder {
                    Holder::Slot(c) => c,
                    // Touched only when the input is held, as the ticket's owner.
                    Holder::Owner(key) => self.customer(core, &key, t),
                };
                self.hold(t, cust, input);
            }
        }
        Ok(())
    }

    /// Dimensions of the ticket a survey names, if it is known and belongs to the survey's
    /// customer (SPEC §5: another customer's ticket counts as unknown).
    fn survey_dims(
        &mut self,
        core: &mut Core,
        ticket: Option<&str>,
        customer: &str,
    ) -> Option<Dims> {
        let idx = self.live_ticket(core, ticket?)?;
        let tk = self.tickets.get(idx)?;
        (&*tk.customer == customer).then_some(tk.dims)
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
            if let Some(c) = self.customers.remove(idx) {
                self.customer_ids.remove(&c.key);
                core.stats.evicted_customers += 1;
            }
        }
        self.dedup
            .retain(|_, seen| w <= seen.saturating_add(horizon));
    }

    /// Reverts this partition's contributions to the current-state gauges (it is revoked).
    pub fn release_gauges(&self, core: &mut Core) {
        core.stats.customers_at_risk -= self
            .customers
            .iter()
            .filter(|(_, c)| !c.pending_risks.is_empty())
            .count() as i64;
        core.stats.recovery_open_cases -= self
            .customers
            .iter()
            .filter(|(_, c)| c.recovery.is_some())
            .count() as i64;
        for (_, t) in self.tickets.iter() {
            core.gauges(
                (t.contribution(), t.dims),
                (Contribution::default(), t.dims),
            );
        }
    }
}

/// Whose after-sales state a held input goes to.
pub(super) enum Holder {
    /// A customer slot already touched by the event.
    Slot(u32),
    /// The customer that owns the ticket the event acts on (touched only if it is held).
    Owner(Box<str>),
}

/// Events whose application feeds the after-sales logic.
fn is_signal_input(b: &Body<'_>) -> bool {
    !matches!(b, Body::ContactHandled { .. })
}
