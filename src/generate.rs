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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, BufWriter, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Exp1, StandardNormal};

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const NEVER: i64 = i64::MAX;

/// 2026-11-22T08:00:00Z in ms since the UNIX epoch.
const DEFAULT_START_MS: i64 = 1_795_334_400_000;

const CHANNELS: [&str; 7] = [
    "email",
    "phone",
    "chat",
    "social",
    "web_form",
    "in_person",
    "messenger",
];
const CH_EMAIL: u8 = 0;
const CH_PHONE: u8 = 1;
const CH_CHAT: u8 = 2;
const CH_WEB_FORM: u8 = 4;
const CH_IN_PERSON: u8 = 5;
const CH_MESSENGER: u8 = 6;
const CHANNEL_W: [u32; 7] = [34, 20, 20, 5, 12, 3, 6];
/// Scale of the first-reply delay per channel (live channels are answered at once).
const CHANNEL_FRT: [f64; 7] = [1.25, 0.30, 0.35, 1.0, 1.25, 0.25, 0.8];

const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
const PRIORITY_W: [u32; 4] = [5, 20, 55, 20];
const FRT_TARGET: [i64; 4] = [15 * MIN, HOUR, 4 * HOUR, 24 * HOUR];
const RES_TARGET: [i64; 4] = [4 * HOUR, 8 * HOUR, 24 * HOUR, 72 * HOUR];
const ESCALATE_P: [f64; 4] = [0.22, 0.14, 0.08, 0.05];

const CATEGORIES: [&str; 7] = [
    "warranty",
    "return",
    "complaint",
    "question",
    "tech_support",
    "consultation",
    "other",
];
const CAT_WARRANTY: u8 = 0;
const CAT_RETURN: u8 = 1;
const CAT_OTHER: u8 = 6;
const CATEGORY_W: [u32; 7] = [10, 14, 12, 28, 20, 8, 8];

/// Teams; index 6 is the pool of agents of tickets without a team (`unassigned`).
const TEAMS: [&str; 7] = [
    "billing",
    "tech",
    "logistics",
    "returns",
    "vip",
    "escalations",
    "general",
];
const T_BILLING: u8 = 0;
const T_TECH: u8 = 1;
const T_LOGISTICS: u8 = 2;
const T_RETURNS: u8 = 3;
const T_VIP: u8 = 4;
const T_ESCALATIONS: u8 = 5;
const T_UNASSIGNED: u8 = 6;
const AGENTS_PER_TEAM: u8 = 12;

const OFFSETS_MIN: [i32; 8] = [120, -300, 60, 330, -180, 540, -420, -210];
const RETURN_REASONS: [&str; 6] = [
    "wrong size",
    "damaged in transit",
    "not as described",
    "changed mind",
    "defective",
    "arrived too late",
];
const CHURN_REASONS: [&str; 6] = [
    "cancelled subscription",
    "closed account",
    "switched to competitor",
    "too expensive",
    "poor service",
    "moved abroad",
];
const PRODUCTS: [&str; 8] = [
    "headphones-x2",
    "smartwatch-s5",
    "coffee-machine-cm300",
    "vacuum-robot-r7",
    "laptop-pro-14",
    "e-bike-city-3",
    "tv-oled-55",
    "router-ax6000",
];

/// Rates of the background processes, relative to `tickets_per_hour`.
const PROC_ARRIVAL: usize = 0;
const PROC_HANDLED: usize = 1;
const PROC_NPS: usize = 2;
const PROC_ORDER: usize = 3;
const PROC_CONTACT: usize = 4;
const PROC_CHURN: usize = 5;
const PROC_RETURN: usize = 6;
const PROC_WARRANTY: usize = 7;
const PROC_RATE: [f64; 8] = [0.98, 0.08, 0.05, 0.25, 0.01, 0.005, 0.012, 0.008];
/// Orders placed before the stream starts have numbers below this one.
const FIRST_ORDER: u64 = 1_000_000;
const DIURNAL_AMPLITUDE: f64 = 0.45;

/// Options of [`Generator`] and [`write_jsonl`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Number of lines to write (including injected bad lines).
    pub events: u64,
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
    pub line: String,
    pub time_ms: i64,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    System,
    Note,
    Escalate,
    FirstReply,
    Message,
    Solve,
    Reopen,
}

#[derive(Debug, Clone, Copy)]
struct Ticket {
    no: u64,
    cust: u32,
    slot: u32,
    created: i64,
    /// Planned next solve (NEVER: none).
    solve_at: i64,
    system_at: i64,
    note_at: i64,
    escalate_at: i64,
    /// Next event of the main chain (replies, messages, solve, reopen).
    main_at: i64,
    main_kind: Step,
    /// What the pending heap entry will write.
    next: Step,
    /// When the first-response clock stopped (NEVER: still running).
    first_stop: i64,
    first_solve: i64,
    /// Remaining messages before the next solve, LSB first: 1 = agent, 0 = customer.
    msgs_mask: u16,
    msgs_left: u8,
    channel: u8,
    priority: u8,
    team: u8,
    agent: u8,
    agent_public: u8,
    solves: u8,
    reopens: u8,
    escalated: bool,
}

#[derive(Debug, Clone, Copy)]
struct Customer {
    no: u32,
    mood: f32,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Proc(u8),
    NewTicket {
        slot: u32,
        cust: u32,
        category: u8,
    },
    Ticket(u32),
    Handled {
        cust: u32,
        channel: u8,
        team: u8,
        agent: u8,
        handle_ms: u32,
        ticket: u64,
    },
    Csat {
        slot: u32,
        cust: u32,
        score: u8,
        team: u8,
        ticket: u64,
    },
    Ces {
        cust: u32,
        score: u8,
        ticket: u64,
    },
    Order {
        slot: u32,
        cust: u32,
    },
    Return {
        slot: u32,
        cust: u32,
        order: u64,
    },
    Warranty {
        slot: u32,
        cust: u32,
        order: u64,
        product: u8,
    },
    Contacted {
        cust: u32,
        team: u8,
        agent: u8,
        channel: u8,
    },
    Churn {
        slot: u32,
        cust: u32,
        reason: u8,
    },
}

struct Sched {
    t: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Sched {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.seq == o.seq
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sched {
    // Reversed: BinaryHeap is a max-heap, we want the earliest (then first scheduled) on top.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// The schedule: a calendar queue. Events due before `horizon` sit in a small binary heap;
/// later ones wait in per-bucket vectors and move into the heap when their bucket comes up.
/// Popping is in `(time, sequence)` order exactly as with a single heap, but the heap stays
/// small (minutes of events) although orders, returns and churns are scheduled weeks ahead.
struct Schedule {
    near: BinaryHeap<Sched>,
    far: BTreeMap<i64, Vec<Sched>>,
    bucket_ms: i64,
    horizon: i64,
}

impl Schedule {
    fn new(bucket_ms: i64, start: i64) -> Self {
        let bucket_ms = bucket_ms.max(1);
        let horizon = (start.div_euclid(bucket_ms) + 1).saturating_mul(bucket_ms);
        Schedule {
            near: BinaryHeap::new(),
            far: BTreeMap::new(),
            bucket_ms,
            horizon,
        }
    }

    fn push(&mut self, s: Sched) {
        if s.t < self.horizon {
            self.near.push(s);
        } else {
            let b = s.t.div_euclid(self.bucket_ms);
            self.far.entry(b).or_default().push(s);
        }
    }

    fn pop(&mut self) -> Option<Sched> {
        while self.near.is_empty() {
            let (b, v) = self.far.pop_first()?;
            self.horizon = (b + 1).saturating_mul(self.bucket_ms);
            self.near.extend(v);
        }
        self.near.pop()
    }
}

/// Cache of the `YYYY-MM-DDT` prefix of the last two days written.
struct DateCache {
    day: [i64; 2],
    text: [String; 2],
    victim: usize,
}

impl DateCache {
    fn new() -> Self {
        DateCache {
            day: [i64::MIN; 2],
            text: [String::new(), String::new()],
            victim: 0,
        }
    }

    fn prefix(&mut self, day: i64) -> &str {
        let i = if self.day[0] == day {
            0
        } else if self.day[1] == day {
            1
        } else {
            let i = self.victim;
            self.victim ^= 1;
            self.day[i] = day;
            let jd = (day + 2_440_588).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            let date = time::Date::from_julian_day(jd).unwrap_or(time::Date::MIN);
            let t = &mut self.text[i];
            t.clear();
            push_padded(t, date.year().clamp(0, 9999) as u64, 4);
            t.push('-');
            push2(t, date.month() as u32);
            t.push('-');
            push2(t, date.day() as u32);
            t.push('T');
            i
        };
        &self.text[i]
    }
}

fn push2(buf: &mut String, v: u32) {
    buf.push((b'0' + (v / 10 % 10) as u8) as char);
    buf.push((b'0' + (v % 10) as u8) as char);
}

fn push3(buf: &mut String, v: u32) {
    buf.push((b'0' + (v / 100 % 10) as u8) as char);
    push2(buf, v % 100);
}

/// Decimal `n`, left-padded with zeros to `width` digits.
fn push_padded(buf: &mut String, mut n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (tmp.len() - i)..width {
        buf.push('0');
    }
    for &d in &tmp[i..] {
        buf.push(d as char);
    }
}

/// RFC 3339 with milliseconds (or microseconds) and `Z` or a `±hh:mm` offset.
fn write_time(buf: &mut String, dates: &mut DateCache, ms: i64, off_min: i32, micros: Option<u32>) {
    let local = ms + off_min as i64 * MIN;
    let day = local.div_euclid(DAY);
    let rem = local.rem_euclid(DAY);
    buf.push_str(dates.prefix(day));
    push2(buf, (rem / HOUR) as u32);
    buf.push(':');
    push2(buf, (rem / MIN % 60) as u32);
    buf.push(':');
    push2(buf, (rem / SEC % 60) as u32);
    buf.push('.');
    push3(buf, (rem % SEC) as u32);
    if let Some(us) = micros {
        push3(buf, us);
    }
    if off_min == 0 {
        buf.push('Z');
    } else {
        buf.push(if off_min < 0 { '-' } else { '+' });
        let a = off_min.unsigned_abs();
        push2(buf, a / 60);
        buf.push(':');
        push2(buf, a % 60);
    }
}

fn pick_weighted<R: Rng>(rng: &mut R, w: &[u32]) -> usize {
    let total: u32 = w.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, &wi) in w.iter().enumerate() {
        if x < wi {
            return i;
        }
        x -= wi;
    }
    w.len() - 1
}

struct Recent {
    line: String,
    key: String,
    time_ms: i64,
}

const RECENT: usize = 8;

/// A streaming generator: yields one JSON line (without trailing newline) at a time, with its
/// event time in ms.
pub struct Generator {
    events: u64,
    produced: u64,
    rng: StdRng,
    queue: Schedule,
    seq: u64,
    tickets: Vec<Ticket>,
    free: Vec<u32>,
    customers: Vec<Customer>,
    next_customer: u32,
    next_ticket: u64,
    next_order: u64,
    next_event: u64,
    next_orphan: u64,
    /// Scheduled time of the last real event written.
    now: i64,
    start_ms: i64,
    /// Tickets per ms (mean).
    rate_per_ms: f64,
    proc_clock: [f64; PROC_RATE.len()],
    p_invalid: f64,
    p_dup: f64,
    p_orphan: f64,
    line: String,
    key: String,
    time_ms: i64,
    scratch: String,
    dates: DateCache,
    recent: Vec<Recent>,
    recent_next: usize,
}

impl Generator {
    pub fn new(opts: GenerateOptions) -> Self {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let n = opts.customers.max(1);
        let customers = (0..n)
            .map(|i| Customer {
                no: i + 1,
                mood: (0.2 + 0.4 * (rng.gen::<f64>() - 0.5)) as f32,
            })
            .collect();
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
            seq: 0,
            tickets: Vec::new(),
            free: Vec::new(),
            customers,
            next_customer: n + 1,
            next_ticket: 1,
            next_order: FIRST_ORDER,
            next_event: 1,
            next_orphan: 1,
            now: opts.start_ms,
            start_ms: opts.start_ms,
            rate_per_ms: rate / HOUR as f64,
            proc_clock: [opts.start_ms as f64; PROC_RATE.len()],
            p_invalid: inv,
            p_dup: inv + dup,
            p_orphan: inv + dup + orph,
            line: String::with_capacity(512),
            key: String::with_capacity(16),
            time_ms: opts.start_ms,
            scratch: String::with_capacity(64),
            dates: DateCache::new(),
            recent: Vec::with_capacity(RECENT),
            recent_next: 0,
        };
        // The first ticket arrives exactly at `start_ms`; the other processes start later.
        g.push(opts.start_ms, Ev::Proc(PROC_ARRIVAL as u8));
        for p in 1..PROC_RATE.len() {
            g.schedule_proc(p);
        }
        g
    }

    /// Writes the next line into `self.line` / `self.key` / `self.time_ms`.
    fn step(&mut self) -> bool {
        if self.produced >= self.events {
            return false;
        }
        self.produced += 1;
        let u: f64 = self.rng.gen();
        if u < self.p_invalid {
            self.gen_invalid();
            return true;
        }
        if u < self.p_dup {
            if self.gen_duplicate() {
                return true;
            }
        } else if u < self.p_orphan {
            self.gen_orphan();
            return true;
        }
        self.gen_real();
        true
    }

    fn gen_real(&mut self) {
        loop {
            let Some(s) = self.queue.pop() else {
                // Cannot happen (the arrival process always reschedules itself), but never
                // loop forever.
                self.push(self.now + HOUR, Ev::Proc(PROC_ARRIVAL as u8));
                continue;
            };
            self.now = self.now.max(s.t);
            if self.fire(s.t, s.ev) {
                break;
            }
        }
        // Remember it for duplicates.
        if self.p_dup <= self.p_invalid {
            return;
        }
        if self.recent.len() < RECENT {
            self.recent.push(Recent {
                line: String::new(),
                key: String::new(),
                time_ms: 0,
            });
        }
        let r = &mut self.recent[self.recent_next];
        r.line.clear();
        r.line.push_str(&self.line);
        r.key.clear();
        r.key.push_str(&self.key);
        r.time_ms = self.time_ms;
        self.recent_next = (self.recent_next + 1) % RECENT;
    }

    // ---------------------------------------------------------------- random helpers

    fn unif(&mut self) -> f64 {
        self.rng.gen()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen::<f64>() < p
    }

    /// Log-normal duration in ms with the given median (ms) and sigma.
    fn lognormal(&mut self, median_ms: f64, sigma: f64) -> i64 {
        let z: f64 = self.rng.sample(StandardNormal);
        (median_ms * (sigma * z).exp()).min(1e15) as i64
    }

    fn pick_slot(&mut self) -> u32 {
        let n = self.customers.len() as u32;
        // A tenth of the customers are heavy users and produce ~37 % of the traffic.
        if n >= 10 && self.chance(0.3) {
            self.rng.gen_range(0..n / 10)
        } else {
            self.rng.gen_range(0..n)
        }
    }

    /// Producer clock skew: a quarter of the non-ticket events are stamped up to 4 s early.
    fn skew(&mut self, t: i64) -> i64 {
        if self.chance(0.25) {
            t - self.rng.gen_range(0..4 * SEC)
        } else {
            t
        }
    }

    fn push(&mut self, t: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Sched {
            t,
            seq: self.seq,
            ev,
        });
    }

    fn schedule_proc(&mut self, p: usize) {
        let max = 1.0 + DIURNAL_AMPLITUDE;
        let lam = self.rate_per_ms * PROC_RATE[p] * max;
        let mut t = self.proc_clock[p];
        loop {
            let e: f64 = self.rng.sample(Exp1);
            t += e / lam;
            let hour = t.rem_euclid(DAY as f64) / HOUR as f64;
            let f = 1.0 + DIURNAL_AMPLITUDE * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
            if self.unif() * max < f {
                break;
            }
        }
        self.proc_clock[p] = t;
        self.push(t.min(9e15) as i64, Ev::Proc(p as u8));
    }

    // ---------------------------------------------------------------- line writing

    fn begin(&mut self, ty: &str, t: i64, cust: u32) {
        self.line.clear();
        self.line.push_str("{\"id\":\"e");
        push_padded(&mut self.line, self.next_event, 10);
        self.next_event += 1;
        self.line.push_str("\",\"type\":\"");
        self.line.push_str(ty);
        self.line.push_str("\",\"time\":\"");
        let x: f64 = self.rng.gen();
        let off = if x < 0.05 {
            OFFSETS_MIN[self.rng.gen_range(0..OFFSETS_MIN.len())]
        } else {
            0
        };
        let micros = if x > 0.99 {
            Some(self.rng.gen_range(0..1000))
        } else {
            None
        };
        write_time(&mut self.line, &mut self.dates, t, off, micros);
        self.line.push_str("\",\"customer\":\"c");
        push_padded(&mut self.line, cust as u64, 7);
        self.line.push('"');
        self.key.clear();
        self.key.push('c');
        push_padded(&mut self.key, cust as u64, 7);
        self.time_ms = t;
    }

    fn field_str(&mut self, name: &str, val: &str) {
        self.line.push_str(",\"");
        self.line.push_str(name);
        self.line.push_str("\":\"");
        self.line.push_str(val);
        self.line.push('"');
    }

    fn field_raw(&mut self, name: &str, val: &str) {
        self.line.push_str(",\"");
        self.line.push_str(name);
        self.line.push_str("\":");
        self.line.push_str(val);
    }

    fn field_u64(&mut self, name: &str, v: u64) {
        self.line.push_str(",\"");
        self.line.push_str(name);
        self.line.push_str("\":");
        push_padded(&mut self.line, v, 1);
    }

    fn field_ticket(&mut self, no: u64) {
        self.line.push_str(",\"ticket\":\"t");
        push_padded(&mut self.line, no, 10);
        self.line.push('"');
    }

    fn field_order(&mut self, no: u64) {
        self.line.push_str(",\"order\":\"o");
        push_padded(&mut self.line, no, 9);
        self.line.push('"');
    }

    fn field_agent(&mut self, team: u8, agent: u8) {
        self.line.push_str(",\"agent\":\"agent-");
        self.line.push_str(TEAMS[team as usize]);
        self.line.push('-');
        push_padded(&mut self.line, agent as u64 + 1, 2);
        self.line.push('"');
    }

    fn end(&mut self) {
        // Unknown extra fields are ignored by consumers; a few producers send some.
        if self.chance(0.02) {
            match self.rng.gen_range(0..3) {
                0 => self.line.push_str(",\"source\":\"helpdesk\""),
                1 => self.line.push_str(",\"meta\":{\"via\":\"api\",\"v\":2}"),
                _ => self.line.push_str(",\"tags\":[\"after-sales\",\"eu\"]"),
            }
        }
        self.line.push('}');
    }

    // ---------------------------------------------------------------- simulation

    fn fire(&mut self, t: i64, ev: Ev) -> bool {
        match ev {
            Ev::Proc(p) => self.fire_proc(t, p as usize),
            Ev::NewTicket {
                slot,
                cust,
                category,
            } => {
                if self.customers[slot as usize].no != cust {
                    return false; // the customer churned meanwhile
                }
                self.create_ticket(t, slot, Some(category));
                true
            }
            Ev::Ticket(idx) => self.fire_ticket(t, idx),
            Ev::Handled {
                cust,
                channel,
                team,
                agent,
                handle_ms,
                ticket,
            } => {
                let t = self.skew(t);
                self.begin("contact.handled", t, cust);
                self.field_agent(team, agent);
                self.field_str("channel", CHANNELS[channel as usize]);
                self.line.push_str(",\"handle_seconds\":");
                let h = handle_ms as u64;
                push_padded(&mut self.line, h / 1000, 1);
                match self.rng.gen_range(0..10) {
                    0 | 1 => {}
                    2..=6 => {
                        self.line.push('.');
                        push_padded(&mut self.line, h % 1000 / 100, 1);
                    }
                    _ => {
                        self.line.push('.');
                        push3(&mut self.line, (h % 1000) as u32);
                    }
                }
                if ticket != 0 {
                    self.field_ticket(ticket);
                }
                self.end();
                true
            }
            Ev::Csat {
                slot,
                cust,
                score,
                team,
                ticket,
            } => {
                let ts = self.skew(t);
                self.begin("survey.csat", ts, cust);
                self.field_u64("score", score as u64);
                if ticket != 0 {
                    let x = self.unif();
                    if x < 0.95 {
                        self.field_ticket(ticket);
                    } else if x < 0.96 {
                        self.field_raw("ticket", "null");
                    }
                }
                self.end();
                self.after_survey(t, slot, cust, score <= 2, score >= 5, team, 0.10);
                true
            }
            Ev::Ces {
                cust,
                score,
                ticket,
            } => {
                let t = self.skew(t);
                self.begin("survey.ces", t, cust);
                self.field_u64("score", score as u64);
                if ticket != 0 && self.chance(0.9) {
                    self.field_ticket(ticket);
                }
                self.end();
                true
            }
            Ev::Order { slot, cust } => {
                if self.customers[slot as usize].no != cust {
                    return false;
                }
                self.write_order(t, slot, cust);
                true
            }
            Ev::Return { slot, cust, order } => {
                let t = self.skew(t);
                self.begin("order.returned", t, cust);
                self.field_order(order);
                if self.chance(0.85) {
                    let r = RETURN_REASONS[self.rng.gen_range(0..RETURN_REASONS.len())];
                    self.field_str("reason", r);
                }
                self.end();
                if self.chance(0.35) {
                    let d = self.lognormal(HOUR as f64, 1.0).max(MIN);
                    self.push(
                        t + d,
                        Ev::NewTicket {
                            slot,
                            cust,
                            category: CAT_RETURN,
                        },
                    );
                }
                true
            }
            Ev::Warranty {
                slot,
                cust,
                order,
                product,
            } => {
                let t = self.skew(t);
                self.begin("warranty.claimed", t, cust);
                if order != 0 {
                    self.field_order(order);
                }
                if product != u8::MAX {
                    self.field_str("product", PRODUCTS[product as usize]);
                }
                self.end();
                if self.chance(0.5) {
                    // The claim is followed by a ticket, when the customer is still there.
                    if self.customers[slot as usize].no == cust {
                        let d = self.lognormal(30.0 * MIN as f64, 1.0).max(MIN);
                        self.push(
                            t + d,
                            Ev::NewTicket {
                                slot,
                                cust,
                                category: CAT_WARRANTY,
                            },
                        );
                    }
                }
                true
            }
            Ev::Contacted {
                cust,
                team,
                agent,
                channel,
            } => {
                let t = self.skew(t);
                self.begin("customer.contacted", t, cust);
                self.field_agent(team, agent);
                self.field_str("channel", CHANNELS[channel as usize]);
                self.end();
                true
            }
            Ev::Churn { slot, cust, reason } => {
                if self.customers[slot as usize].no != cust {
                    return false; // already gone
                }
                let t = self.skew(t);
                self.begin("customer.churned", t, cust);
                if reason != u8::MAX {
                    self.field_str("reason", CHURN_REASONS[reason as usize]);
                }
                self.end();
                // A new customer takes the slot.
                let no = self.next_customer;
                self.next_customer += 1;
                let mood = (0.2 + 0.4 * (self.unif() - 0.5)) as f32;
                self.customers[slot as usize] = Customer { no, mood };
                true
            }
        }
    }

    fn fire_proc(&mut self, t: i64, p: usize) -> bool {
        self.schedule_proc(p);
        match p {
            PROC_ARRIVAL => {
                let slot = self.pick_slot();
                self.create_ticket(t, slot, None);
                true
            }
            PROC_HANDLED => {
                // A call or chat that needed no ticket.
                let slot = self.pick_slot();
                let cust = self.customers[slot as usize].no;
                let channel = [CH_PHONE, CH_PHONE, CH_PHONE, CH_CHAT, CH_CHAT, CH_IN_PERSON]
                    [self.rng.gen_range(0..6)];
                let team = [T_BILLING, T_TECH, T_LOGISTICS, T_RETURNS][self.rng.gen_range(0..4)];
                let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                let handle_ms = self.handle_ms(channel);
                self.fire(
                    t,
                    Ev::Handled {
                        cust,
                        channel,
                        team,
                        agent,
                        handle_ms,
                        ticket: 0,
                    },
                )
            }
            PROC_NPS => {
                let slot = self.pick_slot();
                let c = self.customers[slot as usize];
                let w: [u32; 11] = if c.mood > 0.3 {
                    [1, 1, 1, 1, 2, 3, 4, 10, 20, 27, 30]
                } else if c.mood < -0.3 {
                    [10, 8, 10, 10, 10, 12, 12, 10, 8, 5, 5]
                } else {
                    [2, 2, 3, 4, 5, 8, 10, 18, 20, 15, 13]
                };
                let score = pick_weighted(&mut self.rng, &w) as u8;
                let ts = self.skew(t);
                self.begin("survey.nps", ts, c.no);
                self.field_u64("score", score as u64);
                self.end();
                let churn_p = if score <= 3 { 0.12 } else { 0.05 };
                self.after_survey(t, slot, c.no, score <= 6, score >= 9, T_BILLING, churn_p);
                true
            }
            PROC_ORDER => {
                let slot = self.pick_slot();
                let c = self.customers[slot as usize];
                // Unhappy customers buy much less.
                let m = (c.mood as f64 + 1.0) / 2.0;
                if !self.chance((m * m).max(0.1)) {
                    return false;
                }
                self.write_order(t, slot, c.no);
                true
            }
            PROC_CONTACT => {
                // Proactive outbound contact (welcome call, check-in).
                let slot = self.pick_slot();
                let cust = self.customers[slot as usize].no;
                let team = [T_BILLING, T_VIP, T_TECH][self.rng.gen_range(0..3)];
                let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                let channel = if self.chance(0.7) { CH_PHONE } else { CH_EMAIL };
                self.fire(
                    t,
                    Ev::Contacted {
                        cust,
                        team,
                        agent,
                        channel,
                    },
                )
            }
            PROC_CHURN => {
                // Churn without a service reason visible here; unhappy customers more often.
                let slot = self.pick_slot();
                let c = self.customers[slot as usize];
                if !self.chance(0.3 + 0.7 * (1.0 - c.mood as f64) / 2.0) {
                    return false;
                }
                let reason = self.churn_reason();
                self.fire(
                    t,
                    Ev::Churn {
                        slot,
                        cust: c.no,
                        reason,
                    },
                )
            }
            PROC_RETURN => {
                // A return of an order placed before the stream started.
                let slot = self.pick_slot();
                let cust = self.customers[slot as usize].no;
                let order = self.rng.gen_range(1..FIRST_ORDER);
                self.fire(t, Ev::Return { slot, cust, order })
            }
            PROC_WARRANTY => {
                let slot = self.pick_slot();
                let cust = self.customers[slot as usize].no;
                let order = if self.chance(0.7) {
                    self.rng.gen_range(1..FIRST_ORDER)
                } else {
                    0
                };
                let product = self.rng.gen_range(0..PRODUCTS.len()) as u8;
                self.fire(
                    t,
                    Ev::Warranty {
                        slot,
                        cust,
                        order,
                        product,
                    },
                )
            }
            _ => false,
        }
    }

    fn churn_reason(&mut self) -> u8 {
        if self.chance(0.8) {
            self.rng.gen_range(0..CHURN_REASONS.len()) as u8
        } else {
            u8::MAX
        }
    }

    fn handle_ms(&mut self, channel: u8) -> u32 {
        let median = match channel {
            CH_PHONE => 420.0,
            CH_CHAT => 540.0,
            CH_IN_PERSON => 600.0,
            _ => 240.0,
        };
        self.lognormal(median * 1000.0, 0.5).clamp(15_000, 4 * HOUR) as u32
    }

    fn write_order(&mut self, t: i64, slot: u32, cust: u32) {
        let t = self.skew(t);
        let order = self.next_order;
        self.next_order += 1;
        self.begin("order.placed", t, cust);
        self.field_order(order);
        let mut cents = self.lognormal(4500.0, 0.9).clamp(99, 5_000_000) as u64;
        if slot % 20 == 7 {
            cents *= 2; // VIP
        }
        self.line.push_str(",\"amount\":");
        push_padded(&mut self.line, cents / 100, 1);
        self.line.push('.');
        push_padded(&mut self.line, cents % 100, 2);
        self.end();
        if self.chance(0.08) {
            let d = self.lognormal(6.0 * DAY as f64, 0.6).clamp(HOUR, 40 * DAY);
            self.push(t + d, Ev::Return { slot, cust, order });
        }
        if self.chance(0.025) {
            let d = self.lognormal(45.0 * DAY as f64, 0.5).clamp(DAY, 120 * DAY);
            let order = if self.chance(0.8) { order } else { 0 };
            let product = if self.chance(0.9) {
                self.rng.gen_range(0..PRODUCTS.len()) as u8
            } else {
                u8::MAX
            };
            self.push(
                t + d,
                Ev::Warranty {
                    slot,
                    cust,
                    order,
                    product,
                },
            );
        }
    }

    /// Consequences of a survey answer at `t`: mood, service-recovery follow-up, churn.
    #[allow(clippy::too_many_arguments)]
    fn after_survey(
        &mut self,
        t: i64,
        slot: u32,
        cust: u32,
        negative: bool,
        positive: bool,
        team: u8,
        churn_p: f64,
    ) {
        if self.customers[slot as usize].no != cust {
            return;
        }
        let x = if negative {
            -1.0
        } else if positive {
            1.0
        } else {
            0.2
        };
        let m = &mut self.customers[slot as usize].mood;
        *m = 0.7 * *m + 0.3 * x;
        let mood = *m as f64;
        if negative {
            // Service recovery: most get a call-back, some too late (> 24 h), some never.
            if self.chance(0.7) {
                let d = self
                    .lognormal(8.0 * HOUR as f64, 1.1)
                    .clamp(5 * MIN, 7 * DAY);
                let team = if team == T_UNASSIGNED {
                    T_BILLING
                } else {
                    team
                };
                let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                let channel = match self.rng.gen_range(0..20) {
                    0..=13 => CH_PHONE,
                    14..=18 => CH_EMAIL,
                    _ => CH_MESSENGER,
                };
                self.push(
                    t + d,
                    Ev::Contacted {
                        cust,
                        team,
                        agent,
                        channel,
                    },
                );
            }
            if self.chance(churn_p * (1.0 + (-mood).max(0.0))) {
                let d = self.lognormal(6.0 * DAY as f64, 0.9).clamp(HOUR, 60 * DAY);
                let reason = self.churn_reason();
                self.push(t + d, Ev::Churn { slot, cust, reason });
            }
        }
    }

    fn create_ticket(&mut self, t: i64, slot: u32, hint: Option<u8>) {
        let cust = self.customers[slot as usize].no;
        let vip = slot % 20 == 7;
        let category = match hint {
            Some(c) => c,
            None => pick_weighted(&mut self.rng, &CATEGORY_W) as u8,
        };
        let channel = pick_weighted(&mut self.rng, &CHANNEL_W) as u8;
        let priority = pick_weighted(&mut self.rng, &PRIORITY_W) as u8;
        let team = if vip && self.chance(0.7) {
            T_VIP
        } else if self.chance(0.04) {
            T_UNASSIGNED
        } else {
            let (teams, w): (&[u8], &[u32]) = match category {
                0 => (&[T_TECH, T_RETURNS], &[60, 40]),
                1 => (&[T_RETURNS, T_LOGISTICS], &[75, 25]),
                2 => (&[T_BILLING, T_LOGISTICS, T_TECH], &[45, 35, 20]),
                3 => (&[T_BILLING, T_LOGISTICS, T_TECH], &[50, 35, 15]),
                4 => (&[T_TECH], &[100]),
                5 => (&[T_BILLING, T_TECH], &[60, 40]),
                _ => (&[T_BILLING, T_LOGISTICS, T_TECH], &[40, 30, 30]),
            };
            teams[pick_weighted(&mut self.rng, w)]
        };
        let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
        let no = self.next_ticket;
        self.next_ticket += 1;

        // ---- write ticket.created
        self.begin("ticket.created", t, cust);
        self.field_ticket(no);
        self.field_str("channel", CHANNELS[channel as usize]);
        self.field_str("priority", PRIORITIES[priority as usize]);
        if team == T_UNASSIGNED {
            if self.chance(0.3) {
                self.field_raw("team", "null");
            }
        } else {
            self.field_str("team", TEAMS[team as usize]);
        }
        // `other` is the default: often left out.
        if category != CAT_OTHER || self.chance(0.5) {
            self.field_str("category", CATEGORIES[category as usize]);
        }
        self.end();

        // ---- plan its life
        let live = matches!(channel, CH_PHONE | CH_CHAT | CH_IN_PERSON);
        let never_answered = self.chance(0.012);
        // Public agent messages before the first solve.
        let k: u8 = if self.chance(0.04) {
            0
        } else if self.chance(if live { 0.62 } else { 0.45 }) {
            1
        } else {
            let mut k = 2;
            while k < 7 && self.chance(0.45) {
                k += 1;
            }
            k
        };
        let stalled = !never_answered && k > 0 && self.chance(0.02);
        let escalated = !never_answered && self.chance(ESCALATE_P[priority as usize]);
        let p = priority as usize;
        let frt_at = if never_answered || k == 0 {
            NEVER
        } else {
            let med = FRT_TARGET[p] as f64 * 0.40 * CHANNEL_FRT[channel as usize];
            t + self.lognormal(med, 0.9).max(20 * SEC)
        };
        let solve_at = if never_answered || stalled {
            NEVER
        } else if k == 0 {
            // Spam, duplicate request, or solved by the customer: closed without a reply.
            t + self.lognormal(RES_TARGET[p] as f64 * 0.15, 1.0).max(MIN)
        } else {
            let med = RES_TARGET[p] as f64 * 0.36 * if escalated { 1.5 } else { 1.0 };
            let s = t + self.lognormal(med, 0.85);
            let min_after = (k as i64 - 1) * 10 * MIN + self.lognormal(20.0 * MIN as f64, 0.8);
            s.max(frt_at + min_after)
        };
        let (msgs_mask, msgs_left) = if never_answered {
            // The customer nudges, nobody answers.
            (0u16, self.rng.gen_range(0..3u8))
        } else if k == 0 {
            (0, 0)
        } else {
            // (customer, agent) pairs, maybe a trailing "thanks" from the customer.
            let mut mask = 0u16;
            for j in 0..(k - 1) {
                mask |= 1 << (2 * j + 1);
            }
            let n = 2 * (k - 1) + u8::from(self.chance(0.3));
            (mask, n)
        };
        let first_public = frt_at.min(solve_at);
        let system_at = if !live && self.chance(0.7) {
            t + self.rng.gen_range(SEC..20 * SEC)
        } else {
            NEVER
        };
        let note_at = if self.chance(0.25) {
            if first_public != NEVER {
                t + ((first_public - t) as f64 * (0.05 + 0.9 * self.unif())) as i64
            } else {
                t + self.lognormal(30.0 * MIN as f64, 1.0)
            }
        } else {
            NEVER
        };
        let escalate_at = if escalated {
            if solve_at != NEVER {
                t + ((solve_at - t) as f64 * (0.1 + 0.75 * self.unif())) as i64
            } else {
                t + self.lognormal(2.0 * HOUR as f64, 1.0)
            }
        } else {
            NEVER
        };
        let mut tk = Ticket {
            no,
            cust,
            slot,
            created: t,
            solve_at,
            system_at,
            note_at,
            escalate_at,
            main_at: NEVER,
            main_kind: Step::Solve,
            next: Step::Solve,
            first_stop: NEVER,
            first_solve: NEVER,
            msgs_mask,
            msgs_left,
            channel,
            priority,
            team,
            agent,
            agent_public: 0,
            solves: 0,
            reopens: 0,
            escalated: false,
        };
        if frt_at != NEVER {
            tk.main_at = frt_at;
            tk.main_kind = Step::FirstReply;
        } else {
            self.advance_main(&mut tk, t);
        }
        if live {
            // The call / chat session itself, reported when it ends.
            let handle_ms = self.handle_ms(channel);
            let ticket = no;
            self.push(
                t + handle_ms as i64,
                Ev::Handled {
                    cust,
                    channel,
                    team,
                    agent,
                    handle_ms,
                    ticket,
                },
            );
        }
        let idx = match self.free.pop() {
            Some(i) => {
                self.tickets[i as usize] = tk;
                i
            }
            None => {
                self.tickets.push(tk);
                (self.tickets.len() - 1) as u32
            }
        };
        self.schedule_ticket(idx, tk, t);
    }

    /// Next event of the main chain after an event at `t`.
    fn advance_main(&mut self, tk: &mut Ticket, t: i64) {
        if tk.msgs_left > 0 {
            let end = if tk.solve_at != NEVER && tk.solve_at > t {
                tk.solve_at
            } else {
                t + self.lognormal(3.0 * HOUR as f64, 0.8) * tk.msgs_left as i64
            };
            // The earliest of `msgs_left` uniform points in (t, end).
            let u = self.unif();
            let frac = 1.0 - u.powf(1.0 / tk.msgs_left as f64);
            tk.main_at = t + ((end - t) as f64 * frac) as i64;
            tk.main_kind = Step::Message;
        } else if tk.solve_at != NEVER {
            tk.main_at = tk.solve_at;
            tk.main_kind = Step::Solve;
        } else {
            tk.main_at = NEVER;
        }
    }

    /// Schedules the ticket's next event (at least 1 s after `t`), or frees it.
    fn schedule_ticket(&mut self, idx: u32, mut tk: Ticket, t: i64) {
        let mut best = (tk.main_at, tk.main_kind);
        for c in [
            (tk.escalate_at, Step::Escalate),
            (tk.note_at, Step::Note),
            (tk.system_at, Step::System),
        ] {
            if c.0 <= best.0 {
                best = c;
            }
        }
        if best.0 == NEVER {
            self.free.push(idx);
            return;
        }
        tk.next = best.1;
        self.tickets[idx as usize] = tk;
        self.push(best.0.max(t + SEC), Ev::Ticket(idx));
    }

    /// How bad the experience was: 0 = flawless.
    fn badness(tk: &Ticket) -> f64 {
        let p = tk.priority as usize;
        let mut bad = 0.0;
        if tk.first_stop > tk.created + FRT_TARGET[p] {
            bad += 1.0;
        }
        if tk.first_solve > tk.created + RES_TARGET[p] {
            bad += 1.3;
        }
        if tk.escalated {
            bad += 0.5;
        }
        bad += tk.reopens as f64;
        bad += 0.25 * (tk.agent_public.saturating_sub(2)) as f64;
        bad
    }

    fn fire_ticket(&mut self, t: i64, idx: u32) -> bool {
        let mut tk = self.tickets[idx as usize];
        match tk.next {
            Step::System => {
                self.begin("ticket.message", t, tk.cust);
                self.field_ticket(tk.no);
                self.field_str("author", "system");
                if self.chance(0.5) {
                    self.field_raw("public", "true");
                }
                self.end();
                tk.system_at = NEVER;
            }
            Step::Note => {
                self.begin("ticket.message", t, tk.cust);
                self.field_ticket(tk.no);
                self.field_str("author", "agent");
                self.field_agent(tk.team, tk.agent);
                self.field_raw("public", "false");
                self.end();
                tk.note_at = NEVER;
            }
            Step::Escalate => {
                let new_team = if self.chance(0.65) || tk.team == T_ESCALATIONS {
                    if tk.team == T_ESCALATIONS {
                        T_TECH
                    } else {
                        T_ESCALATIONS
                    }
                } else {
                    let others: Vec<u8> = [T_BILLING, T_TECH, T_LOGISTICS, T_RETURNS]
                        .into_iter()
                        .filter(|&x| x != tk.team)
                        .collect();
                    others[self.rng.gen_range(0..others.len())]
                };
                self.begin("ticket.escalated", t, tk.cust);
                self.field_ticket(tk.no);
                if self.chance(0.92) {
                    self.field_str("team", TEAMS[new_team as usize]);
                    tk.team = new_team;
                    tk.agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                }
                self.end();
                tk.escalated = true;
                tk.escalate_at = NEVER;
            }
            Step::FirstReply => {
                self.write_agent_message(&tk, t);
                tk.agent_public += 1;
                if tk.first_stop == NEVER {
                    tk.first_stop = t;
                }
                if matches!(tk.channel, CH_EMAIL | CH_WEB_FORM) && self.chance(0.25) {
                    let handle_ms = self.handle_ms(tk.channel);
                    let ev = Ev::Handled {
                        cust: tk.cust,
                        channel: tk.channel,
                        team: tk.team,
                        agent: tk.agent,
                        handle_ms,
                        ticket: tk.no,
                    };
                    self.push(t + 2 * SEC, ev);
                }
                self.advance_main(&mut tk, t);
            }
            Step::Message => {
                let agent = tk.msgs_mask & 1 == 1;
                tk.msgs_mask >>= 1;
                tk.msgs_left -= 1;
                if agent {
                    self.write_agent_message(&tk, t);
                    tk.agent_public = tk.agent_public.saturating_add(1);
                    if tk.first_stop == NEVER {
                        tk.first_stop = t;
                    }
                } else {
                    self.begin("ticket.message", t, tk.cust);
                    self.field_ticket(tk.no);
                    self.field_str("author", "customer");
                    self.end();
                }
                self.advance_main(&mut tk, t);
            }
            Step::Solve => {
                self.begin("ticket.solved", t, tk.cust);
                self.field_ticket(tk.no);
                let x = self.unif();
                if x < 0.9 {
                    self.field_agent(tk.team, tk.agent);
                } else if x < 0.92 {
                    self.field_raw("agent", "null");
                }
                self.end();
                self.on_solve(&mut tk, t);
            }
            Step::Reopen => {
                self.begin("ticket.reopened", t, tk.cust);
                self.field_ticket(tk.no);
                self.end();
                tk.reopens += 1;
                // The customer writes again; one or two more agent answers, then solved again.
                let n: u8 = if self.chance(0.35) { 2 } else { 1 };
                let mut mask = 0u16;
                for j in 0..n {
                    mask |= 1 << (2 * j + 1);
                }
                tk.msgs_mask = mask;
                tk.msgs_left = 2 * n;
                let med = RES_TARGET[tk.priority as usize] as f64 * 0.25;
                tk.solve_at = t + self.lognormal(med, 0.8).max(2 * n as i64 * 2 * MIN);
                self.advance_main(&mut tk, t);
            }
        }
        self.schedule_ticket(idx, tk, t);
        true
    }

    fn write_agent_message(&mut self, tk: &Ticket, t: i64) {
        self.begin("ticket.message", t, tk.cust);
        self.field_ticket(tk.no);
        self.field_str("author", "agent");
        let x = self.unif();
        if x < 0.97 {
            self.field_agent(tk.team, tk.agent);
        }
        if x > 0.85 {
            self.field_raw("public", "true");
        } else if x > 0.84 {
            self.field_raw("public", "null");
        }
        self.end();
    }

    fn on_solve(&mut self, tk: &mut Ticket, t: i64) {
        tk.solves = tk.solves.saturating_add(1);
        tk.solve_at = NEVER;
        let first = tk.first_solve == NEVER;
        if first {
            tk.first_solve = t;
        }
        if tk.first_stop == NEVER {
            tk.first_stop = t;
        }
        let bad = Self::badness(tk);
        let tier = if bad < 0.3 {
            0
        } else if bad < 1.5 {
            1
        } else {
            2
        };
        let reopen = tk.reopens < 2 && self.chance((0.05 + 0.04 * bad).min(0.25));
        let slot = tk.slot;
        let present = self.customers[slot as usize].no == tk.cust;

        let mut csat: Option<u8> = None;
        if !reopen {
            // Final solve: surveys, mood, sometimes churn.
            if self.chance(0.32) {
                let w: [u32; 5] = match tier {
                    0 => [2, 3, 8, 30, 57],
                    1 => [10, 14, 22, 30, 24],
                    _ => [32, 28, 20, 13, 7],
                };
                let score = pick_weighted(&mut self.rng, &w) as u8 + 1;
                csat = Some(score);
                let d = self
                    .lognormal(3.0 * HOUR as f64, 1.0)
                    .clamp(5 * MIN, 10 * DAY);
                let ev = Ev::Csat {
                    slot,
                    cust: tk.cust,
                    score,
                    team: tk.team,
                    ticket: tk.no,
                };
                self.push(t + d, ev);
            }
            if self.chance(0.15) {
                let w: [u32; 7] = match tier {
                    0 => [1, 2, 4, 8, 20, 32, 33],
                    1 => [6, 9, 15, 20, 22, 16, 12],
                    _ => [22, 22, 20, 15, 10, 7, 4],
                };
                let score = pick_weighted(&mut self.rng, &w) as u8 + 1;
                let d = self
                    .lognormal(4.0 * HOUR as f64, 1.0)
                    .clamp(5 * MIN, 10 * DAY);
                self.push(
                    t + d,
                    Ev::Ces {
                        cust: tk.cust,
                        score,
                        ticket: tk.no,
                    },
                );
            }
            if present {
                let x = [1.0f32, 0.0, -1.0][tier];
                let m = &mut self.customers[slot as usize].mood;
                *m = 0.8 * *m + 0.2 * x;
                if tier == 2 && self.chance(0.03) {
                    let d = self.lognormal(10.0 * DAY as f64, 0.8).clamp(HOUR, 60 * DAY);
                    let reason = self.churn_reason();
                    self.push(
                        t + d,
                        Ev::Churn {
                            slot,
                            cust: tk.cust,
                            reason,
                        },
                    );
                }
            }
        }
        if first && present {
            // Repurchase after service: likelier after a good experience.
            let p = match csat {
                Some(s) if s >= 4 => 0.40,
                Some(3) => 0.20,
                Some(_) => 0.05,
                None => [0.30, 0.18, 0.07][tier],
            };
            if self.chance(p) {
                let d = self.lognormal(7.0 * DAY as f64, 0.8).max(MIN);
                if d < 60 * DAY {
                    self.push(
                        t + d,
                        Ev::Order {
                            slot,
                            cust: tk.cust,
                        },
                    );
                }
            }
        }
        if reopen {
            tk.main_at = t + self
                .lognormal(6.0 * HOUR as f64, 1.2)
                .clamp(10 * MIN, 14 * DAY);
            tk.main_kind = Step::Reopen;
        } else {
            tk.main_at = NEVER;
        }
    }

    // ---------------------------------------------------------------- faults

    /// Event time of an injected line: just before the current stream time.
    fn inject_time(&mut self) -> i64 {
        (self.now - self.rng.gen_range(0..2 * SEC)).max(self.start_ms)
    }

    fn gen_duplicate(&mut self) -> bool {
        if self.recent.is_empty() {
            return false;
        }
        // Only lines within 9 s of the newest time written, so a duplicate is never late.
        let newest = self
            .recent
            .iter()
            .map(|r| r.time_ms)
            .max()
            .unwrap_or(self.now);
        let n = self.recent.len();
        let mut cands = [0usize; RECENT];
        let mut k = 0;
        for (i, r) in self.recent.iter().enumerate() {
            if r.time_ms >= newest - 9 * SEC && r.time_ms >= self.now - 9 * SEC {
                cands[k] = i;
                k += 1;
            }
        }
        let i = if k == 0 {
            (self.recent_next + n - 1) % n // the last real line
        } else {
            cands[self.rng.gen_range(0..k)]
        };
        let r = &self.recent[i];
        self.line.clear();
        self.line.push_str(&r.line);
        self.key.clear();
        self.key.push_str(&r.key);
        self.time_ms = r.time_ms;
        true
    }

    fn gen_orphan(&mut self) {
        let t = self.inject_time();
        let slot = self.pick_slot();
        let cust = self.customers[slot as usize].no;
        let ticket = 9_000_000_000 + self.next_orphan;
        self.next_orphan += 1;
        let team = [T_BILLING, T_TECH, T_LOGISTICS, T_RETURNS][self.rng.gen_range(0..4)];
        let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
        match self.rng.gen_range(0..20) {
            0..=9 => {
                self.begin("ticket.message", t, cust);
                self.field_ticket(ticket);
                if self.chance(0.5) {
                    self.field_str("author", "agent");
                    self.field_agent(team, agent);
                } else {
                    self.field_str("author", "customer");
                }
            }
            10..=14 => {
                self.begin("ticket.solved", t, cust);
                self.field_ticket(ticket);
                self.field_agent(team, agent);
            }
            15..=16 => {
                self.begin("ticket.reopened", t, cust);
                self.field_ticket(ticket);
            }
            _ => {
                self.begin("ticket.escalated", t, cust);
                self.field_ticket(ticket);
                self.field_str("team", "escalations");
            }
        }
        self.end();
    }

    /// A valid, side-effect-free line (NPS or order) at `t`, for truncation.
    fn write_plain(&mut self, t: i64, cust: u32) {
        if self.chance(0.5) {
            self.begin("survey.nps", t, cust);
            let s = self.rng.gen_range(0..=10u64);
            self.field_u64("score", s);
        } else {
            self.begin("order.placed", t, cust);
            self.field_order(self.next_order);
            self.next_order += 1;
            self.field_raw("amount", "39.90");
        }
        self.line.push('}');
    }

    /// An envelope at `t` with the given type; `time` replaced by `time_json` when given.
    fn begin_custom(&mut self, ty: &str, t: i64, cust: u32, time_json: Option<&str>) {
        match time_json {
            None => self.begin(ty, t, cust),
            Some(tj) => {
                self.begin(ty, t, cust);
                // Rewrite the time field.
                let start = self.line.find("\"time\":").unwrap_or(0);
                let end = self.line[start..].find(",\"customer\"").map(|e| start + e);
                if let Some(end) = end {
                    self.line
                        .replace_range(start..end, &format!("\"time\":{tj}"));
                }
            }
        }
    }

    fn gen_invalid(&mut self) {
        let t = self.inject_time();
        let slot = self.pick_slot();
        let cust = self.customers[slot as usize].no;
        let class = self.rng.gen_range(0..9u32);
        let v = self.rng.gen_range(0..100u32);
        match class {
            // Not JSON (or not a JSON object).
            0 => match v % 8 {
                0 => {
                    self.begin("ticket.created", t, cust);
                    self.line.clear();
                    self.line
                        .push_str("ERROR upstream timeout while exporting ticket events");
                }
                1 => {
                    self.begin("ticket.created", t, cust);
                    self.line.clear();
                    self.line.push_str("{type:ticket.created,customer:c");
                    push_padded(&mut self.line, cust as u64, 7);
                    self.line.push('}');
                }
                2 => {
                    self.write_plain(t, cust);
                    // trailing comma
                    self.line.pop();
                    self.line.push_str(",}");
                }
                3 => {
                    self.write_plain(t, cust);
                    let s = self.line.replace('"', "'");
                    self.line = s;
                }
                4 => {
                    self.begin("survey.csat", t, cust);
                    self.field_raw("score", "04");
                    self.line.push('}');
                }
                5 => {
                    self.begin("order.placed", t, cust);
                    self.field_order(self.next_order);
                    self.next_order += 1;
                    self.field_raw("amount", "NaN");
                    self.line.push('}');
                }
                6 => {
                    self.write_plain(t, cust);
                    self.line.insert(0, '[');
                    self.line.push(']');
                }
                _ => {
                    self.begin("survey.nps", t, cust);
                    self.line.clear();
                    self.line
                        .push_str("<event type=\"survey.nps\" customer=\"c");
                    push_padded(&mut self.line, cust as u64, 7);
                    self.line.push_str("\" score=\"9\"/>");
                }
            },
            // Truncated JSON.
            1 => {
                self.write_plain(t, cust);
                let len = self.line.len();
                let cut = self.rng.gen_range(1..len - 1);
                self.line.truncate(cut);
            }
            // Missing required field.
            2 => match v % 10 {
                0 => {
                    self.begin("ticket.created", t, cust);
                    self.field_ticket(self.next_ticket + 5_000_000_000);
                    self.field_str("channel", "email");
                    self.line.push('}');
                }
                1 => {
                    self.begin("survey.csat", t, cust);
                    self.line.push('}');
                }
                2 => {
                    self.begin("survey.nps", t, cust);
                    self.field_raw("score", "null");
                    self.line.push('}');
                }
                3 => {
                    self.begin("order.placed", t, cust);
                    self.field_order(self.next_order);
                    self.next_order += 1;
                    self.line.push('}');
                }
                4 => {
                    self.begin("contact.handled", t, cust);
                    self.field_agent(T_TECH, 3);
                    self.field_str("channel", "phone");
                    self.line.push('}');
                }
                5 => {
                    self.begin("ticket.message", t, cust);
                    self.field_ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.line.push('}');
                }
                6 => {
                    // no customer
                    self.begin("survey.nps", t, cust);
                    let at = self.line.find(",\"customer\"").unwrap_or(self.line.len());
                    self.line.truncate(at);
                    self.field_u64("score", 8);
                    self.line.push('}');
                }
                7 => {
                    // no time
                    self.begin("survey.nps", t, cust);
                    let a = self.line.find(",\"time\"").unwrap_or(0);
                    let b = self.line.find(",\"customer\"").unwrap_or(a);
                    self.line.replace_range(a..b, "");
                    self.field_u64("score", 8);
                    self.line.push('}');
                }
                8 => {
                    // no id
                    self.begin("survey.nps", t, cust);
                    let b = self.line.find("\"type\"").unwrap_or(1);
                    self.line.replace_range(1..b, "");
                    self.field_u64("score", 8);
                    self.line.push('}');
                }
                _ => {
                    // no type
                    self.begin("survey.nps", t, cust);
                    let a = self.line.find(",\"type\"").unwrap_or(0);
                    let b = self.line.find(",\"time\"").unwrap_or(a);
                    self.line.replace_range(a..b, "");
                    self.field_u64("score", 8);
                    self.line.push('}');
                }
            },
            // Wrong type.
            3 => match v % 9 {
                0 => {
                    self.begin("survey.csat", t, cust);
                    self.field_str("score", "4");
                    self.line.push('}');
                }
                1 => {
                    self.begin("survey.csat", t, cust);
                    self.field_raw("score", "4.0");
                    self.line.push('}');
                }
                2 => {
                    self.begin("survey.nps", t, cust);
                    self.field_raw("score", "8.5");
                    self.line.push('}');
                }
                3 => {
                    self.begin("order.placed", t, cust);
                    self.field_order(self.next_order);
                    self.next_order += 1;
                    self.field_str("amount", "19.99");
                    self.line.push('}');
                }
                4 => {
                    self.begin("ticket.message", t, cust);
                    self.field_ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.field_str("author", "agent");
                    self.field_agent(T_BILLING, 1);
                    self.field_str("public", "false");
                    self.line.push('}');
                }
                5 => {
                    self.begin("contact.handled", t, cust);
                    self.field_agent(T_TECH, 2);
                    self.field_str("channel", "chat");
                    self.field_str("handle_seconds", "300");
                    self.line.push('}');
                }
                6 => {
                    self.begin("ticket.reopened", t, cust);
                    self.field_raw("ticket", "12345");
                    self.line.push('}');
                }
                7 => {
                    let ms = t.to_string();
                    self.begin_custom("survey.nps", t, cust, Some(&ms));
                    self.field_u64("score", 7);
                    self.line.push('}');
                }
                _ => {
                    self.begin("customer.churned", t, cust);
                    let a = self.line.find("\"customer\":\"").unwrap_or(0);
                    self.line.truncate(a);
                    self.line.push_str("\"customer\":");
                    push_padded(&mut self.line, cust as u64, 1);
                    self.line.push('}');
                }
            },
            // Unknown type.
            4 => {
                let ty = [
                    "ticket.deleted",
                    "order.cancelled",
                    "Ticket.Created",
                    "survey.Csat",
                    "ticket_created",
                    "",
                ][(v % 6) as usize];
                self.begin(ty, t, cust);
                self.field_ticket(self.next_ticket.saturating_sub(1).max(1));
                self.line.push('}');
            }
            // Unknown enumeration value.
            5 => match v % 7 {
                0..=2 => {
                    let (ch, pr) = [("fax", "normal"), ("Email", "high"), ("email", "URGENT")]
                        [(v % 7) as usize];
                    self.begin("ticket.created", t, cust);
                    self.field_ticket(self.next_ticket + 5_000_000_000 + v as u64);
                    self.field_str("channel", ch);
                    self.field_str("priority", pr);
                    self.field_str("team", "billing");
                    self.line.push('}');
                }
                3 => {
                    self.begin("ticket.created", t, cust);
                    self.field_ticket(self.next_ticket + 6_000_000_000);
                    self.field_str("channel", "chat");
                    self.field_str("priority", "critical");
                    self.line.push('}');
                }
                4 => {
                    self.begin("ticket.created", t, cust);
                    self.field_ticket(self.next_ticket + 7_000_000_000);
                    self.field_str("channel", "phone");
                    self.field_str("priority", "low");
                    self.field_str("category", "refund");
                    self.line.push('}');
                }
                5 => {
                    self.begin("ticket.message", t, cust);
                    self.field_ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.field_str("author", "bot");
                    self.line.push('}');
                }
                _ => {
                    self.begin("contact.handled", t, cust);
                    self.field_agent(T_LOGISTICS, 4);
                    self.field_str("channel", "sms");
                    self.field_raw("handle_seconds", "120.5");
                    self.line.push('}');
                }
            },
            // Out-of-range value.
            6 => {
                let (ty, field, val) = [
                    ("survey.csat", "score", "0"),
                    ("survey.csat", "score", "6"),
                    ("survey.nps", "score", "11"),
                    ("survey.nps", "score", "-1"),
                    ("survey.ces", "score", "0"),
                    ("survey.ces", "score", "8"),
                    ("contact.handled", "handle_seconds", "-12.5"),
                    ("order.placed", "amount", "-5.00"),
                ][(v % 8) as usize];
                self.begin(ty, t, cust);
                match ty {
                    "contact.handled" => {
                        self.field_agent(T_BILLING, 5);
                        self.field_str("channel", "phone");
                    }
                    "order.placed" => {
                        self.field_order(self.next_order);
                        self.next_order += 1;
                    }
                    _ => {}
                }
                self.field_raw(field, val);
                self.line.push('}');
            }
            // Bad timestamp.
            7 => {
                self.scratch.clear();
                write_time(&mut self.scratch, &mut self.dates, t, 0, None);
                let good = self.scratch.clone(); // 2026-11-22T10:00:00.250Z
                let bad = match v % 8 {
                    0 => good[..good.len() - 1].to_string(),
                    1 => good.replacen('T', " ", 1),
                    2 => format!("{}-13{}", &good[..4], &good[7..]),
                    3 => format!("{}-02-30{}", &good[..4], &good[10..]),
                    4 => format!("{}T25{}", &good[..10], &good[13..]),
                    5 => format!("{}+0200", &good[..good.len() - 1]),
                    6 => good[..10].to_string(),
                    _ => "yesterday".to_string(),
                };
                let tj = format!("\"{bad}\"");
                self.begin_custom("survey.csat", t, cust, Some(&tj));
                self.field_u64("score", 4);
                self.line.push('}');
            }
            // String too long or empty.
            _ => match v % 6 {
                0 => {
                    self.begin("survey.nps", t, cust);
                    let b = self.line.find("\",\"type\"").unwrap_or(7);
                    let long = format!("e{}", "9".repeat(128));
                    self.line.replace_range(7..b, &long);
                    self.field_u64("score", 9);
                    self.line.push('}');
                }
                1 => {
                    self.begin("survey.nps", t, cust);
                    let b = self.line.find("\",\"type\"").unwrap_or(7);
                    self.line.replace_range(7..b, "");
                    self.field_u64("score", 9);
                    self.line.push('}');
                }
                2 => {
                    self.begin("survey.nps", t, cust);
                    let a = self.line.find("\"customer\":\"").unwrap_or(0) + 12;
                    self.line.truncate(a);
                    self.line.push_str(&"c".repeat(129));
                    self.line.push('"');
                    self.field_u64("score", 9);
                    self.line.push('}');
                }
                3 => {
                    self.begin("ticket.created", t, cust);
                    self.field_ticket(self.next_ticket + 8_000_000_000);
                    self.field_str("channel", "email");
                    self.field_str("priority", "normal");
                    let team = "customer-care-".repeat(5); // 70 chars
                    self.field_str("team", &team);
                    self.line.push('}');
                }
                4 => {
                    self.begin("customer.churned", t, cust);
                    let reason = "too expensive; ".repeat(18); // 270 chars
                    self.field_str("reason", &reason);
                    self.line.push('}');
                }
                _ => {
                    self.begin("order.returned", t, cust);
                    let order = format!("o{}", "1".repeat(128));
                    self.field_str("order", &order);
                    self.line.push('}');
                }
            },
        }
        self.time_ms = t;
    }
}

impl Iterator for Generator {
    type Item = GeneratedLine;

    fn next(&mut self) -> Option<GeneratedLine> {
        if !self.step() {
            return None;
        }
        Some(GeneratedLine {
            line: self.line.clone(),
            time_ms: self.time_ms,
            key: self.key.clone(),
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
        w.write_all(g.line.as_bytes())?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}
