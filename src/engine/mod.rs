//! The KPI engine (SPEC §1–§5): decoded events in; measurements, alert records and closed
//! windows out.
//!
//! State is sharded by input partition ([`Shard`]): each owns its tickets, customers, dedup
//! memory, scheduler and event-time high-water mark. Windows and the watermark are shared:
//! the watermark is the minimum over the partitions that have data of (max event time −
//! allowed lateness), never moving back.
//!
//! Order of work for each event (SPEC §2): apply it to state; advance the watermark; fire the
//! scheduler items (SLA timers, after-sales inputs and timers) strictly before the new
//! watermark, in time order; then close the windows whose end the watermark reached.

mod customer;
mod sched;
mod slab;
mod ticket;

pub use customer::RiskScore;

use std::collections::BTreeMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use rustc_hash::FxHasher;

use crate::config::Config;
use crate::event::{
    decode, Author, Body, Event, EventType, InvalidReason, SourcePos, DEFAULT_TEAM,
};
use crate::kpi::{self, Band, Dims, Kpi, Measurement, Signal, SlaKind};
use crate::output::{Record, Rejection, Trigger, WindowRecord};
use crate::ts::{Millis, HOUR};
use crate::window::{ClosedWindow, WindowStore};

use customer::{Cohort, Customer, RecoveryCase};
use sched::{Input, Item, Scheduler, What};
use slab::Slab;
use ticket::{Clock, ClockState, Contribution, Ticket};

type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Interned team names: measurements and window keys carry a `u32`.
#[derive(Debug, Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    ids: FxMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }
}

/// Receives every measurement (late or not) and current-state changes: the Prometheus layer.
pub trait Observer: Send {
    fn measurement(&mut self, _m: &Measurement, _teams: &Interner) {}
    /// A gauge of SPEC §6 current state changed by `delta` for these labels.
    fn open_tickets(&mut self, _team: &str, _priority: &str, _delta: i64) {}
    fn breached_open(&mut self, _sla: SlaKind, _team: &str, _priority: &str, _delta: i64) {}
}

/// Pipeline counters (SPEC §6 "the pipeline itself"), cumulative.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Applied events by type (index: `EventType as usize`).
    pub events: [u64; EventType::ALL.len()],
    /// Invalid inputs by reason (index: `InvalidReason as usize`).
    pub invalid: [u64; InvalidReason::ALL.len()],
    pub ticket_exists: u64,
    pub duplicates: u64,
    pub orphans: u64,
    pub late_events: u64,
    /// Window contributions dropped because their window had closed.
    pub late_contributions: u64,
    /// After-sales inputs not applied because they were late on arrival.
    pub late_signal_inputs: u64,
    pub evicted_tickets: u64,
    pub evicted_customers: u64,
    pub records: BTreeMap<&'static str, u64>,
    pub customers_at_risk: i64,
    pub recovery_open_cases: i64,
}

impl Stats {
    pub fn events_total(&self) -> u64 {
        self.events.iter().sum()
    }
    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().sum::<u64>() + self.ticket_exists
    }
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Applied,
    Invalid,
    Duplicate,
    Rejected(Rejection),
}

/// Everything but the shards: shared by all of them during a step.
struct Core {
    cfg: Arc<Config>,
    teams: Interner,
    windows: WindowStore,
    watermark: Millis,
    out: Vec<Record>,
    stats: Stats,
    observer: Option<Box<dyn Observer>>,
}

impl Core {
    fn measure(&mut self, time: Millis, dims: Dims, kpi: Kpi, partition: i32) {
        let m = Measurement { time, dims, kpi };
        self.stats.late_contributions += self.windows.record(&m, partition) as u64;
        if let Some(o) = self.observer.as_mut() {
            o.measurement(&m, &self.teams);
        }
    }

    /// Feeds the Prometheus layer only (no window): used where SPEC §6 counts an event that
    /// the event-time-ordered after-sales logic does not apply.
    fn observe_only(&mut self, time: Millis, kpi: Kpi) {
        if let Some(o) = self.observer.as_mut() {
            let m = Measurement {
                time,
                dims: Dims::NONE,
                kpi,
            };
            o.measurement(&m, &self.teams);
        }
    }

    fn emit(&mut self, r: Record) {
        *self.stats.records.entry(r.type_name()).or_default() += 1;
        self.out.push(r);
    }

    fn gauges(&mut self, before: (Contribution, Dims), after: (Contribution, Dims)) {
        let Some(o) = self.observer.as_mut() else {
            return;
        };
        for (c, dims, sign) in [(before.0, before.1, -1i64), (after.0, after.1, 1i64)] {
            let team = self.teams.name(dims.team.unwrap_or(0));
            let prio = dims.priority.map_or("", |p| p.as_str());
            if c.open {
                o.open_tickets(team, prio, sign);
            }
            if c.first_response_breached_waiting {
                o.breached_open(SlaKind::FirstResponse, team, prio, sign);
            }
            if c.resolution_breached_open {
                o.breached_open(SlaKind::Resolution, team, prio, sign);
            }
        }
    }

    fn close_windows(&mut self, watermark: Millis, flush: bool) {
        let mut closed = Vec::new();
        if flush {
            self.windows.flush_all(watermark, &mut closed);
        } else {
            self.windows.close(watermark, &mut closed);
        }
        for w in closed {
            let r = self.window_record(w);
            self.emit(r);
        }
    }

    fn window_record(&self, w: ClosedWindow) -> Record {
        let dims = &self.windows.groups()[w.key.group_idx as usize];
        let group = dims
            .iter()
            .zip(w.key.values)
            .map(|(d, v)| {
                let name = match d {
                    crate::config::Dim::Team => self.teams.name(v).to_string(),
                    crate::config::Dim::Channel => crate::event::Channel::from_index(v)
                        .map_or(String::new(), |c| c.as_str().into()),
                    crate::config::Dim::Priority => crate::event::Priority::from_index(v)
                        .map_or(String::new(), |c| c.as_str().into()),
                    crate::config::Dim::Category => crate::event::Category::from_index(v)
                        .map_or(String::new(), |c| c.as_str().into()),
                };
                (*d, name)
            })
            .collect();
        Record::Window(Box::new(WindowRecord { window: w, group }))
    }
}

/// The state of one input partition.
struct Shard {
    partition: i32,
    max_time: Option<Millis>,
    tickets: Slab<Ticket>,
    ticket_ids: FxMap<Box<str>, u32>,
    customers: Slab<Customer>,
    customer_ids: FxMap<Box<str>, u32>,
    dedup: FxMap<Box<str>, Millis>,
    sched: Scheduler,
    /// Time of the last after-sales item applied: inputs and SLA breaches before it are late
    /// for the event-time-ordered logic.
    s5_clock: Millis,
    /// Live mode: an assigned partition that has not delivered an event yet holds the
    /// watermark back (see [`Engine::hold_until_data`]).
    hold: bool,
}

pub struct Engine {
    core: Core,
    shards: BTreeMap<i32, Shard>,
    next_sweep: Millis,
}

impl Engine {
    pub fn new(cfg: Arc<Config>) -> Engine {
        let windows = WindowStore::new(
            cfg.engine.windows.iter().map(|d| d.0).collect(),
            cfg.engine.group_by.clone(),
        );
        let mut teams = Interner::default();
        teams.intern(DEFAULT_TEAM);
        Engine {
            core: Core {
                cfg,
                teams,
                windows,
                watermark: Millis::MIN,
                out: Vec::new(),
                stats: Stats::default(),
                observer: None,
            },
            shards: BTreeMap::new(),
            next_sweep: Millis::MIN,
        }
    }

    pub fn set_observer(&mut self, o: Box<dyn Observer>) {
        self.core.observer = Some(o);
    }

    pub fn config(&self) -> &Config {
        &self.core.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Continues the cumulative counters of `previous` (live mode replaces the engine when a
    /// rebalance moves partitions with open windows away; the counters stay monotonic).
    pub fn carry_stats_from(&mut self, previous: &Engine) {
        self.core.stats = previous.core.stats.clone();
    }

    pub fn teams(&self) -> &Interner {
        &self.core.teams
    }

    /// The current watermark, once any partition has data.
    pub fn watermark(&self) -> Option<Millis> {
        (self.core.watermark != Millis::MIN).then_some(self.core.watermark)
    }

    /// Largest event time seen on any partition.
    pub fn max_event_time(&self) -> Option<Millis> {
        self.shards.values().filter_map(|s| s.max_time).max()
    }

    /// Records produced so far (alerts, closed windows, dead letters), in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Record> {
        self.core.out.drain(..)
    }

    pub fn pending_records(&self) -> usize {
        self.core.out.len()
    }

    pub fn tickets_held(&self) -> usize {
        self.shards.values().map(|s| s.tickets.len()).sum()
    }

    pub fn customers_held(&self) -> usize {
        self.shards.values().map(|s| s.customers.len()).sum()
    }

    /// Timers and held after-sales inputs waiting for the watermark.
    pub fn scheduled_items(&self) -> usize {
        self.shards.values().map(|s| s.sched.len()).sum()
    }

    pub fn open_window_aggregates(&self) -> usize {
        self.core.windows.open_aggregates()
    }

    /// Makes sure a shard exists for `partition` (on assignment).
    pub fn assign(&mut self, partition: i32) {
        self.shards
            .entry(partition)
            .or_insert_with(|| Shard::new(partition));
    }

    /// Drops the shard of a revoked partition: its state goes away and it no longer holds
    /// the watermark back.
    pub fn revoke(&mut self, partition: i32) {
        if let Some(s) = self.shards.remove(&partition) {
            self.core.stats.customers_at_risk -= s
                .customers
                .iter()
                .filter(|(_, c)| !c.pending_risks.is_empty())
                .count() as i64;
            self.core.stats.recovery_open_cases -= s
                .customers
                .iter()
                .filter(|(_, c)| c.recovery.is_some())
                .count() as i64;
            for (_, t) in s.tickets.iter() {
                self.core.gauges(
                    (t.contribution(), t.dims),
                    (Contribution::default(), t.dims),
                );
            }
        }
    }

    /// Decodes one input and processes it (SPEC §1–§2).
    pub fn process(&mut self, partition: i32, payload: &[u8], pos: SourcePos) -> Disposition {
        let ev = match decode(payload) {
            Ok(ev) => ev,
            Err(e) => {
                self.core.stats.invalid[e.reason as usize] += 1;
                self.core.emit(Record::DeadLetter {
                    reason: e.message,
                    payload: payload.to_vec(),
                    source: pos,
                });
                return Disposition::Invalid;
            }
        };
        self.process_event(partition, &ev, || (payload.to_vec(), pos))
    }

    /// Processes an already decoded event; `dead_letter` supplies payload and position if it
    /// must be dead-lettered.
    pub fn process_event(
        &mut self,
        partition: i32,
        ev: &Event<'_>,
        dead_letter: impl FnOnce() -> (Vec<u8>, SourcePos),
    ) -> Disposition {
        let core = &mut self.core;
        let shard = self
            .shards
            .entry(partition)
            .or_insert_with(|| Shard::new(partition));
        let w = core.watermark;
        // SPEC §1: a duplicate id within the horizon changes nothing.
        if let Some(&seen) = shard.dedup.get(&*ev.id) {
            if w <= seen.saturating_add(core.cfg.engine.dedup_horizon.0) {
                core.stats.duplicates += 1;
                return Disposition::Duplicate;
            }
        }
        if let Err(rej) = shard.apply(core, ev) {
            match rej {
                Rejection::UnknownTicket => core.stats.orphans += 1,
                Rejection::TicketExists => core.stats.ticket_exists += 1,
            }
            let (payload, source) = dead_letter();
            core.emit(Record::DeadLetter {
                reason: rej.as_str().to_string(),
                payload,
                source,
            });
            return Disposition::Rejected(rej);
        }
        match shard.dedup.get_mut(&*ev.id) {
            Some(t) => *t = ev.time,
            None => {
                shard.dedup.insert(ev.id.as_ref().into(), ev.time);
            }
        }
        core.stats.events[ev.body.event_type() as usize] += 1;
        if ev.time < w {
            core.stats.late_events += 1;
        }
        shard.max_time = Some(shard.max_time.map_or(ev.time, |m| m.max(ev.time)));
        self.step_watermark();
        Disposition::Applied
    }

    /// Live mode (Kafka): while `hold` is set, the partition — assigned, but no event of it
    /// seen yet — holds the watermark where it is, because its backlog may be older than what
    /// the other partitions delivered first (without this, a consumer starting on a backlog
    /// would find a partition's first events late). The hold ends with the partition's first
    /// event, or when the source calls this with `hold = false` (the partition reached its
    /// end without data). Replay never sets it.
    pub fn hold_until_data(&mut self, partition: i32, hold: bool) {
        let shard = self
            .shards
            .entry(partition)
            .or_insert_with(|| Shard::new(partition));
        shard.hold = hold;
        if !hold {
            self.step_watermark();
        }
    }

    /// SPEC §2: watermark = min over partitions with data of (max event time − lateness).
    fn step_watermark(&mut self) {
        if self.shards.values().any(|s| s.hold && s.max_time.is_none()) {
            return;
        }
        let lateness = self.core.cfg.engine.allowed_lateness.0;
        let Some(min_max) = self.shards.values().filter_map(|s| s.max_time).min() else {
            return;
        };
        let candidate = min_max.saturating_sub(lateness);
        if candidate > self.core.watermark {
            self.advance(candidate);
        }
    }

    /// Moves the watermark forward to `w` (if later): fires scheduler items before it and
    /// closes windows. Live mode uses this for the wall-clock idle advance.
    pub fn advance_to(&mut self, w: Millis) {
        if w > self.core.watermark {
            self.advance(w);
        }
    }

    fn advance(&mut self, w: Millis) {
        self.core.watermark = w;
        for shard in self.shards.values_mut() {
            while let Some(item) = shard.sched.pop_before(w) {
                shard.handle(&mut self.core, item);
            }
        }
        self.core.close_windows(w, false);
        if w >= self.next_sweep {
            self.sweep();
            self.next_sweep = w.saturating_add(HOUR);
        }
    }

    /// End of a finite input (SPEC §2): the watermark moves to the largest event time M;
    /// items before M fire, after-sales inputs at M are applied (timers at M stay pending);
    /// windows close and every remaining window with data is emitted as partial.
    pub fn finish(&mut self) {
        let Some(m) = self.max_event_time() else {
            return;
        };
        let m = m.max(self.core.watermark);
        self.core.watermark = m;
        for shard in self.shards.values_mut() {
            while let Some(item) = shard.sched.pop_before(m) {
                shard.handle(&mut self.core, item);
            }
            while let Some(item) = shard.sched.pop_input_at(m) {
                shard.handle(&mut self.core, item);
            }
        }
        self.core.close_windows(m, true);
    }

    /// Evicts idle state (SPEC §1 retention) and forgets ids past the dedup horizon. The same
    /// rules are applied lazily on access, so when this runs does not change any result.
    fn sweep(&mut self) {
        let w = self.core.watermark;
        for shard in self.shards.values_mut() {
            shard.sweep(&mut self.core, w);
        }
    }
}

impl Shard {
    fn new(partition: i32) -> Shard {
        Shard {
            partition,
            max_time: None,
            tickets: Slab::default(),
            ticket_ids: FxMap::default(),
            customers: Slab::default(),
            customer_ids: FxMap::default(),
            dedup: FxMap::default(),
            sched: Scheduler::default(),
            s5_clock: Millis::MIN,
            hold: false,
        }
    }

    /// The slot of a ticket that exists and has not expired; expired state is evicted here.
    fn live_ticket(&mut self, core: &mut Core, id: &str) -> Option<u32> {
        let &idx = self.ticket_ids.get(id)?;
        let e = &core.cfg.engine;
        let t = self.tickets.get(idx)?;
        if t.expired(
            core.watermark,
            e.ticket_retention_open.0,
            e.ticket_retention_solved.0,
        ) {
            self.evict_ticket(core, idx);
            return None;
        }
        Some(idx)
    }

    fn evict_ticket(&mut self, core: &mut Core, idx: u32) {
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
    fn customer(&mut self, core: &mut Core, key: &str, t: Millis) -> u32 {
        let retention = core.cfg.engine.customer_retention.0;
        if let Some(&idx) = self.customer_ids.get(key) {
            if let Some(c) = self.customers.get_mut(idx) {
                if c.evictable(core.watermark, retention) {
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

    fn hold(&mut self, time: Millis, customer: u32, input: Input) {
        if let Some(c) = self.customers.get_mut(customer) {
            c.refs += 1;
        }
        self.sched.push_input(time, customer, input);
    }

    fn timer(&mut self, due: Millis, what: What) {
        if let Some(c) = what.customer().and_then(|i| self.customers.get_mut(i)) {
            c.refs += 1;
        }
        self.sched.push_timer(due, what);
    }

    /// Applies one valid, non-duplicate event to state (SPEC §3), or says why it cannot be.
    fn apply(&mut self, core: &mut Core, ev: &Event<'_>) -> Result<(), Rejection> {
        let t = ev.time;
        let p = self.partition;
        // Late on arrival: still updates state and cumulative metrics, but is not an input of
        // the event-time-ordered after-sales logic (SPEC §5).
        let late = t < core.watermark;
        if late && is_signal_input(&ev.body) {
            core.stats.late_signal_inputs += 1;
        }
        match &ev.body {
            Body::TicketCreated {
                ticket,
                channel,
                priority,
                team,
                category,
            } => {
                if self.live_ticket(core, ticket).is_some() {
                    return Err(Rejection::TicketExists);
                }
                let cust = self.customer(core, &ev.customer, t);
                let team = core.teams.intern(team.as_deref().unwrap_or(DEFAULT_TEAM));
                let dims = Dims {
                    team: Some(team),
                    channel: Some(*channel),
                    priority: Some(*priority),
                    category: Some(*category),
                };
                let sla = &core.cfg.sla;
                let fr_due = t.saturating_add(sla.first_response.get(*priority));
                let res_due = t.saturating_add(sla.resolution.get(*priority));
                let tk = Ticket {
                    id: ticket.as_ref().into(),
                    customer: ev.customer.as_ref().into(),
                    dims,
                    created: t,
                    last_event: t,
                    public_agent_messages: 0,
                    first_response_seen: false,
                    solved_once: false,
                    open: true,
                    first_response: Clock {
                        due: fr_due,
                        state: ClockState::Running,
                    },
                    resolution: Clock {
                        due: res_due,
                        state: ClockState::Running,
                    },
                };
                core.gauges((Contribution::default(), dims), (tk.contribution(), dims));
                let (idx, generation) = self.tickets.insert(tk);
                self.ticket_ids.insert(ticket.as_ref().into(), idx);
                for (due, kind) in [
                    (fr_due, SlaKind::FirstResponse),
                    (res_due, SlaKind::Resolution),
                ] {
                    self.timer(
                        due,
                        What::Sla {
                            ticket: idx,
                            generation,
                            kind,
                        },
                    );
                }
                core.measure(t, dims, Kpi::Created, p);
                if !late {
                    self.hold(t, cust, Input::TicketCreated);
                }
            }
            Body::TicketMessage {
                ticket,
                author,
                public,
                ..
            } => {
                let idx = self
                    .live_ticket(core, ticket)
                    .ok_or(Rejection::UnknownTicket)?;
                self.customer(core, &ev.customer, t);
                let public_agent = *author == Author::Agent && *public;
                let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
                tk.last_event = tk.last_event.max(t);
                if !public_agent {
                    // System authors and internal notes never count (SPEC §3).
                    return Ok(());
                }
                let before = (tk.contribution(), tk.dims);
                tk.public_agent_messages += 1;
                let first = !tk.first_response_seen;
                tk.first_response_seen = true;
                let dims = tk.dims;
                let created = tk.created;
                let stop = stop_clock(tk, SlaKind::FirstResponse, t);
                let after = (tk.contribution(), tk.dims);
                let owner = tk.customer.clone();
                core.gauges(before, after);
                if first {
                    core.measure(t, dims, Kpi::FirstResponse(kpi::elapsed(created, t)), p);
                }
                if let Some(m) = stop {
                    core.measure(t, dims, m, p);
                }
                if !late {
                    let cust = self.customer(core, &owner, t);
                    self.hold(t, cust, Input::Contact);
                }
            }
            Body::TicketSolved { ticket, .. } => {
                let idx = self
                    .live_ticket(core, ticket)
                    .ok_or(Rejection::UnknownTicket)?;
                self.customer(core, &ev.customer, t);
                let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
                tk.last_event = tk.last_event.max(t);
                let before = (tk.contribution(), tk.dims);
                let first = !tk.solved_once;
                let solved = Kpi::Solved {
                    resolution: kpi::elapsed(tk.created, t),
                    first,
                    fcr: first && kpi::is_fcr(tk.public_agent_messages),
                };
                let mut stops = [None, None];
                if first {
                    tk.solved_once = true;
                    // The first solve stops the first-response clock if a reply has not.
                    stops = [
                        stop_clock(tk, SlaKind::FirstResponse, t),
                        stop_clock(tk, SlaKind::Resolution, t),
                    ];
                }
                tk.open = false;
                let dims = tk.dims;
                let after = (tk.contribution(), tk.dims);
                let owner = tk.customer.clone();
                let ticket_id = tk.id.clone();
                core.gauges(before, after);
                core.measure(t, dims, solved, p);
                for m in stops.into_iter().flatten() {
                    core.measure(t, dims, m, p);
                }
                if first && !late {
                    let cust = self.customer(core, &owner, t);
                    self.hold(t, cust, Input::FirstSolve(ticket_id));
                }
            }
            Body::TicketReopened { ticket } => {
                let idx = self
                    .live_ticket(core, ticket)
                    .ok_or(Rejection::UnknownTicket)?;
                self.customer(core, &ev.customer, t);
                let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
                tk.last_event = tk.last_event.max(t);
                let before = (tk.contribution(), tk.dims);
                tk.open = true;
                let after = (tk.contribution(), tk.dims);
                let dims = tk.dims;
                let owner = tk.customer.clone();
                core.gauges(before, after);
                core.measure(t, dims, Kpi::Reopened, p);
                if !late {
                    let cust = self.customer(core, &owner, t);
                    self.hold(t, cust, Input::Reopen);
                }
            }
            Body::TicketEscalated { ticket, team } => {
                let idx = self
                    .live_ticket(core, ticket)
                    .ok_or(Rejection::UnknownTicket)?;
                self.customer(core, &ev.customer, t);
                let new_team = team.as_deref().map(|tm| core.teams.intern(tm));
                let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
                tk.last_event = tk.last_event.max(t);
                // Counted under the team the ticket had before; the new team applies after.
                let old_dims = tk.dims;
                let before = (tk.contribution(), tk.dims);
                if let Some(nt) = new_team {
                    tk.dims.team = Some(nt);
                }
                let after = (tk.contribution(), tk.dims);
                let owner = tk.customer.clone();
                core.gauges(before, after);
                core.measure(t, old_dims, Kpi::Escalated, p);
                if !late {
                    let cust = self.customer(core, &owner, t);
                    self.hold(t, cust, Input::Escalation);
                }
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
            }
            Body::CustomerContacted { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                if !late {
                    self.hold(t, cust, Input::Contact);
                }
            }
            Body::SurveyCsat { score, ticket } => {
                let cust = self.customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                let known = dims.is_some();
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Csat(*score), p);
                if !late {
                    let input = Input::Csat {
                        score: *score,
                        ticket: ticket.as_deref().map(Into::into),
                        known,
                    };
                    self.hold(t, cust, input);
                }
            }
            Body::SurveyNps { score } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Nps(*score), p);
                if !late {
                    self.hold(t, cust, Input::Nps(*score));
                }
            }
            Body::SurveyCes { score, ticket } => {
                let cust = self.customer(core, &ev.customer, t);
                let dims = self.survey_dims(core, ticket.as_deref(), &ev.customer);
                core.measure(t, dims.unwrap_or(Dims::NONE), Kpi::Ces(*score), p);
                if !late {
                    self.hold(t, cust, Input::Ces(*score));
                }
            }
            Body::OrderPlaced { amount, .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::OrderPlaced(*amount), p);
                if !late {
                    self.hold(t, cust, Input::Order);
                }
            }
            Body::OrderReturned { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Returned, p);
                if !late {
                    self.hold(t, cust, Input::Return);
                }
            }
            Body::WarrantyClaimed { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::WarrantyClaim, p);
                if !late {
                    self.hold(t, cust, Input::WarrantyClaim);
                }
            }
            Body::CustomerChurned { .. } => {
                let cust = self.customer(core, &ev.customer, t);
                core.measure(t, Dims::NONE, Kpi::Churned, p);
                if late {
                    // Still counted in cxstream_customers_churned_total (every valid event).
                    let after_signal = self.customers.get(cust).is_some_and(|c| {
                        signalled_within(c, t, core.cfg.signals.effectiveness_horizon.0)
                    });
                    core.observe_only(t, Kpi::ChurnOutcome { after_signal });
                } else {
                    self.hold(t, cust, Input::Churn);
                }
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
                let Some(c) = self.customers.get_mut(customer) else {
                    return;
                };
                let before = c.pending_risks.len();
                c.pending_risks.retain(|(id, _)| *id != risk);
                if c.pending_risks.len() < before {
                    if c.pending_risks.is_empty() {
                        core.stats.customers_at_risk -= 1;
                    }
                    core.measure(time, Dims::NONE, Kpi::ChurnExpired, self.partition);
                }
            }
            What::CohortExpiry { customer, cohort } => {
                self.s5_clock = self.s5_clock.max(time);
                let Some(c) = self.customers.get_mut(customer) else {
                    return;
                };
                if let Some(i) = c.cohorts.iter().position(|k| k.id == cohort) {
                    let k = c.cohorts.swap_remove(i);
                    let band = Band::of(c.latest_csat(&k.ticket));
                    core.measure(
                        time,
                        Dims::NONE,
                        Kpi::Repurchase {
                            band,
                            converted: false,
                        },
                        self.partition,
                    );
                }
            }
        }
    }

    /// An SLA timer: the clock's due has passed with the clock still running (or stopped
    /// after its due) — a breach at the due, reported now, while the customer still waits.
    fn sla_due(&mut self, core: &mut Core, idx: u32, generation: u32, kind: SlaKind, due: Millis) {
        let Some(tk) = self.tickets.get_gen_mut(idx, generation) else {
            return;
        };
        let clock = tk.clock(kind);
        if !clock.pending() || clock.due != due {
            return;
        }
        let before = (tk.contribution(), tk.dims);
        tk.clock_mut(kind).state = ClockState::Breached;
        let after = (tk.contribution(), tk.dims);
        let dims = tk.dims;
        let record = Record::SlaBreached {
            due,
            customer: tk.customer.to_string(),
            ticket: tk.id.to_string(),
            sla: kind,
            priority: dims.priority.unwrap_or(crate::event::Priority::Normal),
            team: core.teams.name(dims.team.unwrap_or(0)).to_string(),
            channel: dims.channel.unwrap_or(crate::event::Channel::Email),
        };
        let owner = tk.customer.clone();
        core.gauges(before, after);
        core.measure(
            due,
            dims,
            Kpi::Sla {
                kind,
                breached: true,
            },
            self.partition,
        );
        core.emit(record);
        // SPEC §5: each SLA breach of the customer's ticket is a signal at its due, applied in
        // event-time order. A breach due before after-sales time already applied (a late
        // ticket) is late for that logic.
        if due >= self.s5_clock {
            self.s5_clock = due;
            let cust = self.customer(core, &owner, due);
            self.signal(core, cust, Signal::SlaBreach, due);
        } else {
            core.stats.late_signal_inputs += 1;
        }
    }

    /// Applies one after-sales input (SPEC §5) in event-time order.
    fn apply_input(&mut self, core: &mut Core, cust: u32, input: Input, t: Millis) {
        let p = self.partition;
        let cfg = &core.cfg.signals;
        match input {
            Input::Csat {
                score,
                ticket,
                known,
            } => {
                if known {
                    if let (Some(c), Some(tk)) = (self.customers.get_mut(cust), ticket.as_deref()) {
                        c.set_csat(tk, score);
                    }
                }
                if kpi::csat_negative(score) {
                    self.signal(core, cust, Signal::CsatNegative, t);
                }
                if kpi::csat_positive(score) {
                    self.signal(core, cust, Signal::Positive, t);
                }
                if kpi::csat_negative(score) {
                    self.open_recovery(core, cust, Trigger::Csat, score, ticket, t);
                }
            }
            Input::Nps(score) => {
                if kpi::nps_detractor(score) {
                    self.signal(core, cust, Signal::NpsDetractor, t);
                }
                if kpi::nps_positive(score) {
                    self.signal(core, cust, Signal::Positive, t);
                }
                if kpi::nps_detractor(score) {
                    self.open_recovery(core, cust, Trigger::Nps, score, None, t);
                }
            }
            Input::Ces(score) => {
                if kpi::ces_high_effort(score) {
                    self.signal(core, cust, Signal::CesHighEffort, t);
                }
            }
            Input::Reopen => self.signal(core, cust, Signal::Reopen, t),
            Input::Escalation => self.signal(core, cust, Signal::Escalation, t),
            Input::Return => self.signal(core, cust, Signal::Return, t),
            Input::WarrantyClaim => self.signal(core, cust, Signal::WarrantyClaim, t),
            Input::TicketCreated => {
                let repeat = self
                    .customers
                    .get_mut(cust)
                    .is_some_and(|c| c.note_ticket_created(t, cfg));
                if repeat {
                    self.signal(core, cust, Signal::RepeatContact, t);
                }
            }
            Input::FirstSolve(ticket) => {
                let horizon = cfg.repurchase_horizon.0;
                let Some(c) = self.customers.get_mut(cust) else {
                    return;
                };
                let id = c.next_id();
                c.cohorts.push(Cohort {
                    id,
                    ticket,
                    solved: t,
                });
                self.timer(
                    t.saturating_add(horizon),
                    What::CohortExpiry {
                        customer: cust,
                        cohort: id,
                    },
                );
            }
            Input::Order => {
                let Some(c) = self.customers.get_mut(cust) else {
                    return;
                };
                // Converted at the customer's first order in (t_solve, t_solve + horizon].
                let mut i = 0;
                while i < c.cohorts.len() {
                    if c.cohorts[i].solved < t {
                        let k = c.cohorts.swap_remove(i);
                        let band = Band::of(c.latest_csat(&k.ticket));
                        core.measure(
                            t,
                            Dims::NONE,
                            Kpi::Repurchase {
                                band,
                                converted: true,
                            },
                            p,
                        );
                    } else {
                        i += 1;
                    }
                }
            }
            Input::Churn => {
                let Some(c) = self.customers.get_mut(cust) else {
                    return;
                };
                let after_signal = signalled_within(c, t, cfg.effectiveness_horizon.0);
                core.measure(t, Dims::NONE, Kpi::ChurnOutcome { after_signal }, p);
                // Each pending churn.risk record is confirmed by the first churn in [s, s + 90 d].
                let confirmed = c.pending_risks.iter().filter(|(_, s)| *s <= t).count();
                c.pending_risks.retain(|(_, s)| *s > t);
                if confirmed > 0 && c.pending_risks.is_empty() {
                    core.stats.customers_at_risk -= 1;
                }
                for _ in 0..confirmed {
                    core.measure(t, Dims::NONE, Kpi::ChurnConfirmed, p);
                }
            }
            Input::Contact => {
                let Some(c) = self.customers.get_mut(cust) else {
                    return;
                };
                if let Some(case) = c.recovery.as_ref() {
                    if case.opened <= t && t <= case.due {
                        let opened = case.opened;
                        c.recovery = None;
                        core.stats.recovery_open_cases -= 1;
                        core.measure(t, Dims::NONE, Kpi::RecoveryAnswered(t - opened), p);
                    }
                }
            }
        }
    }

    /// A churn-risk signal (SPEC §5).
    fn signal(&mut self, core: &mut Core, cust: u32, signal: Signal, t: Millis) {
        let cfg = &core.cfg.signals;
        let w = signal.weight(&cfg.weights);
        let Some(c) = self.customers.get_mut(cust) else {
            return;
        };
        c.risk.apply(signal, w, t, cfg.half_life.0);
        if w > 0.0 && c.risk_due(t, cfg) {
            let id = c.next_id();
            if c.pending_risks.is_empty() {
                core.stats.customers_at_risk += 1;
            }
            c.pending_risks.push((id, t));
            c.last_risk = Some(t);
            let record = Record::ChurnRisk {
                time: t,
                customer: c.key.to_string(),
                score: c.risk.score,
                reasons: c.risk.reasons(),
            };
            let expiry = t.saturating_add(cfg.effectiveness_horizon.0);
            core.emit(record);
            core.measure(t, Dims::NONE, Kpi::ChurnSignalled, self.partition);
            self.timer(
                expiry,
                What::RiskExpiry {
                    customer: cust,
                    risk: id,
                },
            );
        }
    }

    fn open_recovery(
        &mut self,
        core: &mut Core,
        cust: u32,
        trigger: Trigger,
        score: u8,
        ticket: Option<Box<str>>,
        t: Millis,
    ) {
        let due_in = core.cfg.signals.recovery_due.0;
        let Some(c) = self.customers.get_mut(cust) else {
            return;
        };
        if c.recovery.is_some() {
            return;
        }
        let id = c.next_id();
        let due = t.saturating_add(due_in);
        c.recovery = Some(RecoveryCase {
            id,
            opened: t,
            due,
            trigger,
        });
        core.stats.recovery_open_cases += 1;
        let record = Record::RecoveryNeeded {
            time: t,
            customer: c.key.to_string(),
            due,
            trigger,
            score,
            ticket: ticket.map(|t| t.to_string()),
        };
        core.emit(record);
        core.measure(t, Dims::NONE, Kpi::RecoveryOpened, self.partition);
        self.timer(
            due,
            What::RecoveryDue {
                customer: cust,
                case: id,
            },
        );
    }

    fn recovery_due(&mut self, core: &mut Core, cust: u32, case: u64, due: Millis) {
        let Some(c) = self.customers.get_mut(cust) else {
            return;
        };
        let Some(open) = c.recovery.as_ref().filter(|r| r.id == case) else {
            return;
        };
        let trigger = open.trigger;
        c.recovery = None;
        core.stats.recovery_open_cases -= 1;
        let record = Record::RecoveryOverdue {
            time: due,
            customer: c.key.to_string(),
            due,
            trigger,
        };
        core.emit(record);
        core.measure(due, Dims::NONE, Kpi::RecoveryOverdue, self.partition);
    }

    fn sweep(&mut self, core: &mut Core, w: Millis) {
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
}

/// A customer had a `churn.risk` record in [t − horizon, t].
fn signalled_within(c: &Customer, t: Millis, horizon: Millis) -> bool {
    c.last_risk.is_some_and(|s| s >= t - horizon && s <= t)
}

/// Stops an SLA clock at `t` if it is running: achieved if at or before its due (a
/// measurement at the stop); otherwise the breach is left for the timer to report at the due.
fn stop_clock(tk: &mut Ticket, kind: SlaKind, t: Millis) -> Option<Kpi> {
    let clock = tk.clock_mut(kind);
    if clock.state != ClockState::Running {
        return None;
    }
    if kpi::sla_achieved(t, clock.due) {
        clock.state = ClockState::Achieved;
        Some(Kpi::Sla {
            kind,
            breached: false,
        })
    } else {
        clock.state = ClockState::StoppedLate;
        None
    }
}

/// Events whose application feeds the after-sales logic.
fn is_signal_input(b: &Body<'_>) -> bool {
    !matches!(b, Body::ContactHandled { .. })
}
