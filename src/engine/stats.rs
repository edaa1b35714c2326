//! Pipeline counters (SPEC §6 "the pipeline itself") and what happened to one input. They are
//! per process and cumulative: the metrics layer copies them into Prometheus counters, replay
//! prints them as its summary.

use std::collections::BTreeMap;

use crate::event::{EventType, InvalidReason};
use crate::output::Rejection;

/// Cumulative counters of one engine.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Applied events by type (index: `EventType as usize`).
    pub events: [u64; EventType::ALL.len()],
    /// Invalid inputs by reason (index: `InvalidReason as usize`).
    pub invalid: [u64; InvalidReason::ALL.len()],
    /// `ticket.created` for a ticket that already exists (dead-lettered).
    pub ticket_exists: u64,
    /// Duplicates within the dedup horizon (changed nothing).
    pub duplicates: u64,
    /// Ticket events naming an unknown ticket (dead-lettered).
    pub orphans: u64,
    /// Applied events whose time was before the watermark.
    pub late_events: u64,
    /// Window contributions dropped because their window had closed.
    pub late_contributions: u64,
    /// After-sales inputs not applied because they were late on arrival.
    pub late_signal_inputs: u64,
    /// Tickets evicted by retention.
    pub evicted_tickets: u64,
    /// Customers evicted by retention.
    pub evicted_customers: u64,
    /// Output records emitted, by type.
    pub records: BTreeMap<&'static str, u64>,
    /// Customers with a `churn.risk` awaiting its outcome (gauge).
    pub customers_at_risk: i64,
    /// Open service-recovery cases (gauge).
    pub recovery_open_cases: i64,
}

impl Stats {
    /// Adds another set of counters (totals over partitions).
    pub fn add(&mut self, o: &Stats) {
        for (a, b) in self.events.iter_mut().zip(o.events) {
            *a += b;
        }
        for (a, b) in self.invalid.iter_mut().zip(o.invalid) {
            *a += b;
        }
        self.ticket_exists += o.ticket_exists;
        self.duplicates += o.duplicates;
        self.orphans += o.orphans;
        self.late_events += o.late_events;
        self.late_contributions += o.late_contributions;
        self.late_signal_inputs += o.late_signal_inputs;
        self.evicted_tickets += o.evicted_tickets;
        self.evicted_customers += o.evicted_customers;
        for (k, v) in &o.records {
            *self.records.entry(k).or_default() += v;
        }
        self.customers_at_risk += o.customers_at_risk;
        self.recovery_open_cases += o.recovery_open_cases;
    }

    /// Applied events of every type.
    pub fn events_total(&self) -> u64 {
        self.events.iter().sum()
    }

    /// Invalid inputs of every reason, `ticket exists` included.
    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().sum::<u64>() + self.ticket_exists
    }
}

/// What happened to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Applied to state.
    Applied,
    /// Invalid (SPEC §1): dead-lettered.
    Invalid,
    /// A duplicate within the horizon: changed nothing.
    Duplicate,
    /// Valid but dead-lettered (orphan, ticket exists).
    Rejected(Rejection),
}
