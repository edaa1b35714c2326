//! The KPI engine (SPEC §1–§5): decoded events in; measurements, alert records and closed
//! windows out. Nothing here reads bytes: sources decode ([`crate::source`]) and hand over
//! events, or the reason an input is invalid.
//!
//! ```text
//! mod.rs        this facade: the Engine API used by replay, the Kafka runtime and tests
//! core.rs       what the partitions share during a step: windows, watermark, output, stats
//! partition.rs  one input partition's state, and the dispatch of an applied event
//! tickets.rs    ticket events and SLA clocks (SPEC §3), with one shared preamble
//! signals.rs    after-sales logic (SPEC §5): churn risk, recovery, repurchase
//! watermark.rs  per-partition event-time progress and the watermark
//! sched.rs      the event-time scheduler of timers and held after-sales inputs
//! ticket.rs, customer.rs, slab.rs, intern.rs, stats.rs, observer.rs  plain data
//! ```
//!
//! State is sharded by input partition: each owns its tickets, customers, dedup memory,
//! scheduler and event-time clock. Windows and the watermark are shared: the watermark is the
//! minimum over the partitions that have data of (max event time − allowed lateness), never
//! moving back.
//!
//! Order of work for each event (SPEC §2): apply it to state; advance the watermark; fire the
//! scheduler items (SLA timers, after-sales inputs and timers) strictly before the new
//! watermark, in time order; then close the windows whose end the watermark reached.

mod core;
mod customer;
mod intern;
mod observer;
mod partition;
mod sched;
mod signals;
mod slab;
mod stats;
mod ticket;
mod tickets;
mod watermark;

pub use customer::RiskScore;
pub use intern::Interner;
pub use observer::Observer;
pub use stats::{Disposition, Stats};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::event::{DecodeError, Event, SourcePos, DEFAULT_TEAM};
use crate::output::{Record, Rejection};
use crate::ts::{Millis, HOUR};
use crate::window::WindowStore;

use self::core::Core;
use partition::Partition;
use watermark::Watermark;

/// The KPI engine: per-partition state, shared windows and watermark, and the records
/// produced so far (drained by a sink).
pub struct Engine {
    /// What the partitions share.
    core: Core,
    /// The state of each input partition.
    partitions: BTreeMap<i32, Partition>,
    /// Watermark at which the next retention sweep runs.
    next_sweep: Millis,
}

impl Engine {
    /// An engine with no state, for `cfg`.
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
                watermark: Watermark::default(),
                out: Vec::new(),
                stats: Stats::default(),
                observer: None,
            },
            partitions: BTreeMap::new(),
            next_sweep: Millis::MIN,
        }
    }

    /// Sends every measurement and gauge change to `o` (the Prometheus layer).
    pub fn set_observer(&mut self, o: Box<dyn Observer>) {
        self.core.observer = Some(o);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.core.cfg
    }

    /// Cumulative counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Continues the cumulative counters of `previous` (live mode replaces the engine when a
    /// rebalance moves partitions with open windows away; the counters stay monotonic).
    pub fn carry_stats_from(&mut self, previous: &Engine) {
        self.core.stats = previous.core.stats.clone();
    }

    /// Team names by interned id.
    pub fn teams(&self) -> &Interner {
        &self.core.teams
    }

    /// The current watermark, once any partition has data.
    pub fn watermark(&self) -> Option<Millis> {
        self.core.watermark.value()
    }

    /// Largest event time seen on any partition.
    pub fn max_event_time(&self) -> Option<Millis> {
        self.partitions
            .values()
            .filter_map(|s| s.clock.max_time)
            .max()
    }

    /// Records produced so far (alerts, closed windows, dead letters), in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Record> {
        self.core.out.drain(..)
    }

    /// Records produced and not drained yet.
    pub fn pending_records(&self) -> usize {
        self.core.out.len()
    }

    /// Tickets held in state.
    pub fn tickets_held(&self) -> usize {
        self.partitions.values().map(|s| s.tickets.len()).sum()
    }

    /// Customers held in state.
    pub fn customers_held(&self) -> usize {
        self.partitions.values().map(|s| s.customers.len()).sum()
    }

    /// Timers and held after-sales inputs waiting for the watermark.
    pub fn scheduled_items(&self) -> usize {
        self.partitions.values().map(|s| s.sched.len()).sum()
    }

    /// Window × group aggregates open.
    pub fn open_window_aggregates(&self) -> usize {
        self.core.windows.open_aggregates()
    }

    fn partition(&mut self, p: i32) -> &mut Partition {
        self.partitions
            .entry(p)
            .or_insert_with(|| Partition::new(p))
    }

    /// Makes sure state exists for `partition` (on assignment).
    pub fn assign(&mut self, partition: i32) {
        self.partition(partition);
    }

    /// Drops the state of a revoked partition: it goes away and no longer holds the
    /// watermark back.
    pub fn revoke(&mut self, partition: i32) {
        if let Some(s) = self.partitions.remove(&partition) {
            s.release_gauges(&mut self.core);
        }
    }

    /// An invalid input (SPEC §1): counted by reason and dead-lettered with its payload and
    /// source position. It changes no state.
    pub fn invalid(&mut self, err: &DecodeError, payload: &[u8], pos: SourcePos) -> Disposition {
        self.core.stats.invalid[err.reason as usize] += 1;
        self.core.emit(Record::DeadLetter {
            reason: err.message.clone(),
            payload: payload.to_vec(),
            source: pos,
        });
        Disposition::Invalid
    }

    /// Processes a decoded event from `partition` (SPEC §1–§2); `dead_letter` supplies payload
    /// and position if it must be dead-lettered.
    pub fn process_event(
        &mut self,
        partition: i32,
        ev: &Event<'_>,
        dead_letter: impl FnOnce() -> (Vec<u8>, SourcePos),
    ) -> Disposition {
        let core = &mut self.core;
        let shard = self
            .partitions
            .entry(partition)
            .or_insert_with(|| Partition::new(partition));
        let w = core.watermark.get();
        // SPEC §1: a duplicate id within the horizon changes nothing.
        if shard.is_duplicate(&ev.id, w, core.cfg.engine.dedup_horizon.0) {
            core.stats.duplicates += 1;
            return Disposition::Duplicate;
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
        shard.remember(&ev.id, ev.time);
        core.stats.events[ev.body.event_type() as usize] += 1;
        if ev.time < w {
            core.stats.late_events += 1;
        }
        shard.clock.observe(ev.time);
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
        self.partition(partition).clock.hold = hold;
        if !hold {
            self.step_watermark();
        }
    }

    /// SPEC §2: watermark = min over partitions with data of (max event time − lateness).
    fn step_watermark(&mut self) {
        let lateness = self.core.cfg.engine.allowed_lateness.0;
        let clocks = self.partitions.values().map(|p| &p.clock);
        if let Some(w) = Watermark::candidate(clocks, lateness) {
            self.advance_to(w);
        }
    }

    /// Moves the watermark forward to `w` (if later): fires scheduler items before it and
    /// closes windows. Live mode uses this for the wall-clock idle advance.
    pub fn advance_to(&mut self, w: Millis) {
        if !self.core.watermark.advance(w) {
            return;
        }
        for p in self.partitions.values_mut() {
            p.fire_before(&mut self.core, w);
        }
        self.core.close_windows(w, false);
        if w >= self.next_sweep {
            for p in self.partitions.values_mut() {
                p.sweep(&mut self.core);
            }
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
        let m = m.max(self.core.watermark.get());
        self.core.watermark.advance(m);
        for p in self.partitions.values_mut() {
            p.finish_at(&mut self.core, m);
        }
        self.core.close_windows(m, true);
    }
}
