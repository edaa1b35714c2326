//! Case generation: a random configuration, partition layout, admission bounds and a stream of
//! inputs — valid events from cxstream's generator and hand-built ones, mutated ones, random
//! bytes — all derived from one seed, so that a case is reproduced from its seed alone.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use cxstream::config::{Config, Dim, Dur, Targets};
use cxstream::event::decode;
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::source::Partitioner;
use cxstream::ts::{self, Millis, DAY, HOUR, MINUTE, SECOND};

/// How inputs reach partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Each input to a partition chosen here (by its customer, or at random).
    Fixed,
    /// `feed_routed` with `Route::ByCustomer` decides (plain runs only).
    Engine(Partitioner),
}

/// Which partitions a window waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    /// `Completion::Present` with every partition assigned up front (replay).
    Present,
    /// `Completion::Of(0..n)` (run).
    Of,
    /// `Completion::Topic` (`run`): parts and watermarks through a parts topic to its merge
    /// step.
    Topic,
}

/// The reference clock of the future check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// No future check (a message without timestamp, `feed`).
    None,
    /// One clock for the whole case (`replay --now`).
    Fixed(Millis),
    /// Each input's own clock (a Kafka message timestamp).
    PerInput,
}

/// What a case checks beyond the per-run invariants.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// One run.
    Plain,
    /// The same per-partition streams in another interleaving give the same records (SPEC §2).
    Interleave,
    /// Checkpoints, crashes (also mid-checkpoint), abandoned checkpoints and compaction at
    /// random points give the records of an uninterrupted run (SPEC §7).
    Checkpoint(Vec<Step>, Vec<f64>),
}

/// A step of a crash plan, after `at` ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Checkpoint the partitions in the mask (bit p).
    Checkpoint(usize, u8),
    /// Checkpoint every partition, write half of it, abandon it.
    Abandon(usize),
    /// Crash while writing a checkpoint: `keep` records per partition reach the log.
    CrashMid(usize, usize),
    /// Crash: what was not checkpointed is lost.
    Crash(usize),
    /// Checkpoint every partition, then crash at once.
    CheckpointCrash(usize),
}

impl Step {
    /// The op index the step comes before.
    pub fn at(self) -> usize {
        match self {
            Step::Checkpoint(a, _)
            | Step::Abandon(a)
            | Step::CrashMid(a, _)
            | Step::Crash(a)
            | Step::CheckpointCrash(a) => a,
        }
    }
}

/// One thing done to the engine.
#[derive(Debug, Clone)]
pub enum Op {
    /// An input: its bytes, its partition (with [`Routing::Fixed`]) and its reference clock
    /// (with [`Clock::PerInput`]).
    Input {
        part: i32,
        bytes: Vec<u8>,
        now: Millis,
    },
    /// Live mode: the partition is idle and its watermark advances to `to`.
    Advance { part: i32, to: Millis },
}

/// Everything one run needs, derived from `seed`.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub cfg: Config,
    pub partitions: i32,
    pub routing: Routing,
    pub completion: CompletionKind,
    pub max_event_bytes: usize,
    pub max_future: Millis,
    pub clock: Clock,
    pub ops: Vec<Op>,
    pub mode: Mode,
    /// Drain the engine after every this many ops.
    pub drain_every: usize,
    /// Attach the Prometheus layer and check it.
    pub metrics: bool,
    /// Where the events' times start.
    pub base: Millis,
}

/// Size limits of generated cases.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most inputs in one case.
    pub max_inputs: usize,
    /// Allow inputs over 1 MiB (slow; rare).
    pub huge_inputs: bool,
}

const YEAR_9999_END: Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
const YEAR_0000: Millis = -62_167_219_200_000; // 0000-01-01T00:00:00Z

/// Weighted choice.
fn pick<'a, T>(rng: &mut StdRng, items: &'a [(u32, T)]) -> &'a T {
    let total: u32 = items.iter().map(|(w, _)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (w, t) in items {
        if x < *w {
            return t;
        }
        x -= w;
    }
    &items[items.len() - 1].1
}

fn dur(rng: &mut StdRng, choices: &[Millis]) -> Dur {
    Dur(*choices.choose(rng).unwrap())
}

fn config(rng: &mut StdRng) -> Config {
    let mut c = Config::default();
    if rng.gen_bool(0.25) {
        return c;
    }
    let sizes = [SECOND, 10 * SECOND, MINUTE, 5 * MINUTE, HOUR, DAY, 7 * DAY];
    let k = rng.gen_range(1..=3);
    let mut w: Vec<Millis> = sizes.choose_multiple(rng, k).copied().collect();
    w.shuffle(rng);
    c.engine.windows = w.into_iter().map(Dur).collect();
    c.engine.allowed_lateness = dur(rng, &[0, SECOND, 30 * SECOND, 10 * MINUTE, DAY]);
    let extra: [Vec<Dim>; 7] = [
        vec![Dim::Team],
        vec![Dim::Channel],
        vec![Dim::Priority],
        vec![Dim::Category],
        vec![Dim::Team, Dim::Priority],
        vec![Dim::Channel, Dim::Category, Dim::Priority],
        vec![Dim::Category, Dim::Team, Dim::Channel, Dim::Priority],
    ];
    let mut groups = vec![vec![]];
    let k = rng.gen_range(0..=4);
    for g in extra.choose_multiple(rng, k) {
        groups.push(g.clone());
    }
    // The all-tickets group need not come first.
    groups.shuffle(rng);
    c.engine.group_by = groups;
    let horizons = [0, SECOND, MINUTE, HOUR, DAY, 30 * DAY, 90 * DAY];
    c.engine.dedup_horizon = dur(rng, &horizons);
    c.engine.ticket_retention_solved = dur(rng, &horizons);
    c.engine.ticket_retention_open = dur(rng, &horizons);
    c.engine.customer_retention = dur(rng, &horizons);
    if rng.gen_bool(0.5) {
        let t = |rng: &mut StdRng| dur(rng, &[1, SECOND, MINUTE, 15 * MINUTE, HOUR, DAY, 30 * DAY]);
        c.sla.first_response = Targets {
            urgent: t(rng),
            high: t(rng),
            normal: t(rng),
            low: t(rng),
        };
        c.sla.resolution = Targets {
            urgent: t(rng),
            high: t(rng),
            normal: t(rng),
            low: t(rng),
        };
    }
    if rng.gen_bool(0.6) {
        let s = &mut c.signals;
        let h = [1, SECOND, MINUTE, HOUR, DAY, 14 * DAY, 90 * DAY];
        s.half_life = dur(rng, &h);
        s.threshold = *[0.001, 0.5, 2.0, 5.0, 50.0].choose(rng).unwrap();
        s.cooldown = dur(rng, &[0, MINUTE, DAY, 7 * DAY]);
        s.repeat_contact_window = dur(rng, &[0, MINUTE, DAY, 7 * DAY]);
        s.repeat_contact_min_others = rng.gen_range(0..4);
        s.effectiveness_horizon = dur(rng, &h);
        s.recovery_due = dur(rng, &h);
        s.repurchase_horizon = dur(rng, &h);
        if rng.gen_bool(0.3) {
            let w = &mut s.weights;
            for x in [
                &mut w.csat_negative,
                &mut w.nps_detractor,
                &mut w.ces_high_effort,
                &mut w.reopen,
                &mut w.sla_breach,
                &mut w.repeat_contact,
                &mut w.return_,
                &mut w.escalation,
                &mut w.warranty_claim,
                &mut w.positive,
            ] {
                *x = *[-3.0, -0.25, 0.0, 0.5, 1.0, 3.0, 1e6].choose(rng).unwrap();
            }
        }
    }
    c
}

/// A JSON string literal.
fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Interesting strings for identifiers and names (some invalid: empty, too long).
fn ident(rng: &mut StdRng, prefix: &str, pool: u32) -> String {
    match rng.gen_range(0..40) {
        0 => jstr(""),
        1 => jstr(&"x".repeat(128)),
        2 => jstr(&"y".repeat(129)),
        3 => jstr(&"é".repeat(128)),
        4 => jstr(&"😀".repeat(129)),
        5 => jstr(&format!("{prefix}\"\\/\u{0}\n")),
        6 => format!("\"{prefix}\\u0031\""),
        7 => jstr("__other__"),
        8 => jstr(" "),
        _ => jstr(&format!("{prefix}{}", rng.gen_range(0..pool.max(1)))),
    }
}

fn team(rng: &mut StdRng) -> String {
    match rng.gen_range(0..30) {
        0 => jstr(&"t".repeat(64)),
        1 => jstr(&"t".repeat(65)),
        2 => jstr("unassigned"),
        3 => jstr("{\"team\":\"x\"}|1m|"),
        4 => jstr("チーム"),
        5 => jstr(""),
        6 => "null".into(),
        _ => jstr(
            ["billing", "tech", "returns", "vip", "a", "b"]
                .choose(rng)
                .unwrap(),
        ),
    }
}

fn enum_value(rng: &mut StdRng, good: &[&str]) -> String {
    if rng.gen_range(0..25) == 0 {
        jstr(
            ["EMAIL", "fax", "", "Urgent", "other ", "null"]
                .choose(rng)
                .unwrap(),
        )
    } else {
        jstr(good.choose(rng).unwrap())
    }
}

const CHANNELS: &[&str] = &[
    "email",
    "phone",
    "chat",
    "social",
    "web_form",
    "in_person",
    "messenger",
];
const PRIORITIES: &[&str] = &["urgent", "high", "normal", "low"];
const CATEGORIES: &[&str] = &[
    "warranty",
    "return",
    "complaint",
    "question",
    "tech_support",
    "consultation",
    "other",
];
const TYPES: &[&str] = &[
    "ticket.created",
    "ticket.message",
    "ticket.solved",
    "ticket.reopened",
    "ticket.escalated",
    "contact.handled",
    "customer.contacted",
    "survey.csat",
    "survey.nps",
    "survey.ces",
    "order.placed",
    "order.returned",
    "warranty.claimed",
    "customer.churned",
];

/// Numbers as written, valid and not: bounds, just past them, beyond f64, negative zero.
fn number(rng: &mut StdRng, max: f64) -> String {
    match rng.gen_range(0..30) {
        0 => "0".into(),
        1 => "-0".into(),
        2 => "-0.0".into(),
        3 => format!("{max}"),
        4 => format!("{:.1}", max),
        5 => format!("{}", max * (1.0 + 1e-12)),
        6 => "1e308".into(),
        7 => "1e400".into(),
        8 => "-1e400".into(),
        9 => "1.7976931348623157e308".into(),
        10 => "5e-324".into(),
        11 => "99999999999999999999999999999999999999999".into(),
        12 => "9007199254740993".into(),
        13 => "-1".into(),
        14 => "1E3".into(),
        15 => "0.1e1".into(),
        16 => "\"12\"".into(),
        17 => "1e-400".into(),
        _ => format!("{:.3}", rng.gen_range(0.0..max.min(1e6))),
    }
}

fn score(rng: &mut StdRng, lo: i64, hi: i64) -> String {
    match rng.gen_range(0..25) {
        0 => format!("{}", lo - 1),
        1 => format!("{}", hi + 1),
        2 => format!("{lo}.0"),
        3 => "170141183460469231731687303715884105728".into(),
        4 => "-9223372036854775809".into(),
        5 => "1e0".into(),
        _ => format!("{}", rng.gen_range(lo..=hi)),
    }
}

/// An RFC 3339 text for `t` in one of several valid spellings (offsets, fractions).
fn time_text(rng: &mut StdRng, t: Millis) -> String {
    let z = ts::format_ms(t);
    match rng.gen_range(0..20) {
        0 => {
            // Same instant at +05:30.
            let shifted = ts::format_ms(t + 5 * HOUR + 30 * MINUTE);
            let base = shifted.trim_end_matches('Z');
            if base.starts_with('-') || base.len() < 19 || shifted.starts_with("10000") {
                z
            } else {
                format!("{base}+05:30")
            }
        }
        1 => {
            let base = z.trim_end_matches('Z');
            if base.contains('.') {
                format!("{base}999Z")
            } else {
                format!("{base}.123456789Z")
            }
        }
        _ => z,
    }
}

/// Times that have broken pipelines: year 9999, year 0, the epoch, leap seconds, bad text.
fn edge_time(rng: &mut StdRng, base: Millis) -> String {
    let s = match rng.gen_range(0..22) {
        0 => "9999-12-31T23:59:59.999Z".to_string(),
        1 => "9999-12-31T23:59:59-23:59".into(),
        2 => "0000-01-01T00:00:00Z".into(),
        3 => "0000-01-01T00:00:00+23:59".into(),
        4 => "1970-01-01T00:00:00Z".into(),
        5 => "1969-12-31T23:59:59.999Z".into(),
        6 => "2026-12-31T23:59:60Z".into(),
        7 => "2026-02-30T10:00:00Z".into(),
        8 => "2026-11-22t10:00:00z".into(),
        9 => "2026-11-22T10:00:00".into(),
        10 => "2026-11-22 10:00:00Z".into(),
        11 => "2026-11-22T24:00:00Z".into(),
        12 => "+002026-11-22T10:00:00Z".into(),
        13 => "2026-11-22T10:00:00.Z".into(),
        14 => "".into(),
        15 => ts::format_ms(base + HOUR),
        16 => ts::format_ms(base + HOUR + 1),
        17 => ts::format_ms(base + 400 * DAY),
        18 => ts::format_ms(base - 400 * DAY),
        19 => "2026-11-22T10:00:00+24:00".into(),
        20 => "2026-11-22T10:00:00.000000000000000000001Z".into(),
        _ => ts::format_ms(rng.gen_range(YEAR_0000..=YEAR_9999_END)),
    };
    jstr(&s)
}

/// A hand-built event over small pools of customers and tickets, so that tickets are created,
/// answered, solved, reopened, escalated and surveyed; some fields are invalid.
struct Synth {
    customers: u32,
    tickets: u32,
    time: Millis,
    next_id: u64,
}

impl Synth {
    fn step_time(&mut self, rng: &mut StdRng) -> Millis {
        let d = *pick(
            rng,
            &[
                (40, 0),
                (20, SECOND),
                (15, MINUTE),
                (6, 10 * MINUTE),
                (4, HOUR),
                (3, DAY),
                (2, -MINUTE),
                (2, -HOUR),
                (1, -40 * DAY),
                (1, 40 * DAY),
                (1, 365 * DAY),
            ],
        );
        let jitter = if d == 0 {
            0
        } else {
            rng.gen_range(0..=d.abs())
        };
        self.time = (self.time + d.signum() * jitter).clamp(YEAR_0000, YEAR_9999_END);
        self.time
    }

    fn event(&mut self, rng: &mut StdRng, base: Millis) -> Vec<(String, String)> {
        let t = self.step_time(rng);
        self.next_id += 1;
        let ty = *pick(
            rng,
            &[
                (14, "ticket.created"),
                (16, "ticket.message"),
                (8, "ticket.solved"),
                (3, "ticket.reopened"),
                (3, "ticket.escalated"),
                (5, "contact.handled"),
                (3, "customer.contacted"),
                (5, "survey.csat"),
                (4, "survey.nps"),
                (3, "survey.ces"),
                (4, "order.placed"),
                (2, "order.returned"),
                (2, "warranty.claimed"),
                (2, "customer.churned"),
            ],
        );
        let mut f: Vec<(String, String)> = Vec::new();
        let id = if rng.gen_range(0..30) == 0 {
            ident(rng, "e", 20)
        } else {
            jstr(&format!("s{}", self.next_id))
        };
        f.push(("id".into(), id));
        f.push(("type".into(), jstr(ty)));
        let time = if rng.gen_range(0..40) == 0 {
            edge_time(rng, base)
        } else {
            jstr(&time_text(rng, t))
        };
        f.push(("time".into(), time));
        let cust = if rng.gen_range(0..50) == 0 {
            ident(rng, "c", self.customers)
        } else {
            jstr(&format!("c{}", rng.gen_range(0..self.customers)))
        };
        f.push(("customer".into(), cust));
        let ticket = |rng: &mut StdRng, n: u32| {
            if rng.gen_range(0..40) == 0 {
                ident(rng, "t", n)
            } else {
                jstr(&format!("t{}", rng.gen_range(0..n)))
            }
        };
        let n = self.tickets;
        match ty {
            "ticket.created" => {
                f.push(("ticket".into(), ticket(rng, n)));
                f.push(("channel".into(), enum_value(rng, CHANNELS)));
                f.push(("priority".into(), enum_value(rng, PRIORITIES)));
                if rng.gen_bool(0.7) {
                    f.push(("team".into(), team(rng)));
                }
                if rng.gen_bool(0.5) {
                    f.push(("category".into(), enum_value(rng, CATEGORIES)));
                }
            }
            "ticket.message" => {
                f.push(("ticket".into(), ticket(rng, n)));
                f.push((
                    "author".into(),
                    enum_value(rng, &["agent", "agent", "customer", "system"]),
                ));
                if rng.gen_bool(0.5) {
                    f.push(("agent".into(), ident(rng, "a", 5)));
                }
                if rng.gen_bool(0.3) {
                    let p = *["true", "false", "null", "\"no\"", "0"]
                        .choose(rng)
                        .unwrap();
                    f.push(("public".into(), p.into()));
                }
            }
            "ticket.solved" => {
                f.push(("ticket".into(), ticket(rng, n)));
                if rng.gen_bool(0.5) {
                    f.push(("agent".into(), ident(rng, "a", 5)));
                }
            }
            "ticket.reopened" => f.push(("ticket".into(), ticket(rng, n))),
            "ticket.escalated" => {
                f.push(("ticket".into(), ticket(rng, n)));
                if rng.gen_bool(0.7) {
                    f.push(("team".into(), team(rng)));
                }
            }
            "contact.handled" => {
                f.push(("agent".into(), ident(rng, "a", 5)));
                f.push(("channel".into(), enum_value(rng, CHANNELS)));
                f.push(("handle_seconds".into(), number(rng, 604_800.0)));
                if rng.gen_bool(0.6) {
                    f.push(("ticket".into(), ticket(rng, n)));
                }
            }
            "customer.contacted" => {
                f.push(("agent".into(), ident(rng, "a", 5)));
                f.push(("channel".into(), enum_value(rng, CHANNELS)));
            }
            "survey.csat" => {
                f.push(("score".into(), score(rng, 1, 5)));
                if rng.gen_bool(0.7) {
                    f.push(("ticket".into(), ticket(rng, n)));
                }
            }
            "survey.nps" => f.push(("score".into(), score(rng, 0, 10))),
            "survey.ces" => {
                f.push(("score".into(), score(rng, 1, 7)));
                if rng.gen_bool(0.5) {
                    f.push(("ticket".into(), ticket(rng, n)));
                }
            }
            "order.placed" => {
                f.push(("order".into(), ident(rng, "o", 10)));
                f.push(("amount".into(), number(rng, 1e12)));
            }
            "order.returned" => {
                f.push(("order".into(), ident(rng, "o", 10)));
                if rng.gen_bool(0.5) {
                    f.push(("reason".into(), jstr(&"r".repeat(rng.gen_range(0..300)))));
                }
            }
            "warranty.claimed" => {
                if rng.gen_bool(0.5) {
                    f.push(("order".into(), ident(rng, "o", 10)));
                }
                if rng.gen_bool(0.5) {
                    f.push(("product".into(), jstr(&"p".repeat(rng.gen_range(0..300)))));
                }
            }
            _ => {
                if rng.gen_bool(0.5) {
                    f.push(("reason".into(), jstr("moved")));
                }
            }
        }
        f.shuffle(rng);
        f
    }
}

fn render(fields: &[(String, String)]) -> Vec<u8> {
    let mut s = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&jstr(k));
        s.push(':');
        s.push_str(v);
    }
    s.push('}');
    s.into_bytes()
}

/// The top-level fields of a JSON object line, values as their JSON text (`None` if the line
/// is not a flat-parseable object).
fn fields_of(line: &[u8]) -> Option<Vec<(String, String)>> {
    let m: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).ok()?;
    Some(m.into_iter().map(|(k, v)| (k, v.to_string())).collect())
}

/// A deeply nested JSON value.
fn nested(rng: &mut StdRng) -> String {
    let depth = *[2usize, 64, 127, 128, 129, 500, 5_000, 100_000]
        .choose(rng)
        .unwrap();
    if rng.gen_bool(0.5) {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }
}

/// A value of some JSON type, for wrong-type mutations.
fn any_value(rng: &mut StdRng) -> String {
    match rng.gen_range(0..10) {
        0 => "null".into(),
        1 => "true".into(),
        2 => "[]".into(),
        3 => "{}".into(),
        4 => "[\"email\"]".into(),
        5 => "{\"$numberLong\":\"5\"}".into(),
        6 => "4".into(),
        7 => "4.5".into(),
        8 => nested(rng),
        _ => jstr("x"),
    }
}

/// Mutates one line. `ids` holds ids seen so far (for duplicated ids with other content).
fn mutate(rng: &mut StdRng, line: &[u8], ids: &[String], base: Millis) -> Vec<u8> {
    let mut b = line.to_vec();
    match rng.gen_range(0..20) {
        // Byte-level.
        0 => {
            for _ in 0..rng.gen_range(1..4) {
                if !b.is_empty() {
                    let i = rng.gen_range(0..b.len());
                    b[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            b
        }
        1 => {
            if !b.is_empty() {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            b
        }
        2 => {
            b.truncate(rng.gen_range(0..=b.len()));
            b
        }
        3 => {
            let i = rng.gen_range(0..=b.len());
            let ins: &[u8] = [
                &[0xff][..],
                &[0xc3],
                &[0xed, 0xa0, 0x80],
                &[0xf4, 0x90, 0x80, 0x80],
                &[0],
                b"\"",
                b"\\",
                b"{",
                b"}",
                b",",
                b"\xef\xbb\xbf",
            ]
            .choose(rng)
            .unwrap();
            b.splice(i..i, ins.iter().copied());
            b
        }
        4 => {
            if b.len() > 2 {
                let i = rng.gen_range(0..b.len() - 1);
                let j = rng.gen_range(i + 1..=b.len());
                b.drain(i..j);
            }
            b
        }
        5 => {
            let (pre, post): (&[u8], &[u8]) = *[
                (&b"\xef\xbb\xbf"[..], &b""[..]),
                (b" \t\r\n", b" \n"),
                (b"", b" trailing"),
                (b"", b"{}"),
                (b"[", b"]"),
                (b"", b"\x00"),
            ]
            .choose(rng)
            .unwrap();
            let mut v = pre.to_vec();
            v.extend_from_slice(&b);
            v.extend_from_slice(post);
            v
        }
        // Field-level.
        _ => {
            let Some(mut f) = fields_of(&b) else {
                b.reverse();
                return b;
            };
            if f.is_empty() {
                return b"{\"id\":{}}".to_vec();
            }
            let i = rng.gen_range(0..f.len());
            match rng.gen_range(0..14) {
                0 => {
                    let j = rng.gen_range(0..f.len());
                    let (a, c) = (f[i].1.clone(), f[j].1.clone());
                    f[i].1 = c;
                    f[j].1 = a;
                }
                1 => {
                    let names = [
                        "id",
                        "type",
                        "time",
                        "customer",
                        "ticket",
                        "score",
                        "amount",
                        "handle_seconds",
                        "team",
                        "public",
                    ];
                    f[i].0 = names.choose(rng).unwrap().to_string();
                }
                2 => {
                    f.remove(i);
                }
                3 => {
                    let d = f[i].clone();
                    f.push((d.0, any_value(rng)));
                }
                4 => f[i].1 = any_value(rng),
                5 => {
                    if let Some(t) = f.iter_mut().find(|(k, _)| k == "time") {
                        t.1 = edge_time(rng, base);
                    }
                }
                6 => {
                    let k = *["amount", "handle_seconds", "score"].choose(rng).unwrap();
                    let max = if k == "amount" { 1e12 } else { 604_800.0 };
                    let v = number(rng, max);
                    match f.iter_mut().find(|(n, _)| n == k) {
                        Some(x) => x.1 = v,
                        None => f.push((k.into(), v)),
                    }
                }
                7 => {
                    if let Some(old) = ids.choose(rng) {
                        if let Some(x) = f.iter_mut().find(|(k, _)| k == "id") {
                            x.1 = jstr(old);
                        }
                    }
                }
                8 => {
                    if let Some(x) = f.iter_mut().find(|(k, _)| k == "type") {
                        x.1 = if rng.gen_range(0..5) == 0 {
                            jstr(
                                ["ticket.closed", "", "TICKET.CREATED", "ticket"]
                                    .choose(rng)
                                    .unwrap(),
                            )
                        } else {
                            jstr(TYPES.choose(rng).unwrap())
                        };
                    }
                }
                9 => {
                    let k = [
                        "id", "customer", "ticket", "agent", "team", "order", "reason",
                    ]
                    .choose(rng)
                    .unwrap();
                    let v = ident(rng, k, 3);
                    match f.iter_mut().find(|(n, _)| n == k) {
                        Some(x) => x.1 = v,
                        None => f.push((k.to_string(), v)),
                    }
                }
                10 => f.push(("extra".into(), nested(rng))),
                11 => {
                    let v = f[i].1.clone();
                    if v.starts_with('"') && v.len() >= 2 {
                        let at = rng.gen_range(1..v.len());
                        if v.is_char_boundary(at) {
                            let esc = [
                                "\\ud800",
                                "\\udfff",
                                "\\ud83d\\ude00",
                                "\\u0000",
                                "\\/",
                                "\\x",
                            ]
                            .choose(rng)
                            .unwrap();
                            f[i].1 = format!("{}{}{}", &v[..at], esc, &v[at..]);
                        }
                    }
                }
                12 => {
                    // Non-UTF-8 bytes inside a string value.
                    let mut out = render(&f);
                    if let Some(p) = out.iter().rposition(|&c| c == b'"') {
                        out.insert(p, *[0x80u8, 0xfe, 0xc0, 0xed].choose(rng).unwrap());
                    }
                    return out;
                }
                _ => {
                    f.push(("comment".into(), jstr(&"\"".repeat(rng.gen_range(0..2000)))));
                }
            }
            render(&f)
        }
    }
}

/// Random bytes: uniform, or from a JSON-ish alphabet.
fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let len = *pick(rng, &[(5, 0usize), (40, 16), (40, 120), (15, 600)]);
    let len = rng.gen_range(0..=len);
    if rng.gen_bool(0.5) {
        (0..len).map(|_| rng.gen()).collect()
    } else {
        const ALPHA: &[u8] = b"{}[]\":,0123456789.eE+-truefalsnl \\u\n\tidtypecustomer";
        let mut v: Vec<u8> = (0..len).map(|_| *ALPHA.choose(rng).unwrap()).collect();
        if rng.gen_bool(0.5) {
            v.insert(0, b'{');
        }
        v
    }
}

/// Builds case `seed`.
pub fn case(seed: u64, limits: Limits) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let rng = &mut rng;
    let cfg = config(rng);
    debug_assert!(cfg.validate().is_ok());
    let partitions = *pick(rng, &[(3, 1), (3, 2), (3, 3), (1, 7)]);
    let mode = *pick(rng, &[(6, 0u8), (2, 1), (2, 2)]);
    let routing = if mode == 0 && rng.gen_bool(0.3) {
        Routing::Engine(if rng.gen_bool(0.5) {
            Partitioner::Crc32
        } else {
            Partitioner::Murmur2
        })
    } else {
        Routing::Fixed
    };
    let completion = if mode == 2 {
        *pick(rng, &[(2, CompletionKind::Of), (1, CompletionKind::Topic)])
    } else {
        *pick(
            rng,
            &[
                (4, CompletionKind::Present),
                (4, CompletionKind::Of),
                (2, CompletionKind::Topic),
            ],
        )
    };
    // Fixed routing: by customer (as a keyed producer does) or scattered at random (not
    // with checkpoints: records of one customer's state on two partitions share ids).
    let scatter = routing == Routing::Fixed && mode != 2 && rng.gen_bool(0.25);

    let anytime = rng.gen_range(0..4_102_444_800_000);
    let base: Millis = *pick(
        rng,
        &[
            (10, 1_795_334_400_000), // 2026-11-22T08:00:00Z, the generator's default
            (2, 0),
            (2, anytime),
            (1, YEAR_9999_END - 3 * DAY),
            (1, YEAR_0000 + DAY),
        ],
    );
    let n_inputs = {
        let max = limits.max_inputs.max(1);
        let sizes = [
            (3, rng.gen_range(1..=max.min(50))),
            (6, rng.gen_range(1..=max.min(400))),
            (1, rng.gen_range(1..=max)),
        ];
        *pick(rng, &sizes)
    };
    let generator_share = if (0..4_102_444_800_000).contains(&base) {
        *[0.0, 0.5, 0.9, 1.0].choose(rng).unwrap()
    } else {
        0.0
    };
    let mutate_rate = *[0.0, 0.02, 0.1, 0.3, 0.7].choose(rng).unwrap();
    let random_rate = *[0.0, 0.01, 0.05, 0.2].choose(rng).unwrap();
    let dup_rate = *[0.0, 0.02, 0.1].choose(rng).unwrap();

    let mut gen = (generator_share > 0.0).then(|| {
        Generator::new(GenerateOptions {
            events: n_inputs as u64,
            seed: rng.gen(),
            start_ms: base,
            customers: *[1u32, 3, 20, 300].choose(rng).unwrap(),
            tickets_per_hour: *[10.0, 600.0, 20_000.0].choose(rng).unwrap(),
            invalid_ratio: *[0.0, 0.05].choose(rng).unwrap(),
            duplicate_ratio: *[0.0, 0.05].choose(rng).unwrap(),
            orphan_ratio: *[0.0, 0.05].choose(rng).unwrap(),
        })
    });
    let mut synth = Synth {
        customers: rng.gen_range(1..12),
        tickets: rng.gen_range(1..8),
        time: base,
        next_id: 0,
    };

    let max_event_bytes = *pick(rng, &[(12, 1usize << 20), (1, 64), (2, 300), (2, 4096)]);
    let max_future = dur(rng, &[0, MINUTE, HOUR, DAY]).0;
    let fixed_now = base + rng.gen_range(-DAY..=30 * DAY);
    let clock = *pick(
        rng,
        &[
            (3, Clock::None),
            (2, Clock::Fixed(fixed_now)),
            (3, Clock::PerInput),
        ],
    );

    let mut lines: Vec<(Vec<u8>, Millis)> = Vec::with_capacity(n_inputs);
    let mut ids: Vec<String> = Vec::new();
    let mut last_time = base;
    while lines.len() < n_inputs {
        let r: f64 = rng.gen();
        let (mut bytes, t) = if r < random_rate {
            (random_bytes(rng), last_time)
        } else if r < random_rate + dup_rate && !lines.is_empty() {
            let k = rng.gen_range(lines.len().saturating_sub(30)..lines.len());
            lines[k].clone()
        } else if rng.gen::<f64>() < generator_share {
            match gen.as_mut().and_then(|g| g.next()) {
                Some(g) => (g.line.into_bytes(), g.time_ms),
                None => (render(&synth.event(rng, base)), synth.time),
            }
        } else {
            let f = synth.event(rng, base);
            (render(&f), synth.time)
        };
        last_time = t;
        if let Some(id) = fields_of(&bytes).and_then(|f| {
            f.into_iter()
                .find(|(k, _)| k == "id")
                .and_then(|(_, v)| serde_json::from_str::<String>(&v).ok())
        }) {
            if ids.len() < 64 {
                ids.push(id);
            } else {
                let k = rng.gen_range(0..ids.len());
                ids[k] = id;
            }
        }
        if rng.gen::<f64>() < mutate_rate {
            bytes = mutate(rng, &bytes, &ids, base);
            if rng.gen_bool(0.2) {
                bytes = mutate(rng, &bytes, &ids, base);
            }
        }
        if limits.huge_inputs && rng.gen_range(0..20_000) == 0 {
            // Over 1 MiB of quotes: the worst case of the dead letter's escaped prefix.
            let mut v = b"{\"id\":\"".to_vec();
            v.extend(std::iter::repeat_n(b'"', (1 << 20) + 10));
            bytes = v;
        } else if max_event_bytes < 1 << 20 && rng.gen_range(0..50) == 0 {
            bytes.extend(std::iter::repeat_n(b' ', max_event_bytes));
        }
        lines.push((bytes, t));
    }
    // Some local disorder: swap near neighbours.
    if rng.gen_bool(0.3) {
        for _ in 0..lines.len() / 10 {
            let i = rng.gen_range(0..lines.len());
            let j = (i + rng.gen_range(1..5)).min(lines.len() - 1);
            lines.swap(i, j);
        }
    }

    let part_of = |rng: &mut StdRng, bytes: &[u8]| -> i32 {
        if scatter {
            return rng.gen_range(0..partitions);
        }
        match decode(bytes) {
            Ok(ev) => Partitioner::Crc32.partition(ev.customer.as_bytes(), partitions),
            Err(_) => rng.gen_range(0..partitions),
        }
    };
    let advance_rate = *[0.0, 0.0, 0.01, 0.05].choose(rng).unwrap();
    let mut ops = Vec::with_capacity(lines.len() + 8);
    let mut last: Vec<Millis> = vec![base; partitions as usize];
    for (bytes, t) in lines {
        let part = part_of(rng, &bytes);
        last[part as usize] = last[part as usize].max(t);
        let now = match clock {
            Clock::PerInput => t + *pick(rng, &[(8, 0), (2, SECOND), (1, -2 * HOUR), (1, DAY)]),
            _ => 0,
        };
        ops.push(Op::Input { part, bytes, now });
        if rng.gen::<f64>() < advance_rate {
            let p = rng.gen_range(0..partitions);
            let to = last[p as usize] + rng.gen_range(-HOUR..=DAY);
            ops.push(Op::Advance { part: p, to });
        }
    }

    let mode = match mode {
        0 => Mode::Plain,
        1 => Mode::Interleave,
        _ => {
            let n_steps = rng.gen_range(1..8);
            let mut steps = Vec::new();
            for _ in 0..n_steps {
                let at = rng.gen_range(0..=ops.len());
                steps.push(match rng.gen_range(0..7) {
                    0..=2 => Step::Checkpoint(at, rng.gen_range(0..=255)),
                    3 => Step::Abandon(at),
                    4 => Step::CrashMid(at, rng.gen_range(0..30)),
                    5 => Step::Crash(at),
                    _ => Step::CheckpointCrash(at),
                });
            }
            let compact = (0..rng.gen_range(1..4))
                .map(|_| *[0.0, 0.3, 0.9, 1.0].choose(rng).unwrap())
                .collect();
            Mode::Checkpoint(steps, compact)
        }
    };
    let drain_every = *[1usize, 1, 7, 100].choose(rng).unwrap();
    let metrics = rng.gen_bool(0.2);
    Case {
        seed,
        cfg,
        partitions,
        routing,
        completion,
        max_event_bytes,
        max_future,
        clock,
        ops,
        mode,
        drain_every,
        metrics,
        base,
    }
}
