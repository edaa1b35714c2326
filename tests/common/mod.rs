//! Helpers shared by the SPEC rule tests: build events, replay them, find records.
#![allow(dead_code)]

use std::sync::Arc;

use cxstream::config::Config;
use cxstream::engine::Engine;
use std::collections::BTreeMap;

use serde_json::{json, Value};

/// `2026-11-22T<hh:mm[:ss]>Z` plus `day` days, e.g. `at(1, "10:00")` is the 23rd.
pub fn at(day: i64, hhmm: &str) -> String {
    let hhmmss = if hhmm.len() == 5 {
        format!("{hhmm}:00")
    } else {
        hhmm.to_string()
    };
    let base = cxstream::ts::parse_rfc3339_ms(&format!("2026-11-22T{hhmmss}Z")).expect("time");
    cxstream::ts::format_ms(base + day * cxstream::ts::DAY)
}

pub fn t(hhmm: &str) -> String {
    at(0, hhmm)
}

/// One event: the envelope plus `fields`.
pub fn ev(id: &str, ty: &str, time: &str, customer: &str, fields: Value) -> Value {
    let mut v = json!({"id": id, "type": ty, "time": time, "customer": customer});
    if let Value::Object(m) = fields {
        for (k, x) in m {
            v[k] = x;
        }
    }
    v
}

pub fn created(
    id: &str,
    time: &str,
    cust: &str,
    ticket: &str,
    prio: &str,
    team: &str,
    channel: &str,
) -> Value {
    ev(
        id,
        "ticket.created",
        time,
        cust,
        json!({"ticket": ticket, "channel": channel, "priority": prio, "team": team}),
    )
}

pub fn reply(id: &str, time: &str, cust: &str, ticket: &str) -> Value {
    ev(
        id,
        "ticket.message",
        time,
        cust,
        json!({"ticket": ticket, "author": "agent", "agent": "a1"}),
    )
}

pub fn solved(id: &str, time: &str, cust: &str, ticket: &str) -> Value {
    ev(id, "ticket.solved", time, cust, json!({"ticket": ticket}))
}

pub fn engine_with(cfg: Config) -> Engine {
    Engine::new(Arc::new(cfg))
}

/// Replays events (as JSON values) with the default config; returns every output record.
pub fn run(events: &[Value]) -> Vec<Value> {
    run_with(Config::default(), events)
}

pub fn run_with(cfg: Config, events: &[Value]) -> Vec<Value> {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    run_text(cfg, &text)
}

pub fn run_text(cfg: Config, text: &str) -> Vec<Value> {
    let mut e = engine_with(cfg);
    let out = cxstream::replay::replay_to_string(&mut e, text.as_bytes());
    out.lines()
        .map(|l| serde_json::from_str(l).expect("output is JSON"))
        .collect()
}

pub fn of_type<'a>(recs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == ty).collect()
}

/// The `kpi.window` record of a window size (seconds), start and group, if emitted.
pub fn window<'a>(recs: &'a [Value], size_s: i64, start: &str, group: Value) -> Option<&'a Value> {
    recs.iter().find(|r| {
        r["type"] == "kpi.window"
            && r["window"]["size_seconds"] == size_s
            && r["window"]["start"] == start
            && r["group"] == group
    })
}

/// Like [`window`] but panics with the list of emitted windows when absent.
pub fn win<'a>(recs: &'a [Value], size_s: i64, start: &str, group: Value) -> &'a Value {
    window(recs, size_s, start, group.clone()).unwrap_or_else(|| {
        let have: Vec<String> = of_type(recs, "kpi.window")
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["window"]["size_seconds"], r["window"]["start"], r["group"]
                )
            })
            .collect();
        panic!(
            "no window {size_s}s {start} {group}; have:\n{}",
            have.join("\n")
        )
    })
}

/// Sum of a numeric field path over the `{}`-group windows of one size.
pub fn total(recs: &[Value], size_s: i64, path: &[&str]) -> f64 {
    of_type(recs, "kpi.window")
        .iter()
        .filter(|r| r["window"]["size_seconds"] == size_s && r["group"] == json!({}))
        .map(|r| {
            let mut v = *r;
            for p in path {
                v = &v[*p];
            }
            v.as_f64().unwrap_or(0.0)
        })
        .sum()
}

/// The integer leaves of a record (its counts), path → value, without `window`, `group` and
/// `partitions`: what adds up when per-partition `kpi.window` parts are merged (SPEC §4).
pub fn counts(v: &Value) -> BTreeMap<String, u64> {
    fn walk(v: &Value, path: &str, out: &mut BTreeMap<String, u64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if path.is_empty() && matches!(k.as_str(), "window" | "group" | "partitions") {
                        continue;
                    }
                    walk(x, &format!("{path}/{k}"), out);
                }
            }
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    out.insert(path.to_string(), u);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

/// `kpi.window` parts merged per (size, start, group): counts add (SPEC §4).
pub type Merged = BTreeMap<(u64, String, String), BTreeMap<String, u64>>;

pub mod external;
pub mod kafka;
