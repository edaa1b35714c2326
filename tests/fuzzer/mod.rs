//! A structured fuzzer over decode + engine + window close (issue 12), shared by the short run
//! in `cargo test` (`tests/fuzz.rs`) and the long-run command (`examples/fuzz.rs`).
//!
//! A *case* is derived from one seed ([`gen::case`]): a random configuration (windows,
//! lateness, groups, horizons, SLA targets, signal settings), a partition count and split,
//! admission bounds (`max_event_bytes`, `max_future` and a reference clock), and a stream of
//! inputs — valid events from cxstream's generator and hand-built ones over small pools of
//! customers and tickets, mutated ones (bit flips, truncation, field swaps, huge numbers,
//! out-of-range dates incl. year 9999, duplicated ids, wrong types, deep nesting, non-UTF-8,
//! oversized), random bytes — with idle watermark advances between them.
//!
//! Each case runs in one of three modes: *plain*; *interleave* (the same per-partition
//! streams in another interleaving must give the same records and counters, SPEC §2); and
//! *checkpoint* (checkpoints, crashes — also mid-checkpoint —, abandoned checkpoints and log
//! compaction at random points must give the records of an uninterrupted run, SPEC §7).
//!
//! Invariants checked on every engine (every incarnation, in every mode):
//! - nothing panics, `finish()` returns, and afterwards no window part is left open or
//!   waiting for the merge, and no record is left undrained;
//! - every input is accounted for: per disposition returned by `feed_routed`, and
//!   `applied + invalid + duplicate + orphan + ticket_exists = inputs fed` in `stats()`, each
//!   term equal to the dispositions counted;
//! - every record serializes to a JSON object of its `type`; a dead letter exists exactly
//!   for each invalid, orphan and `ticket exists` input, with a known reason that matches the
//!   disposition, an `id`, an `error`, its source position, and the payload lossless (or, when
//!   oversized, a prefix of it whose escaped form fits 64 KiB, plus the size);
//! - window records: aligned `[start, start + size)` of a configured size, group keys of a
//!   configured group, counts consistent within the record (fcr ≤ first solved ≤ solved,
//!   NPS classes add up, ratios and means in range or null exactly when empty, summaries
//!   ordered min ≤ p50 ≤ p90 ≤ p99 ≤ max, min ≤ mean ≤ max, revenue finite), each key emitted
//!   once, `partial` only at the end; across records, every group set adds up to the `{}`
//!   group, a smaller window size nested in a larger one never counts more, and with no late
//!   contribution the windows hold every applied `ticket.created`, `order.placed`,
//!   `contact.handled`, reopen and escalation;
//! - alerts: `sla.breached` at its due, `recovery.needed` due = time + `recovery_due`,
//!   `churn.risk` score at least the threshold with reasons;
//! - with the Prometheus layer attached: the exposition parses, state gauges are never
//!   negative, `events_total` equals the applied events.
//!
//! Records with a derived time after the year 9999 (a window end, due or horizon past the
//! last instant RFC 3339 can write, written with a five-digit year; see
//! `check::unwritable_time`) are counted, not failed, and left out of the comparisons between
//! runs. Event times outside the years 0000–9999 are rejected at decode.
//!
//! ```text
//! gen.rs      cases: configuration, partitions, admission, inputs and their mutations
//! mod.rs      one engine's life (feed, drain, finish) and the invariants above; the modes
//! check.rs    checks of single records and values
//! durable.rs  checkpoint mode
//! cases.rs    cases as files (dump/load), shrinking
//! ```

#![allow(dead_code)]

pub mod gen;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use cxstream::config::Config;
use cxstream::engine::{CheckpointMeta, Completion, Disposition, Engine, Stats};
use cxstream::event::{EventType, InvalidReason, SourcePos};
use cxstream::metrics::Metrics;
use cxstream::output::{Record, Rejection, DEADLETTER_PAYLOAD};
use cxstream::source::{feed_routed, Admission, Route};
use cxstream::state::{self, Key, LogImage, StateRecord};
use cxstream::ts::{self, Millis};

use gen::{Case, Clock, CompletionKind, Mode, Op, Routing, Step};

/// Counters over runs.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Inputs generated (each counted once per case).
    pub inputs: u64,
    /// Inputs fed to an engine (replays after a restore and second interleavings included).
    pub fed: u64,
    /// Dispositions of the inputs fed.
    pub applied: u64,
    pub invalid: u64,
    pub duplicate: u64,
    pub orphan: u64,
    pub ticket_exists: u64,
    /// Invalid inputs by reason.
    pub invalid_by: BTreeMap<&'static str, u64>,
    /// Idle advances.
    pub advances: u64,
    /// Records drained, by type.
    pub records: BTreeMap<&'static str, u64>,
    /// Cases by mode.
    pub plain: u64,
    pub interleave: u64,
    pub checkpoint: u64,
    /// Checkpoints completed, crashes, partitions restored.
    pub checkpoints: u64,
    pub crashes: u64,
    pub restores: u64,
    /// Cases with the Prometheus layer.
    pub with_metrics: u64,
    /// Cases through the parts topic (`Completion::Topic`), and restarts of its merge step.
    pub topic: u64,
    pub merge_restarts: u64,
    /// Engine incarnations whose accounting identity was checked.
    pub engines: u64,
    /// Records with a derived time after the year 9999 (see [`unwritable_time`]): counted,
    /// not a failure.
    pub unwritable_times: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.cases += o.cases;
        self.inputs += o.inputs;
        self.fed += o.fed;
        self.applied += o.applied;
        self.invalid += o.invalid;
        self.duplicate += o.duplicate;
        self.orphan += o.orphan;
        self.ticket_exists += o.ticket_exists;
        for (k, v) in &o.invalid_by {
            *self.invalid_by.entry(k).or_default() += v;
        }
        self.advances += o.advances;
        for (k, v) in &o.records {
            *self.records.entry(k).or_default() += v;
        }
        self.plain += o.plain;
        self.interleave += o.interleave;
        self.checkpoint += o.checkpoint;
        self.checkpoints += o.checkpoints;
        self.crashes += o.crashes;
        self.restores += o.restores;
        self.with_metrics += o.with_metrics;
        self.topic += o.topic;
        self.merge_restarts += o.merge_restarts;
        self.engines += o.engines;
        self.unwritable_times += o.unwritable_times;
    }
}

type Check = Result<(), String>;

/// The first and last instants RFC 3339 can write (years 0000–9999).
const YEAR_0000: Millis = -62_167_219_200_000;
const YEAR_9999_END: Millis = 253_402_300_799_999;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

mod cases;
mod check;
mod durable;
mod topic;

pub use cases::*;
use check::*;
use durable::run_checkpointed;

/// What one input became, for matching dead letters to inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Applied,
    Invalid,
    Duplicate,
    Orphan,
    Exists,
}

/// One engine's life: from creation (or restore) to finish or crash.
struct Life<'c> {
    case: &'c Case,
    engine: Engine,
    /// The parts topic and its merge step (`CompletionKind::Topic`).
    topic: Option<topic::TopicMerge>,
    metrics: Option<Arc<Metrics>>,
    /// Dispositions of the inputs fed to this engine.
    counts: Tally,
    /// Fate of each input (by op index) fed to this engine.
    fates: HashMap<usize, Fate>,
    /// Dead letters seen, by op index.
    dead_letters: BTreeSet<usize>,
    /// Window keys emitted by this engine.
    window_keys: BTreeSet<String>,
    /// Window records as JSON (cross-record checks).
    windows: Vec<Value>,
    /// Every record as (identity, line), in order.
    out: Vec<(String, String)>,
    finished: bool,
    /// A record had a time after the year 9999 (see [`unwritable_time`]): the checks across
    /// window records are skipped.
    tainted: bool,
    /// Identities of those records (skipped when comparing runs: they collide).
    unwritable: BTreeSet<String>,
}

fn admission(case: &Case, now: Millis) -> Admission {
    Admission {
        max_event_bytes: case.max_event_bytes,
        max_future: case.max_future,
        now: match case.clock {
            Clock::None => None,
            Clock::Fixed(t) => Some(t),
            Clock::PerInput => Some(now),
        },
    }
}

fn position(part: i32, idx: usize) -> SourcePos {
    SourcePos::Kafka {
        topic: "in".into(),
        partition: part,
        offset: idx as i64,
    }
}

fn identity(r: &Record) -> String {
    r.id().unwrap_or_else(|| format!("window {}", r.key()))
}

impl<'c> Life<'c> {
    fn new(case: &'c Case) -> Life<'c> {
        let mut engine = Engine::new(Arc::new(case.cfg.clone()));
        let n = case.partitions;
        match case.completion {
            CompletionKind::Present => (0..n).for_each(|p| engine.assign(p)),
            CompletionKind::Of => engine.set_completion(Completion::Of((0..n).collect())),
            CompletionKind::Topic => engine.set_completion(Completion::Topic),
        }
        let topic = (case.completion == CompletionKind::Topic).then(|| topic::TopicMerge::new(n));
        let metrics = case.metrics.then(|| {
            let m = Metrics::new(&case.cfg);
            engine.set_observer(m.observer());
            m
        });
        Life {
            case,
            engine,
            topic,
            metrics,
            counts: Tally::default(),
            fates: HashMap::new(),
            dead_letters: BTreeSet::new(),
            window_keys: BTreeSet::new(),
            windows: Vec::new(),
            out: Vec::new(),
            finished: false,
            tainted: false,
            unwritable: BTreeSet::new(),
        }
    }

    /// Applies op `idx`.
    fn apply(&mut self, idx: usize, op: &Op) -> Check {
        match op {
            Op::Input { part, bytes, now } => {
                let route = match self.case.routing {
                    Routing::Fixed => Route::Fixed(*part),
                    Routing::Engine(how) => Route::ByCustomer(how, self.case.partitions),
                };
                let adm = admission(self.case, *now);
                let fed = feed_routed(
                    &mut self.engine,
                    route,
                    bytes,
                    || position(*part, idx),
                    &adm,
                );
                let c = &mut self.counts;
                c.fed += 1;
                let fate = match fed.disposition {
                    Disposition::Applied => {
                        c.applied += 1;
                        Fate::Applied
                    }
                    Disposition::Invalid => {
                        c.invalid += 1;
                        Fate::Invalid
                    }
                    Disposition::Duplicate => {
                        c.duplicate += 1;
                        Fate::Duplicate
                    }
                    Disposition::Rejected(Rejection::UnknownTicket) => {
                        c.orphan += 1;
                        Fate::Orphan
                    }
                    Disposition::Rejected(Rejection::TicketExists) => {
                        c.ticket_exists += 1;
                        Fate::Exists
                    }
                };
                ensure!(
                    (fate == Fate::Invalid) == fed.time.is_none(),
                    "input {idx}: disposition {:?} with time {:?}",
                    fed.disposition,
                    fed.time
                );
                ensure!(
                    self.fates.insert(idx, fate).is_none(),
                    "input {idx} fed twice to one engine"
                );
            }
            Op::Advance { part, to } => {
                self.counts.advances += 1;
                self.engine.advance_partition(*part, *to);
            }
        }
        Ok(())
    }

    fn drain(&mut self) -> Check {
        let mut records: Vec<Record> = self.engine.drain().collect();
        if let Some(t) = &mut self.topic {
            if self.finished {
                // The end of the input: never part of the merge state.
                let finals = self.engine.take_parts();
                self.engine.watermark_updates();
                t.flush(finals, &mut records);
            } else {
                t.pump(&mut self.engine, &mut records)?;
            }
        }
        for r in &records {
            if let Some(m) = &self.metrics {
                m.record(r);
            }
            self.check_record(r)?;
        }
        Ok(())
    }

    /// The merge step of the parts topic crashes and starts again from its marks; what it
    /// emits again is checked like any record.
    fn restart_merge(&mut self) -> Check {
        let mut records = Vec::new();
        if let Some(t) = &mut self.topic {
            t.restart(&mut records)?;
            self.counts.merge_restarts += 1;
        }
        for r in &records {
            if let Some(m) = &self.metrics {
                m.record(r);
            }
            self.check_record(r)?;
        }
        Ok(())
    }

    /// The merge step writes its marks (after a drain: what it emitted is out).
    fn mark_merge(&mut self) -> Check {
        self.drain()?;
        if let Some(t) = &mut self.topic {
            t.mark()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Check {
        self.engine.finish();
        self.finished = true;
        self.drain()?;
        ensure!(
            self.engine.pending_records() == 0,
            "records left after drain"
        );
        if self.engine.max_event_time().is_some() {
            ensure!(
                self.engine.open_window_aggregates() == 0,
                "{} window parts still open after finish",
                self.engine.open_window_aggregates()
            );
            ensure!(
                self.engine.merge_pending_windows() == 0,
                "{} windows still waiting for the merge after finish",
                self.engine.merge_pending_windows()
            );
        }
        Ok(())
    }

    /// The accounting identity and the dead-letter match, at the end of this engine's life.
    fn check_accounting(&self) -> Check {
        let s = self.engine.stats();
        let c = &self.counts;
        let invalid: u64 = s.invalid.iter().sum();
        let sum = s.events_total() + invalid + s.duplicates + s.orphans + s.ticket_exists;
        ensure!(
            sum == c.fed,
            "accounting: applied {} + invalid {} + duplicate {} + orphan {} + ticket_exists {} = {} != {} inputs fed",
            s.events_total(),
            invalid,
            s.duplicates,
            s.orphans,
            s.ticket_exists,
            sum,
            c.fed
        );
        ensure!(
            (
                s.events_total(),
                invalid,
                s.duplicates,
                s.orphans,
                s.ticket_exists
            ) == (c.applied, c.invalid, c.duplicate, c.orphan, c.ticket_exists),
            "stats() {:?} differ from the dispositions returned {:?}",
            (
                s.events_total(),
                invalid,
                s.duplicates,
                s.orphans,
                s.ticket_exists
            ),
            (c.applied, c.invalid, c.duplicate, c.orphan, c.ticket_exists)
        );
        let expected: BTreeSet<usize> = self
            .fates
            .iter()
            .filter(|(_, f)| matches!(f, Fate::Invalid | Fate::Orphan | Fate::Exists))
            .map(|(i, _)| *i)
            .collect();
        if expected != self.dead_letters {
            let missing: Vec<_> = expected.difference(&self.dead_letters).take(5).collect();
            let extra: Vec<_> = self.dead_letters.difference(&expected).take(5).collect();
            return Err(format!(
                "dead letters do not match the rejected inputs: missing for inputs {missing:?}, extra for {extra:?}"
            ));
        }
        let dl = s.records.get("deadletter").copied().unwrap_or(0);
        ensure!(
            dl == self.dead_letters.len() as u64,
            "stats().records counts {dl} dead letters, {} drained",
            self.dead_letters.len()
        );
        ensure!(
            s.customers_at_risk >= 0 && s.recovery_open_cases >= 0,
            "negative gauges in stats(): at risk {}, recovery open {}",
            s.customers_at_risk,
            s.recovery_open_cases
        );
        Ok(())
    }

    fn tally(&self) -> Tally {
        let mut t = self.counts.clone();
        let s = self.engine.stats();
        for r in InvalidReason::ALL {
            let v = s.invalid[*r as usize];
            if v > 0 {
                *t.invalid_by.entry(r.as_str()).or_default() += v;
            }
        }
        t.engines = 1;
        t
    }

    fn check_record(&mut self, r: &Record) -> Check {
        let line = r.to_line();
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| format!("record does not parse as JSON ({e}): {line}"))?;
        ensure!(v.is_object(), "record is not an object: {line}");
        ensure!(
            v["type"] == r.type_name(),
            "record type {} but JSON says {}",
            r.type_name(),
            v["type"]
        );
        ensure!(!r.key().is_empty(), "record with an empty key: {line}");
        *self.counts.records.entry(r.type_name()).or_default() += 1;
        let id = identity(r);
        if unwritable_time(r) {
            // Written with a year outside 0000–9999 (not RFC 3339, so the checks that
            // read times back do not apply): count them, check nothing more.
            self.counts.unwritable_times += 1;
            self.tainted = true;
            self.unwritable.insert(id.clone());
            self.out.push((id, line));
            return Ok(());
        }
        let res = match r.type_name() {
            "deadletter" => self.check_dead_letter(r, &v),
            "kpi.window" => self.check_window(r, &v),
            "sla.breached" => check_breach(&v),
            "churn.risk" => check_churn(&self.case.cfg, &v),
            "recovery.needed" => check_recovery(&self.case.cfg, &v),
            "recovery.overdue" => {
                ensure!(v["time"] == v["due"], "recovery.overdue not at its due");
                Ok(())
            }
            other => Err(format!("unknown record type {other}")),
        };
        if let Some(rid) = r.id() {
            ensure!(
                v["id"] == rid.as_str(),
                "record id {} but JSON says {}",
                rid,
                v["id"]
            );
        }
        res.map_err(|e| format!("{e}\n  record: {}", truncate(&line, 2000)))?;
        self.out.push((id, line));
        Ok(())
    }

    fn check_dead_letter(&mut self, r: &Record, v: &Value) -> Check {
        let Record::DeadLetter(d) = r else {
            unreachable!()
        };
        let SourcePos::Kafka { offset, .. } = d.source else {
            return Err("dead letter with a file position".into());
        };
        let idx = offset as usize;
        let Some(Op::Input { bytes, .. }) = self.case.ops.get(idx) else {
            return Err(format!("dead letter for op {idx}, which is no input"));
        };
        let fate = self.fates.get(&idx).copied();
        let reason = v["reason"].as_str().unwrap_or("");
        let ok = match fate {
            Some(Fate::Invalid) => InvalidReason::ALL.iter().any(|x| x.as_str() == reason),
            Some(Fate::Orphan) => reason == "unknown ticket",
            Some(Fate::Exists) => reason == "ticket exists",
            _ => false,
        };
        ensure!(
            ok,
            "dead letter with reason {reason:?} for input {idx} whose disposition was {fate:?}"
        );
        ensure!(
            self.dead_letters.insert(idx),
            "two dead letters for input {idx}"
        );
        ensure!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "dead letter without error"
        );
        ensure!(
            v["source"]["topic"] == "in" && v["source"]["offset"] == offset,
            "dead letter source {}",
            v["source"]
        );
        let payload = v["payload"].as_str().ok_or("dead letter without payload")?;
        match v.get("size") {
            Some(size) => {
                ensure!(reason == "bad_length", "a size on a {reason} dead letter");
                ensure!(
                    size.as_u64() == Some(bytes.len() as u64),
                    "size {size} of a {}-byte input",
                    bytes.len()
                );
                ensure!(
                    bytes.len() > self.case.max_event_bytes,
                    "truncated dead letter of an input within max_event_bytes"
                );
                let escaped = serde_json::to_string(payload).unwrap().len() - 2;
                ensure!(
                    escaped <= DEADLETTER_PAYLOAD,
                    "dead letter payload escapes to {escaped} bytes, more than {DEADLETTER_PAYLOAD}"
                );
                ensure!(
                    String::from_utf8_lossy(bytes).starts_with(payload),
                    "truncated payload is not a prefix of the input"
                );
            }
            None => {
                let got = match v.get("payload_base64") {
                    Some(b) => base64::engine::general_purpose::STANDARD
                        .decode(b.as_str().ok_or("payload_base64 not a string")?)
                        .map_err(|e| format!("payload_base64: {e}"))?,
                    None => payload.as_bytes().to_vec(),
                };
                ensure!(
                    got == *bytes,
                    "dead letter payload differs from the input ({} vs {} bytes)",
                    got.len(),
                    bytes.len()
                );
            }
        }
        Ok(())
    }

    fn check_window(&mut self, r: &Record, v: &Value) -> Check {
        let key = r.key();
        ensure!(
            self.window_keys.insert(key.clone()),
            "window {key} emitted twice by one engine"
        );
        let cfg = &self.case.cfg;
        let w = &v["window"];
        let start = time_of(&w["start"])?;
        let end = time_of(&w["end"])?;
        let size = w["size_seconds"].as_i64().ok_or("size_seconds")? * 1000;
        ensure!(
            cfg.engine.windows.iter().any(|d| d.0 == size),
            "window size {size} ms not configured"
        );
        ensure!(
            end - start == size,
            "window [{}, {}) is not {size} ms long",
            w["start"],
            w["end"]
        );
        ensure!(start.rem_euclid(size) == 0, "window start not aligned");
        let group = v["group"].as_object().ok_or("group")?;
        let dims: BTreeSet<&str> = group.keys().map(|k| k.as_str()).collect();
        ensure!(
            cfg.engine
                .group_by
                .iter()
                .any(|g| { g.len() == dims.len() && g.iter().all(|d| dims.contains(d.as_str())) }),
            "group {dims:?} is not configured"
        );
        for (k, val) in group {
            let s = val.as_str().ok_or("group value not a string")?;
            let ok = match k.as_str() {
                "team" => (1..=64).contains(&s.chars().count()),
                "channel" => gen_enum(s, cxstream::event::Channel::parse),
                "priority" => gen_enum(s, cxstream::event::Priority::parse),
                "category" => gen_enum(s, cxstream::event::Category::parse),
                _ => false,
            };
            ensure!(ok, "group {k}={s:?}");
        }
        let all = group.is_empty();
        ensure!(
            all == v.get("churn_signals").is_some()
                && all == v.get("recovery").is_some()
                && all == v.get("repurchase").is_some(),
            "after-sales blocks only and always in the {{}} group"
        );
        let t = &v["tickets"];
        let n = |x: &Value| x.as_u64().ok_or(format!("not a count: {x}"));
        let (solved, first, fcr) = (n(&t["solved"])?, n(&t["first_solved"])?, n(&t["fcr"])?);
        for k in ["created", "reopened", "escalated"] {
            n(&t[k])?;
        }
        ensure!(
            fcr <= first && first <= solved,
            "fcr {fcr} ≤ first solved {first} ≤ solved {solved} fails"
        );
        summary(&v["first_response_seconds"], f64::INFINITY)?;
        summary(&v["resolution_seconds"], f64::INFINITY)?;
        summary(&v["handle_seconds"], 604_800.0)?;
        let csat = &v["csat"];
        let (resp, sat) = (n(&csat["responses"])?, n(&csat["satisfied"])?);
        ensure!(sat <= resp, "csat satisfied > responses");
        ratio(&csat["ratio"], resp, 0.0, 1.0)?;
        ratio(&csat["mean"], resp, 1.0, 5.0)?;
        let nps = &v["nps"];
        let nr = n(&nps["responses"])?;
        ensure!(
            n(&nps["promoters"])? + n(&nps["passives"])? + n(&nps["detractors"])? == nr,
            "nps classes do not add up"
        );
        ratio(&nps["score"], nr, -100.0, 100.0)?;
        ratio(&v["ces"]["mean"], n(&v["ces"]["responses"])?, 1.0, 7.0)?;
        for s in ["first_response", "resolution"] {
            for o in ["achieved", "breached"] {
                n(&v["sla"][s][o])?;
            }
        }
        let o = &v["orders"];
        let placed = n(&o["placed"])?;
        let revenue = o["revenue"]
            .as_f64()
            .ok_or(format!("revenue is {}", o["revenue"]))?;
        ensure!(
            revenue.is_finite() && revenue >= 0.0 && revenue <= placed as f64 * 1e12,
            "revenue {revenue} for {placed} orders"
        );
        n(&o["returned"])?;
        n(&o["warranty_claims"])?;
        n(&v["customers"]["churned"])?;
        if !all {
            for (path, what) in [
                (&o["placed"], "orders"),
                (&o["returned"], "returns"),
                (&o["warranty_claims"], "warranty claims"),
                (&v["customers"]["churned"], "churn"),
                (&nps["responses"], "nps"),
            ] {
                ensure!(path == 0, "{what} outside the {{}} group");
            }
        } else {
            summary(&v["recovery"]["answer_seconds"], f64::INFINITY)?;
        }
        ensure!(
            v["partial"] == false || self.finished,
            "a partial window before the end of the input"
        );
        let parts = v["partitions"].as_array().ok_or("partitions")?;
        let parts: Vec<i64> = parts.iter().filter_map(|p| p.as_i64()).collect();
        ensure!(
            !parts.is_empty()
                && parts.windows(2).all(|w| w[0] < w[1])
                && parts
                    .iter()
                    .all(|p| (0..self.case.partitions as i64).contains(p)),
            "partitions {parts:?}"
        );
        self.windows.push(v.clone());
        Ok(())
    }

    /// Checks across the window records of one uninterrupted engine.
    fn check_windows_across(&self) -> Check {
        if self.tainted {
            return Ok(());
        }
        let cfg = &self.case.cfg;
        // (size, start, partitions-if-parts) -> group set -> sums
        type Slot = (i64, i64, String);
        let mut by: BTreeMap<Slot, BTreeMap<Vec<String>, Sums>> = BTreeMap::new();
        for v in &self.windows {
            let size = v["window"]["size_seconds"].as_i64().unwrap() * 1000;
            let start = time_of(&v["window"]["start"])?;
            let parts = String::new();
            let mut dims: Vec<String> = v["group"].as_object().unwrap().keys().cloned().collect();
            dims.sort();
            by.entry((size, start, parts))
                .or_default()
                .entry(dims)
                .or_default()
                .add(&Sums::of(v));
        }
        for ((size, start, parts), groups) in &by {
            let Some(all) = groups.get(&Vec::new()) else {
                return Err(format!(
                    "window {size} ms at {} {parts}: group records without a {{}} record",
                    ts::format_ms(*start)
                ));
            };
            for (dims, s) in groups {
                if dims.is_empty() {
                    continue;
                }
                let channel_only = dims.len() == 1 && dims[0] == "channel";
                if let Some(e) = s.differs(all, channel_only) {
                    return Err(format!(
                        "window {size} ms at {} {parts}: group {dims:?} does not add up to {{}}: {e}",
                        ts::format_ms(*start)
                    ));
                }
            }
        }
        // A smaller window nested in a larger one never counts more.
        let mut sizes: Vec<i64> = cfg.engine.windows.iter().map(|d| d.0).collect();
        sizes.sort();
        for (i, &small) in sizes.iter().enumerate() {
            for &large in &sizes[i + 1..] {
                if large % small != 0 {
                    continue;
                }
                let mut nested: BTreeMap<(i64, String), Sums> = BTreeMap::new();
                for ((size, start, parts), groups) in &by {
                    if *size == small {
                        if let Some(s) = groups.get(&Vec::new()) {
                            nested
                                .entry((start.div_euclid(large) * large, parts.clone()))
                                .or_default()
                                .add(s);
                        }
                    }
                }
                for ((start, parts), s) in nested {
                    let big = by
                        .get(&(large, start, parts.clone()))
                        .and_then(|g| g.get(&Vec::new()));
                    let Some(big) = big else {
                        return Err(format!(
                            "{small} ms windows with data inside the {large} ms window at {} {parts}, which has no record",
                            ts::format_ms(start)
                        ));
                    };
                    if let Some(e) = s.exceeds(big) {
                        return Err(format!(
                            "{small} ms windows inside the {large} ms window at {} count more: {e}",
                            ts::format_ms(start)
                        ));
                    }
                }
            }
        }
        // Without late contributions, the windows hold every applied event's measurement.
        let s = self.engine.stats();
        if s.late_contributions == 0 {
            for &size in &sizes {
                let mut tot = Sums::default();
                for ((sz, _, _), groups) in &by {
                    if *sz == size {
                        if let Some(a) = groups.get(&Vec::new()) {
                            tot.add(a);
                        }
                    }
                }
                let ev = |t: EventType| s.events[t as usize];
                let want = [
                    ("created", ev(EventType::TicketCreated), tot.v[0]),
                    ("reopened", ev(EventType::TicketReopened), tot.v[4]),
                    ("escalated", ev(EventType::TicketEscalated), tot.v[5]),
                    ("handled", ev(EventType::ContactHandled), tot.v[8]),
                    ("orders", ev(EventType::OrderPlaced), tot.v[15]),
                ];
                for (what, applied, windows) in want {
                    ensure!(
                        applied == windows,
                        "{size} ms windows count {windows} {what}, {applied} applied and no late contribution"
                    );
                }
            }
        }
        Ok(())
    }

    fn check_metrics(&self) -> Check {
        let Some(m) = &self.metrics else {
            return Ok(());
        };
        m.sync_engine(&self.engine);
        let text = m.encode();
        let mut events = 0.0;
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (name, labels, value) =
                parse_sample(line).ok_or_else(|| format!("metrics line does not parse: {line}"))?;
            const STATE_GAUGES: [&str; 6] = [
                "cxstream_open_tickets",
                "cxstream_sla_breached_open_tickets",
                "cxstream_customers_at_risk",
                "cxstream_recovery_open_cases",
                "cxstream_state_tickets",
                "cxstream_state_customers",
            ];
            ensure!(
                !STATE_GAUGES.contains(&name) || value.is_sign_positive() || value == 0.0,
                "negative gauge: {line}"
            );
            if name == "cxstream_events_total" {
                events += value;
            }
            if name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_bucket") {
                ensure!(
                    value >= 0.0 && value.is_finite(),
                    "counter {name}{labels} = {value}"
                );
            }
        }
        let applied = self.engine.stats().events_total() as f64;
        ensure!(
            events == applied,
            "cxstream_events_total sums to {events}, {applied} applied"
        );
        Ok(())
    }
}

/// Plain mode (and each run of the others): feeds every op in order, drains now and then,
/// finishes, and checks everything.
fn run_life<'c>(case: &'c Case, order: &[usize]) -> Result<Life<'c>, String> {
    let mut life = Life::new(case);
    for (k, &i) in order.iter().enumerate() {
        life.apply(i, &case.ops[i])?;
        if (k + 1) % case.drain_every == 0 {
            life.drain()?;
        }
    }
    life.drain()?;
    life.finish()?;
    life.check_accounting()?;
    life.check_windows_across()?;
    life.check_metrics()?;
    Ok(life)
}

fn sorted_lines(life: &Life) -> Vec<String> {
    let mut v: Vec<String> = life.out.iter().map(|(_, l)| l.clone()).collect();
    v.sort();
    v
}

fn same_stats(a: &Stats, b: &Stats) -> bool {
    a.events == b.events
        && a.invalid == b.invalid
        && a.duplicates == b.duplicates
        && a.orphans == b.orphans
        && a.ticket_exists == b.ticket_exists
        && a.late_events == b.late_events
        && a.late_contributions == b.late_contributions
        && a.late_signal_inputs == b.late_signal_inputs
        && a.evicted_tickets == b.evicted_tickets
        && a.evicted_customers == b.evicted_customers
}

fn op_part(op: &Op) -> i32 {
    match op {
        Op::Input { part, .. } | Op::Advance { part, .. } => *part,
    }
}

/// Another interleaving of the same per-partition streams: partition by partition, or a
/// random merge.
fn reinterleave(case: &Case) -> Vec<usize> {
    let n = case.partitions as usize;
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, op) in case.ops.iter().enumerate() {
        queues[op_part(op) as usize].push(i);
    }
    let mut x = case.seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    if rnd() % 2 == 0 {
        // Partition-major, partitions in reverse.
        return queues.into_iter().rev().flatten().collect();
    }
    let mut heads = vec![0usize; n];
    let mut out = Vec::with_capacity(case.ops.len());
    while out.len() < case.ops.len() {
        let p = (rnd() % n as u64) as usize;
        let burst = 1 + rnd() % 20;
        for _ in 0..burst {
            if heads[p] < queues[p].len() {
                out.push(queues[p][heads[p]]);
                heads[p] += 1;
            }
        }
    }
    out
}

/// Runs case `seed` in its mode and checks every invariant. Panics propagate (the driver
/// catches them).
pub fn run_case(case: &Case) -> Result<Tally, String> {
    let mut tally = Tally {
        cases: 1,
        inputs: case
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Input { .. }))
            .count() as u64,
        with_metrics: case.metrics as u64,
        topic: (case.completion == CompletionKind::Topic) as u64,
        ..Tally::default()
    };
    let all: Vec<usize> = (0..case.ops.len()).collect();
    match &case.mode {
        Mode::Plain => {
            tally.plain = 1;
            let life = run_life(case, &all)?;
            tally.add(&life.tally());
            if case.completion == CompletionKind::Topic {
                // Through the parts topic: the same bytes as one instance merging in memory.
                let mut of = case.clone();
                of.completion = CompletionKind::Of;
                let o = run_life(&of, &all)?;
                let (lt, lo) = (sorted_lines(&life), sorted_lines(&o));
                if lt != lo {
                    let only_t: Vec<&String> =
                        lt.iter().filter(|l| !lo.contains(l)).take(2).collect();
                    let only_o: Vec<&String> =
                        lo.iter().filter(|l| !lt.contains(l)).take(2).collect();
                    return Err(format!(
                        "the parts topic's merge differs from the in-memory merge ({} vs {} records)\n  only through the topic: {:?}\n  only in memory: {:?}",
                        lt.len(),
                        lo.len(),
                        only_t.iter().map(|s| truncate(s, 1500)).collect::<Vec<_>>(),
                        only_o.iter().map(|s| truncate(s, 1500)).collect::<Vec<_>>()
                    ));
                }
            }
        }
        Mode::Interleave => {
            tally.interleave = 1;
            let a = run_life(case, &all)?;
            tally.add(&a.tally());
            let order = reinterleave(case);
            let b = run_life(case, &order)?;
            tally.add(&b.tally());
            ensure!(
                same_stats(&a.engine.stats(), &b.engine.stats()),
                "counters depend on the interleaving of partitions:\n  {:?}\n  {:?}",
                a.engine.stats(),
                b.engine.stats()
            );
            let (la, lb) = (sorted_lines(&a), sorted_lines(&b));
            if la != lb {
                let only_a: Vec<&String> = la.iter().filter(|l| !lb.contains(l)).take(2).collect();
                let only_b: Vec<&String> = lb.iter().filter(|l| !la.contains(l)).take(2).collect();
                return Err(format!(
                    "records depend on the interleaving of partitions ({} vs {} records)\n  only in order A: {:?}\n  only in order B: {:?}",
                    la.len(),
                    lb.len(),
                    only_a.iter().map(|s| truncate(s, 1500)).collect::<Vec<_>>(),
                    only_b.iter().map(|s| truncate(s, 1500)).collect::<Vec<_>>()
                ));
            }
        }
        Mode::Checkpoint(steps, compact) => {
            tally.checkpoint = 1;
            run_checkpointed(case, steps, compact, &mut tally)?;
        }
    }
    Ok(tally)
}

/// A 64-bit mix (splitmix64): the seed of case `k` of a run seeded `seed`.
pub fn case_seed(seed: u64, k: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(k.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(0x94d0_49bb_1331_11eb);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}
