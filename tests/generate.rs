//! Tests of `cxstream generate` (src/generate/): determinism, counts, SPEC §1 validity,
//! realism of the simulated service, and the injected faults.
//!
//! The validator below is written from SPEC §1 independently of the generator (and of the
//! engine's decoder), so the generator cannot be checked against its own assumptions.

use std::collections::{HashMap, HashSet};

use cxstream::generate::{write_jsonl, GenerateOptions, GeneratedLine, Generator};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const TYPES: [&str; 14] = [
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
const CHANNELS: [&str; 7] = [
    "email",
    "phone",
    "chat",
    "social",
    "web_form",
    "in_person",
    "messenger",
];
const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
const CATEGORIES: [&str; 7] = [
    "warranty",
    "return",
    "complaint",
    "question",
    "tech_support",
    "consultation",
    "other",
];
const FRT_TARGET_MS: [(&str, i64); 4] = [
    ("urgent", 900_000),
    ("high", 3_600_000),
    ("normal", 14_400_000),
    ("low", 86_400_000),
];
const RES_TARGET_MS: [(&str, i64); 4] = [
    ("urgent", 14_400_000),
    ("high", 28_800_000),
    ("normal", 86_400_000),
    ("low", 259_200_000),
];

fn opts(events: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        events,
        seed,
        ..GenerateOptions::default()
    }
}

fn faulty(events: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        invalid_ratio: 0.05,
        duplicate_ratio: 0.03,
        orphan_ratio: 0.02,
        ..opts(events, seed)
    }
}

fn bytes(o: GenerateOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_jsonl(o, &mut out).unwrap();
    out
}

fn lines(o: GenerateOptions) -> Vec<GeneratedLine> {
    Generator::new(o).collect()
}

// ------------------------------------------------------------------ SPEC §1 validator

/// Why a line is invalid, by SPEC §1 class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Invalid {
    NotJson,
    NotObject,
    Missing,
    WrongType,
    UnknownType,
    UnknownEnum,
    OutOfRange,
    BadTime,
    BadLength,
}

struct Event {
    obj: Map<String, Value>,
    ty: String,
    time_ms: i64,
}

impl Event {
    fn str(&self, k: &str) -> Option<&str> {
        self.obj.get(k).and_then(Value::as_str)
    }
}

fn present<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

/// A string field; identifiers have 1–128 chars, `team` 1–64, `reason` / `product` 0–256.
fn string_field(
    o: &Map<String, Value>,
    k: &str,
    required: bool,
    max: usize,
) -> Result<(), Invalid> {
    let min = if max == 256 { 0 } else { 1 };
    match present(o, k) {
        None if required => Err(Invalid::Missing),
        None => Ok(()),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                Err(Invalid::BadLength)
            } else {
                Ok(())
            }
        }
        Some(_) => Err(Invalid::WrongType),
    }
}

fn enum_field(
    o: &Map<String, Value>,
    k: &str,
    required: bool,
    allowed: &[&str],
) -> Result<(), Invalid> {
    match present(o, k) {
        None if required => Err(Invalid::Missing),
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(Value::String(_)) => Err(Invalid::UnknownEnum),
        Some(_) => Err(Invalid::WrongType),
    }
}

fn score_field(o: &Map<String, Value>, lo: i64, hi: i64) -> Result<(), Invalid> {
    match present(o, "score") {
        None => Err(Invalid::Missing),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => match v.as_i64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(()),
            _ => Err(Invalid::OutOfRange),
        },
        Some(_) => Err(Invalid::WrongType),
    }
}

fn nonneg_number(o: &Map<String, Value>, k: &str) -> Result<(), Invalid> {
    match present(o, k) {
        None => Err(Invalid::Missing),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => Ok(()),
        Some(Value::Number(_)) => Err(Invalid::OutOfRange),
        Some(_) => Err(Invalid::WrongType),
    }
}

/// RFC 3339 with `T` and an offset (`Z` or `±hh:mm`), to ms (digits beyond the ms dropped).
fn parse_time(s: &str) -> Result<i64, Invalid> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' {
        return Err(Invalid::BadTime);
    }
    let offset_ok = b[b.len() - 1] == b'Z'
        || (b.len() >= 25 && {
            let o = &b[b.len() - 6..];
            (o[0] == b'+' || o[0] == b'-')
                && o[1].is_ascii_digit()
                && o[2].is_ascii_digit()
                && o[3] == b':'
                && o[4].is_ascii_digit()
                && o[5].is_ascii_digit()
        });
    if !offset_ok {
        return Err(Invalid::BadTime);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| Invalid::BadTime)?;
    Ok(t.unix_timestamp_nanos().div_euclid(1_000_000) as i64)
}

fn validate(line: &str) -> Result<Event, Invalid> {
    let v: Value = serde_json::from_str(line).map_err(|_| Invalid::NotJson)?;
    let Value::Object(o) = v else {
        return Err(Invalid::NotObject);
    };
    string_field(&o, "id", true, 128)?;
    let ty = match present(&o, "type") {
        None => return Err(Invalid::Missing),
        Some(Value::String(s)) if TYPES.contains(&s.as_str()) => s.clone(),
        Some(Value::String(_)) => return Err(Invalid::UnknownType),
        Some(_) => return Err(Invalid::WrongType),
    };
    let time_ms = match present(&o, "time") {
        None => return Err(Invalid::Missing),
        Some(Value::String(s)) => parse_time(s)?,
        Some(_) => return Err(Invalid::WrongType),
    };
    string_field(&o, "customer", true, 128)?;
    match ty.as_str() {
        "ticket.created" => {
            string_field(&o, "ticket", true, 128)?;
            enum_field(&o, "channel", true, &CHANNELS)?;
            enum_field(&o, "priority", true, &PRIORITIES)?;
            string_field(&o, "team", false, 64)?;
            enum_field(&o, "category", false, &CATEGORIES)?;
        }
        "ticket.message" => {
            string_field(&o, "ticket", true, 128)?;
            enum_field(&o, "author", true, &["agent", "customer", "system"])?;
            string_field(&o, "agent", false, 128)?;
            match present(&o, "public") {
                None | Some(Value::Bool(_)) => {}
                Some(_) => return Err(Invalid::WrongType),
            }
        }
        "ticket.solved" => {
            string_field(&o, "ticket", true, 128)?;
            string_field(&o, "agent", false, 128)?;
        }
        "ticket.reopened" => string_field(&o, "ticket", true, 128)?,
        "ticket.escalated" => {
            string_field(&o, "ticket", true, 128)?;
            string_field(&o, "team", false, 64)?;
        }
        "contact.handled" => {
            string_field(&o, "agent", true, 128)?;
            enum_field(&o, "channel", true, &CHANNELS)?;
            nonneg_number(&o, "handle_seconds")?;
            string_field(&o, "ticket", false, 128)?;
        }
        "customer.contacted" => {
            string_field(&o, "agent", true, 128)?;
            enum_field(&o, "channel", true, &CHANNELS)?;
        }
        "survey.csat" => {
            score_field(&o, 1, 5)?;
            string_field(&o, "ticket", false, 128)?;
        }
        "survey.nps" => score_field(&o, 0, 10)?,
        "survey.ces" => {
            score_field(&o, 1, 7)?;
            string_field(&o, "ticket", false, 128)?;
        }
        "order.placed" => {
            string_field(&o, "order", true, 128)?;
            nonneg_number(&o, "amount")?;
        }
        "order.returned" => {
            string_field(&o, "order", true, 128)?;
            string_field(&o, "reason", false, 256)?;
        }
        "warranty.claimed" => {
            string_field(&o, "order", false, 128)?;
            string_field(&o, "product", false, 256)?;
        }
        "customer.churned" => string_field(&o, "reason", false, 256)?,
        _ => unreachable!(),
    }
    Ok(Event {
        obj: o,
        ty,
        time_ms,
    })
}

fn is_ticket_event(ty: &str) -> bool {
    matches!(
        ty,
        "ticket.message" | "ticket.solved" | "ticket.reopened" | "ticket.escalated"
    )
}

// ------------------------------------------------------------------ tests

#[test]
fn defaults_are_as_documented() {
    let d = GenerateOptions::default();
    let start = time::macros::datetime!(2026-11-22 08:00:00 UTC).unix_timestamp() * 1000;
    assert_eq!(d.start_ms, start);
    assert_eq!(d.customers, 5000);
    assert_eq!(d.tickets_per_hour, 600.0);
    assert_eq!(
        (d.invalid_ratio, d.duplicate_ratio, d.orphan_ratio),
        (0.0, 0.0, 0.0)
    );
    let first = Generator::new(opts(1, 3)).next().unwrap();
    assert_eq!(first.time_ms, start, "the first event is at start_ms");
    assert_eq!(validate(&first.line).unwrap().time_ms, start);
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a = bytes(faulty(30_000, 42));
    let b = bytes(faulty(30_000, 42));
    assert!(a == b, "same options must give byte-identical output");
    let c = bytes(faulty(30_000, 43));
    assert!(a != c, "another seed must give other output");
    // The iterator yields exactly what write_jsonl writes.
    let mut joined = Vec::new();
    for l in Generator::new(faulty(30_000, 42)) {
        joined.extend_from_slice(l.line.as_bytes());
        joined.push(b'\n');
    }
    assert!(joined == a);
    // A shorter run is a prefix of a longer one.
    let short = bytes(faulty(1_000, 42));
    assert!(a.starts_with(&short));
}

#[test]
fn line_count_equals_events() {
    for n in [0u64, 1, 2, 7, 999, 5_000] {
        for o in [opts(n, 5), faulty(n, 5)] {
            let mut out = Vec::new();
            let written = write_jsonl(o.clone(), &mut out).unwrap();
            assert_eq!(written, n);
            assert_eq!(out.iter().filter(|&&c| c == b'\n').count() as u64, n);
            assert_eq!(Generator::new(o.clone()).count() as u64, n);
            assert_eq!(
                Generator::new(o).size_hint(),
                (n as usize, Some(n as usize))
            );
        }
    }
    // Extreme ratios still give the asked number of lines.
    let all_bad = GenerateOptions {
        invalid_ratio: 1.0,
        ..opts(5_000, 1)
    };
    assert_eq!(lines(all_bad.clone()).len(), 5_000);
    assert!(lines(all_bad).iter().all(|l| validate(&l.line).is_err()));
    let over = GenerateOptions {
        invalid_ratio: 0.8,
        duplicate_ratio: 0.8,
        orphan_ratio: 0.8,
        ..opts(500, 1)
    };
    assert_eq!(lines(over).len(), 500);
}

#[test]
fn clean_stream_is_valid_per_spec() {
    let mut ids = HashSet::new();
    let mut non_z = 0usize;
    let out = lines(opts(20_000, 7));
    for l in &out {
        assert!(!l.line.contains('\n') && !l.line.contains('\r'));
        let e = validate(&l.line).unwrap_or_else(|r| panic!("{r:?}: {}", l.line));
        let id = e.str("id").unwrap().to_string();
        assert!(
            ids.insert(id),
            "duplicate id without duplicate injection: {}",
            l.line
        );
        assert_eq!(
            e.str("customer"),
            Some(l.key.as_str()),
            "key is the customer id"
        );
        assert_eq!(
            e.time_ms, l.time_ms,
            "time_ms is the instant of `time`: {}",
            l.line
        );
        let time = e.str("time").unwrap();
        if !time.ends_with('Z') {
            non_z += 1;
        }
        // Milliseconds always written (sometimes microseconds).
        let frac = time[20..].split(['Z', '+', '-']).next().unwrap();
        assert!(
            time.as_bytes()[19] == b'.' && (frac.len() == 3 || frac.len() == 6),
            "{time}"
        );
        if e.ty == "order.placed" {
            let amount = l.line.split("\"amount\":").nth(1).unwrap();
            let amount = amount.split([',', '}']).next().unwrap();
            assert_eq!(amount.split('.').nth(1).map(str::len), Some(2), "{amount}");
        }
    }
    let share = non_z as f64 / out.len() as f64;
    assert!((0.03..0.08).contains(&share), "non-Z offsets: {share}");
}

#[test]
fn every_type_and_enumeration_value_appears_in_20k_events() {
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for l in lines(opts(20_000, 11)) {
        let e = validate(&l.line).unwrap();
        seen.entry("type".into()).or_default().insert(e.ty.clone());
        for k in ["channel", "priority", "category", "author", "team"] {
            if let Some(v) = e.str(k) {
                seen.entry(format!("{}/{k}", e.ty))
                    .or_default()
                    .insert(v.to_string());
            }
        }
        if e.ty == "ticket.message" {
            let public = e.obj.get("public").and_then(Value::as_bool).unwrap_or(true);
            let who = format!("{}:{}", e.str("author").unwrap(), public);
            seen.entry("message".into()).or_default().insert(who);
        }
        if e.ty == "ticket.created" {
            for k in ["team", "category"] {
                if present(&e.obj, k).is_none() {
                    seen.entry("omitted".into()).or_default().insert(k.into());
                }
            }
        }
    }
    let has = |k: &str, v: &str| seen.get(k).is_some_and(|s| s.contains(v));
    for t in TYPES {
        assert!(has("type", t), "type {t} missing");
    }
    for c in CHANNELS {
        assert!(has("ticket.created/channel", c), "channel {c} missing");
    }
    for p in PRIORITIES {
        assert!(has("ticket.created/priority", p), "priority {p} missing");
    }
    for c in CATEGORIES {
        assert!(has("ticket.created/category", c), "category {c} missing");
    }
    for t in ["billing", "tech", "logistics", "returns", "vip"] {
        assert!(has("ticket.created/team", t), "team {t} missing");
    }
    assert!(has("ticket.escalated/team", "escalations"));
    for m in ["agent:true", "agent:false", "customer:true", "system:true"] {
        assert!(has("message", m), "message kind {m} missing");
    }
    assert!(has("omitted", "team") && has("omitted", "category"));
    for c in ["phone", "chat"] {
        assert!(has("contact.handled/channel", c));
    }
}

#[test]
fn priority_mix_matches_the_brief() {
    let mut n: HashMap<String, f64> = HashMap::new();
    let mut total = 0.0;
    for l in lines(opts(60_000, 3)) {
        let e = validate(&l.line).unwrap();
        if e.ty == "ticket.created" {
            *n.entry(e.str("priority").unwrap().into()).or_default() += 1.0;
            total += 1.0;
        }
    }
    for (p, want) in [
        ("urgent", 0.05),
        ("high", 0.20),
        ("normal", 0.55),
        ("low", 0.20),
    ] {
        let got = n[p] / total;
        assert!((got - want).abs() < 0.02, "{p}: {got}");
    }
}

#[test]
fn stream_is_time_ordered_and_tickets_are_consistent() {
    for o in [opts(50_000, 21), faulty(50_000, 21)] {
        let fault_free = o.invalid_ratio == 0.0;
        let mut max_t = i64::MIN;
        let mut created: HashSet<String> = HashSet::new();
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut seen_ids = HashSet::new();
        for l in lines(o) {
            // Every line, injected or not, within 10 s of the largest time written before it.
            assert!(
                l.time_ms >= max_t.saturating_sub(10_000),
                "too far back: {}",
                l.line
            );
            max_t = max_t.max(l.time_ms);
            let Ok(e) = validate(&l.line) else { continue };
            if !seen_ids.insert(e.str("id").unwrap().to_string()) {
                continue; // an injected duplicate
            }
            let ticket = e.str("ticket").map(str::to_string);
            if e.ty == "ticket.created" {
                let t = ticket.unwrap();
                assert!(
                    created.insert(t.clone()),
                    "ticket created twice: {}",
                    l.line
                );
                last.insert(t, e.time_ms);
            } else if is_ticket_event(&e.ty) {
                let t = ticket.unwrap();
                match last.get_mut(&t) {
                    Some(prev) => {
                        assert!(e.time_ms > *prev, "ticket events out of order: {}", l.line);
                        *prev = e.time_ms;
                    }
                    None => assert!(!fault_free, "orphan without injection: {}", l.line),
                }
            }
        }
    }
}

struct TicketSim {
    priority: String,
    created: i64,
    public_agent: u32,
    first_public: Option<i64>,
    first_solve: Option<i64>,
    internal_before_reply: bool,
    system_before_reply: bool,
}

#[test]
fn service_looks_realistic() {
    let out = lines(opts(100_000, 5));
    let mut tickets: HashMap<String, TicketSim> = HashMap::new();
    let (mut first_solved, mut fcr, mut solved_without_reply) = (0u32, 0u32, 0u32);
    let (mut reopened, mut escalated) = (0u32, 0u32);
    let mut handle = Vec::new();
    let mut max_t = i64::MIN;
    for l in &out {
        let e = validate(&l.line).unwrap();
        max_t = max_t.max(e.time_ms);
        let tk = e.str("ticket").unwrap_or("").to_string();
        match e.ty.as_str() {
            "ticket.created" => {
                let s = TicketSim {
                    priority: e.str("priority").unwrap().into(),
                    created: e.time_ms,
                    public_agent: 0,
                    first_public: None,
                    first_solve: None,
                    internal_before_reply: false,
                    system_before_reply: false,
                };
                tickets.insert(tk, s);
            }
            "ticket.message" => {
                let s = tickets.get_mut(&tk).unwrap();
                let public = e.obj.get("public").and_then(Value::as_bool).unwrap_or(true);
                let done = s.first_public.is_some() || s.first_solve.is_some();
                match (e.str("author").unwrap(), public) {
                    ("agent", true) => {
                        s.public_agent += 1;
                        if s.first_public.is_none() {
                            s.first_public = Some(e.time_ms);
                        }
                    }
                    ("agent", false) if !done => s.internal_before_reply = true,
                    ("system", _) if !done => s.system_before_reply = true,
                    _ => {}
                }
            }
            "ticket.solved" => {
                let s = tickets.get_mut(&tk).unwrap();
                if s.first_solve.is_none() {
                    s.first_solve = Some(e.time_ms);
                    first_solved += 1;
                    fcr += u32::from(s.public_agent <= 1);
                    solved_without_reply += u32::from(s.public_agent == 0);
                }
            }
            "ticket.reopened" => reopened += 1,
            "ticket.escalated" => escalated += 1,
            "contact.handled" => {
                handle.push(e.obj["handle_seconds"].as_f64().unwrap());
            }
            _ => {}
        }
    }
    let watermark = max_t - 30_000;
    let target = |table: &[(&str, i64)], p: &str| table.iter().find(|x| x.0 == p).unwrap().1;
    let (mut frt_n, mut frt_b, mut res_n, mut res_b) = (0f64, 0f64, 0f64, 0f64);
    let (mut never_answered, mut unsolved) = (0, 0);
    let (mut with_note, mut with_system) = (0, 0);
    for s in tickets.values() {
        let due = s.created + target(&FRT_TARGET_MS, &s.priority);
        let stop = match (s.first_public, s.first_solve) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if due < watermark {
            frt_n += 1.0;
            frt_b += f64::from(stop.is_none_or(|x| x > due));
            never_answered += i32::from(stop.is_none());
        }
        let due = s.created + target(&RES_TARGET_MS, &s.priority);
        if due < watermark {
            res_n += 1.0;
            res_b += f64::from(s.first_solve.is_none_or(|x| x > due));
            unsolved += i32::from(s.first_solve.is_none());
        }
        with_note += i32::from(s.internal_before_reply);
        with_system += i32::from(s.system_before_reply);
    }
    let (frt, res) = (frt_b / frt_n, res_b / res_n);
    assert!(
        (0.08..0.25).contains(&frt),
        "first-response breach ratio {frt}"
    );
    assert!((0.08..0.25).contains(&res), "resolution breach ratio {res}");
    let fcr_ratio = fcr as f64 / first_solved as f64;
    assert!((0.35..0.75).contains(&fcr_ratio), "FCR {fcr_ratio}");
    assert!(solved_without_reply > 0 && never_answered > 0 && unsolved > 0);
    assert!(with_note > 0 && with_system > 0);
    assert!(reopened > 0 && escalated > 0);
    handle.sort_by(f64::total_cmp);
    let median = handle[handle.len() / 2];
    assert!(
        (200.0..700.0).contains(&median),
        "median handle time {median}"
    );
    assert!(handle.iter().any(|h| h.fract() != 0.0));
}

#[test]
fn after_sales_signals_are_exercised() {
    // Bad surveys get follow-ups (most in 24 h, some late); dissatisfied customers churn more.
    let out = lines(opts(150_000, 9));
    let mut bad_at: HashMap<String, i64> = HashMap::new();
    let (mut in_time, mut late) = (0, 0);
    let mut bad_customers = HashSet::new();
    let mut good_customers = HashSet::new();
    let mut churned = HashSet::new();
    for l in &out {
        let e = validate(&l.line).unwrap();
        let c = e.str("customer").unwrap().to_string();
        let score = e.obj.get("score").and_then(Value::as_i64);
        match e.ty.as_str() {
            "survey.csat" | "survey.nps" => {
                let bad = if e.ty == "survey.csat" {
                    score.unwrap() <= 2
                } else {
                    score.unwrap() <= 6
                };
                let good = if e.ty == "survey.csat" {
                    score.unwrap() >= 4
                } else {
                    score.unwrap() >= 9
                };
                if bad {
                    bad_at.entry(c.clone()).or_insert(e.time_ms);
                    bad_customers.insert(c);
                } else if good {
                    good_customers.insert(c);
                }
            }
            "customer.contacted" => {
                if let Some(t) = bad_at.remove(&c) {
                    if e.time_ms - t <= 86_400_000 {
                        in_time += 1;
                    } else {
                        late += 1;
                    }
                }
            }
            "customer.churned" => {
                churned.insert(c);
            }
            _ => {}
        }
    }
    assert!(
        in_time > 50 && late > 0,
        "follow-ups in time {in_time}, late {late}"
    );
    let rate = |s: &HashSet<String>| {
        s.iter().filter(|c| churned.contains(*c)).count() as f64 / s.len() as f64
    };
    let only_good: HashSet<String> = good_customers.difference(&bad_customers).cloned().collect();
    assert!(
        rate(&bad_customers) > rate(&only_good),
        "churn after bad {} vs only good {}",
        rate(&bad_customers),
        rate(&only_good)
    );
}

#[test]
fn injected_faults_roughly_hold_their_ratios() {
    let n = 60_000u64;
    let out = lines(faulty(n, 13));
    assert_eq!(out.len() as u64, n);
    let mut reasons: HashMap<Invalid, usize> = HashMap::new();
    let mut first_line_of_id: HashMap<String, String> = HashMap::new();
    let mut valid: Vec<Event> = Vec::new();
    let (mut invalid, mut duplicates) = (0usize, 0usize);
    for l in &out {
        match validate(&l.line) {
            Err(r) => {
                invalid += 1;
                *reasons.entry(r).or_default() += 1;
            }
            Ok(e) => {
                let id = e.str("id").unwrap().to_string();
                if let Some(prev) = first_line_of_id.get(&id) {
                    assert_eq!(prev, &l.line, "a duplicate re-sends the event verbatim");
                    duplicates += 1;
                } else {
                    first_line_of_id.insert(id, l.line.clone());
                    valid.push(e);
                }
            }
        }
    }
    let created: HashSet<&str> = valid
        .iter()
        .filter(|e| e.ty == "ticket.created")
        .map(|e| e.str("ticket").unwrap())
        .collect();
    let orphans = valid
        .iter()
        .filter(|e| is_ticket_event(&e.ty) && !created.contains(e.str("ticket").unwrap()))
        .count();
    let share = |x: usize| x as f64 / n as f64;
    assert!(
        (share(invalid) - 0.05).abs() < 0.005,
        "invalid {}",
        share(invalid)
    );
    assert!(
        (share(duplicates) - 0.03).abs() < 0.004,
        "duplicates {}",
        share(duplicates)
    );
    assert!(
        (share(orphans) - 0.02).abs() < 0.003,
        "orphans {}",
        share(orphans)
    );
    for r in [
        Invalid::NotJson,
        Invalid::NotObject,
        Invalid::Missing,
        Invalid::WrongType,
        Invalid::UnknownType,
        Invalid::UnknownEnum,
        Invalid::OutOfRange,
        Invalid::BadTime,
        Invalid::BadLength,
    ] {
        assert!(
            reasons.get(&r).copied().unwrap_or(0) > 20,
            "invalid class {r:?}: {reasons:?}"
        );
    }
    // Specific forms the brief asks for.
    let all: Vec<&str> = out.iter().map(|l| l.line.as_str()).collect();
    for needle in [
        "\"score\":\"4\"",
        "\"score\":4.0",
        "\"channel\":\"fax\"",
        "\"priority\":\"URGENT\"",
        "\"score\":6",
        "\"score\":11",
    ] {
        assert!(
            all.iter().any(|l| l.contains(needle)),
            "no line with {needle}"
        );
    }
    assert!(all
        .iter()
        .any(|l| l.contains("\"id\":\"") && l.split('"').any(|s| s.len() == 129)));
    assert!(all.iter().any(|l| l.contains("-13-")), "no month 13");
    assert!(all.iter().any(|l| l.contains("\"time\":\"")
        && l.split('"')
            .any(|s| s.len() > 18 && s.as_bytes()[10] == b' ')));
    // Faulty options do not change what the valid events look like.
    assert!(valid.iter().all(|e| e.time_ms > 0));
}
