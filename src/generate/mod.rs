//! `cxstream generate`: a seeded, deterministic generator of realistic SPEC §1 events.
//!
//! The generator is a small discrete-event simulation over *event time*. A queue holds every
//! scheduled future event keyed by `(time, sequence)`; each step pops the earliest one and
//! writes it as one JSON line. Nothing is precomputed: a ticket's next event is scheduled only
//! when its previous one has been written, so memory depends on the arrival rate and the
//! simulated horizons (a few days of open tickets, up to 60 days of pending repurchases and
//! churns, 120 days of warranty claims), never on the number of events asked for (~8 MB for
//! 10 million lines with the defaults). The queue is a calendar queue: a binary heap for the
//! next ~15 minutes and per-bucket vectors beyond, popping in exactly `(time, sequence)` order.
//!
//! Population: with the defaults (5000 customers, 600 tickets/h) a customer opens about three
//! tickets a day, which is fine for load but saturates per-customer after-sales signals
//! (repeat contacts, churn risk, repurchase within 30 days, recovery answered by the next
//! ticket reply). Around a million customers give realistic per-customer rates at 600
//! tickets/h (then repurchase within 30 days is ~71 % after CSAT ≥ 4, ~55 % after 3, ~38 %
//! after ≤ 2; ~60 % of recovery cases are answered within 24 h, ~20 % late, ~20 % never).
//!
//! What is simulated:
//!
//! * **Tickets** arrive as a Poisson process (`tickets_per_hour`, modulated by a ±45 % daily
//!   cycle that keeps the mean). Each is a little state machine: `ticket.created` → optional
//!   `system` auto-reply and internal note (`public:false`) → first public agent reply after a
//!   log-normal delay scaled by the priority's first-response target → customer/agent exchanges
//!   → sometimes `ticket.escalated` to a new team → `ticket.solved` after a log-normal delay
//!   scaled by the resolution target → sometimes `ticket.reopened` → solved again. Some tickets
//!   are solved with one agent message (FCR), some without any public reply, some are never
//!   answered or never solved. Roughly 10–20 % of tickets breach each SLA.
//! * **Handled contacts**: one per phone/chat/in-person ticket (the call or chat session), some
//!   "email worked" ones at the first reply of written tickets, and some without a ticket.
//! * **Surveys**: CSAT / CES naming the ticket hours after its last solve, scores skewed by the
//!   ticket's experience (SLA breaches, escalation, reopen, back-and-forth); NPS without ticket,
//!   skewed by the customer's mood.
//! * **After-sales**: orders (2-decimal amounts), returns and warranty claims of earlier orders
//!   (which in turn open tickets), repurchases within 30 days that are likelier after a good
//!   experience, churn that is likelier after a bad one (a churned customer is replaced by a new
//!   one), and `customer.contacted` service-recovery follow-ups after a bad CSAT/NPS, most
//!   within 24 h, some late, some never.
//! * **Faults** (optional): invalid lines of every SPEC §1 class, verbatim duplicates of a
//!   recent line (never more than ~10 s of event time back), orphan ticket events for tickets
//!   that never exist (ids `t9…`). Each line is independently invalid / duplicate / orphan with
//!   the given probability, so the ratios hold approximately.
//!
//! Ordering: lines come out in scheduled-time order; some non-ticket events carry a time up to
//! 4 s earlier (producer clock skew), so no line is more than ~5 s behind the largest time
//! written before it. One ticket's lifecycle events are strictly increasing in time (at least
//! 1 s apart). About 5 % of timestamps use a non-`Z` offset and 1 % carry microseconds; both
//! denote exactly the instant reported in [`GeneratedLine::time_ms`].
//!
//! Determinism: the same options give byte-identical output (the RNG is `StdRng` of rand 0.8
//! seeded with `seed`; no hashing, no wall clock).
//!
//! Layout, one idea per file:
//!
//! * `mod.rs` — the public API ([`GenerateOptions`], [`Generator`], [`GeneratedLine`],
//!   [`write_jsonl`]) and the main loop that picks a real, invalid, duplicate or orphan line;
//! * `tables.rs` — the calibration: mixes, SLA targets, teams, process rates, texts;
//! * `schedule.rs` — the calendar queue of future events;
//! * `sim.rs` — the population, what can be scheduled, the background processes;
//! * `ticket.rs` — one ticket's life cycle;
//! * `surveys.rs` — surveys, mood, service recovery, repurchase and churn after service;
//! * `aftersales.rs` — contacts, orders, returns, warranty claims, churn lines;
//! * `faults.rs` — invalid lines of every SPEC §1 class, as a table of cases;
//! * `orphans.rs` — ticket events of tickets that never exist;
//! * `duplicates.rs` — verbatim re-sends of recent lines;
//! * `json.rs` — writing a line by hand; `random.rs` — the distributions drawn from.

use std::io::{self, BufWriter, Write};

use rand::rngs::StdRng;
use rand::SeedableRng;

mod aftersales;
mod duplicates;
mod faults;
mod json;
mod orphans;
mod random;
mod schedule;
mod sim;
mod surveys;
mod tables;
mod ticket;

use duplicates::Recent;
use json::Line;
use schedule::Schedule;
use sim::{Customer, Ev};
use tables::{DEFAULT_START_MS, FIRST_ORDER, PROC_ARRIVAL, PROC_RATE};
use ticket::Ticket;

use crate::ts::HOUR;

/// Options of [`Generator`] and [`write_jsonl`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Number of lines to write (including injected bad lines).
    pub events: u64,
    /// Seed of the random generator: the same options give the same lines.
    pub seed: u64,
    /// Event time of the first event, ms since the UNIX epoch (default 2026-11-22T08:00:00Z).
    pub start_ms: i64,
    /// Size of the customer population (default 5000); churned customers are replaced.
    pub customers: u32,
    /// Ticket arrival rate in event time (default 600.0).
    pub tickets_per_hour: f64,
    /// Fraction of lines that are invalid (default 0.0).
    pub invalid_ratio: f64,
    /// Fraction of lines that re-send an earlier event verbatim (default 0.0).
    pub duplicate_ratio: f64,
    /// Fraction of lines that are ticket events for a never-created ticket (default 0.0).
    pub orphan_ratio: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            events: 100_000,
            seed: 1,
            start_ms: DEFAULT_START_MS,
            customers: 5000,
            tickets_per_hour: 600.0,
            invalid_ratio: 0.0,
            duplicate_ratio: 0.0,
            orphan_ratio: 0.0,
        }
    }
}

/// One generated line: the JSON text (without trailing newline), its event time in ms and its
/// Kafka key (the customer id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLine {
    /// The JSON text, without trailing newline.
    pub line: String,
    /// The event time in ms since the UNIX epoch (the instant its `time` field denotes).
    pub time_ms: i64,
    /// The Kafka key: the customer id (`c0000042`).
    pub key: String,
}

/// A streaming generator: yields one JSON line (without trailing newline) at a time, with its
/// event time in ms.
pub struct Generator {
    events: u64,
    produced: u64,
    rng: StdRng,
    queue: Schedule<Ev>,
    /// Live tickets; `free` lists the indexes of finished ones, for reuse.
    tickets: Vec<Ticket>,
    free: Vec<u32>,
    customers: Vec<Customer>,
    next_customer: u32,
    next_ticket: u64,
    next_order: u64,
    next_orphan: u64,
    /// Scheduled time of the last real event written.
    now: i64,
    start_ms: i64,
    /// Tickets per ms (mean).
    rate_per_ms: f64,
    /// Time of each background process's last firing (ms, fractional).
    proc_clock: [f64; PROC_RATE.len()],
    /// Cumulative probabilities of an invalid / duplicate / orphan line.
    p_invalid: f64,
    p_dup: f64,
    p_orphan: f64,
    /// The line just written.
    out: Line,
    /// The last few real lines, for duplicates.
    recent: Recent,
}

impl Generator {
    /// A generator for `opts`; nothing is written until it is iterated.
    pub fn new(opts: GenerateOptions) -> Self {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let n = opts.customers.max(1);
        let customers = (0..n).map(|i| Customer::new(i + 1, &mut rng)).collect();
        // At least one ticket per 1000 h, so the stream never runs dry.
        let rate = if opts.tickets_per_hour.is_finite() {
            opts.tickets_per_hour.max(1e-3)
        } else {
            600.0
        };
        let ratio = |r: f64| {
            if r.is_finite() {
                r.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let (mut inv, mut dup, mut orph) = (
            ratio(opts.invalid_ratio),
            ratio(opts.duplicate_ratio),
            ratio(opts.orphan_ratio),
        );
        let sum = inv + dup + orph;
        if sum > 1.0 {
            inv /= sum;
            dup /= sum;
            orph /= sum;
        }
        let mut g = Generator {
            events: opts.events,
            produced: 0,
            rng,
            // Buckets of about a thousand events (15 min at 600 tickets/h).
            queue: Schedule::new(
                ((150.0 / rate) * HOUR as f64).clamp(1e3, HOUR as f64) as i64,
                opts.start_ms,
            ),
            tickets: Vec::new(),
            free: Vec::new(),
            customers,
            next_customer: n + 1,
            next_ticket: 1,
            next_order: FIRST_ORDER,
            next_orphan: 1,
            now: opts.start_ms,
            start_ms: opts.start_ms,
            rate_per_ms: rate / HOUR as f64,
            proc_clock: [opts.start_ms as f64; PROC_RATE.len()],
            p_invalid: inv,
            p_dup: inv + dup,
            p_orphan: inv + dup + orph,
            out: Line::new(opts.start_ms),
            recent: Recent::new(),
        };
        // The first ticket arrives exactly at `start_ms`; the other processes start later.
        g.queue.push(opts.start_ms, Ev::Proc(PROC_ARRIVAL as u8));
        for p in 1..PROC_RATE.len() {
            g.schedule_proc(p);
        }
        g
    }

    /// Writes the next line into `self.out`; `false` when all lines have been written.
    fn step(&mut self) -> bool {
        if self.produced >= self.events {
            return false;
        }
        self.produced += 1;
        let u = self.unif();
        if u < self.p_invalid {
            self.write_invalid();
            return true;
        }
        if u < self.p_dup {
            if self.write_duplicate() {
                return true;
            }
        } else if u < self.p_orphan {
            self.write_orphan();
            return true;
        }
        self.write_real();
        true
    }

    /// Runs the simulation until an event writes a line.
    fn write_real(&mut self) {
        loop {
            let Some((t, ev)) = self.queue.pop() else {
                // Cannot happen (the arrival process always reschedules itself), but never
                // loop forever.
                self.queue
                    .push(self.now + HOUR, Ev::Proc(PROC_ARRIVAL as u8));
                continue;
            };
            self.now = self.now.max(t);
            if self.fire(t, ev) {
                break;
            }
        }
        // Remember it for duplicates.
        if self.p_dup > self.p_invalid {
            self.recent.remember(&self.out);
        }
    }
}

impl Iterator for Generator {
    type Item = GeneratedLine;

    fn next(&mut self) -> Option<GeneratedLine> {
        if !self.step() {
            return None;
        }
        Some(GeneratedLine {
            line: self.out.text.clone(),
            time_ms: self.out.time_ms,
            key: self.out.key.clone(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.events.saturating_sub(self.produced);
        let n = usize::try_from(left).unwrap_or(usize::MAX);
        (n, usize::try_from(left).ok())
    }
}

/// Writes `opts.events` lines (each followed by `\n`) to `out`; returns the number of lines.
pub fn write_jsonl<W: Write>(opts: GenerateOptions, out: W) -> io::Result<u64> {
    let mut g = Generator::new(opts);
    let mut w = BufWriter::with_capacity(1 << 16, out);
    let mut n = 0u64;
    while g.step() {
        w.write_all(g.out.text.as_bytes())?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_start_is_the_documented_instant() {
        assert_eq!(
            crate::ts::format_ms(DEFAULT_START_MS),
            "2026-11-22T08:00:00Z"
        );
    }
}
