//! SPEC §6 Prometheus metrics: exact values after a replay, the label cap, the HTTP endpoint,
//! `promtool check metrics` on the exposition, and a real Prometheus server scraping it.
//!
//! External programs (promtool, prometheus, python3) are found through CXSTREAM_PROMTOOL,
//! CXSTREAM_PROMETHEUS, CXSTREAM_PYTHON or PATH; when one is missing the test prints a loud
//! SKIPPED message and passes, unless CXSTREAM_REQUIRE_EXTERNAL=1 (CI), where it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cxstream::config::Config;
use cxstream::engine::Engine;
use cxstream::event::SourcePos;
use cxstream::metrics::Metrics;
use cxstream::output::Record;
use serde_json::{json, Value};

mod common;
use common::external::find_program;
use common::{of_type, run_text, win};

const PROMETHEUS_INSTALL: &str =
    "scripts/install-test-deps.sh, or Debian: apt-get install prometheus";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Replays JSON Lines through an engine observed by `metrics`, feeding every output record to
/// `metrics.record` (as the runtime does), and returns the records as JSON.
fn replay_with_metrics(cfg: Config, input: &str) -> (Arc<Metrics>, Engine, Vec<Value>) {
    let cfg = Arc::new(cfg);
    let metrics = Metrics::new(&cfg);
    let mut engine = Engine::new(cfg);
    engine.set_observer(metrics.observer());
    let mut out = Vec::new();
    let drain = |engine: &mut Engine, out: &mut Vec<Value>| {
        let records: Vec<Record> = engine.drain().collect();
        for r in records {
            metrics.record(&r);
            out.push(r.to_json());
        }
    };
    for (i, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        cxstream::source::feed(&mut engine, 0, line.as_bytes(), || SourcePos::File {
            file: "input".into(),
            line: i as u64 + 1,
        });
        drain(&mut engine, &mut out);
        metrics.sync_engine(&engine);
    }
    engine.finish();
    drain(&mut engine, &mut out);
    metrics.sync_engine(&engine);
    (metrics, engine, out)
}

/// The exposition as `series → value`, series written exactly as in the text format.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            (k.to_string(), v.parse::<f64>().expect("sample value"))
        })
        .collect()
}

#[track_caller]
fn assert_sample(s: &BTreeMap<String, f64>, series: &str, want: f64) {
    match s.get(series) {
        Some(v) => assert!((v - want).abs() < 1e-9, "{series}: got {v}, want {want}"),
        None => panic!(
            "{series} missing; series of that metric: {:#?}",
            s.keys()
                .filter(|k| k.starts_with(series.split('{').next().unwrap()))
                .collect::<Vec<_>>()
        ),
    }
}

#[track_caller]
fn assert_absent(s: &BTreeMap<String, f64>, series: &str) {
    assert!(!s.contains_key(series), "{series} should be absent");
}

/// [`assert_sample`] or [`assert_absent`] for each line `series value` or `series absent` of
/// `expected` (written as in the exposition); blank lines and `#` comments are skipped.
#[track_caller]
fn assert_series(s: &BTreeMap<String, f64>, expected: &str) {
    let lines = expected.lines().map(str::trim);
    for l in lines.filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, want) = l
            .rsplit_once(' ')
            .expect("`series value` or `series absent`");
        match want {
            "absent" => assert_absent(s, series),
            v => assert_sample(s, series, v.parse().expect("a number or `absent`")),
        }
    }
}

fn line(v: Value) -> String {
    v.to_string() + "\n"
}

/// `2026-11-22T<hh:mm:ss>Z`.
fn at(time: &str) -> String {
    format!("2026-11-22T{time}Z")
}

/// One input line (see [`common::ev`]) at `2026-11-22T<time>Z`.
fn ev(id: &str, ty: &str, time: &str, customer: &str, fields: Value) -> String {
    line(common::ev(id, ty, &at(time), customer, fields))
}

fn created(
    id: &str,
    time: &str,
    cust: &str,
    ticket: &str,
    team: &str,
    ch: &str,
    prio: &str,
) -> String {
    line(common::created(id, &at(time), cust, ticket, prio, team, ch))
}

fn reply(id: &str, time: &str, cust: &str, ticket: &str) -> String {
    line(common::reply(id, &at(time), cust, ticket))
}

fn solved(id: &str, time: &str, cust: &str, ticket: &str) -> String {
    line(common::solved(id, &at(time), cust, ticket))
}

/// A small day at the help desk, with one of each kind of invalid input. See the expected
/// values in `replay_gives_exact_metric_values`.
#[rustfmt::skip]
fn small_input() -> String {
    let mut s = String::new();
    // t1: billing/chat/high; answered after 5 min (achieved), solved after 10 (FCR, achieved).
    // t2: billing/email/urgent; first answer after 29 min (due 15 min: breached), two
    // answers before the solve (not FCR), solved within 4 h (achieved).
    // t3: tech/phone/normal; a system message does not answer it; stays open.
    s += &created("e1", "10:00:00", "c1", "t1", "billing", "chat", "high");
    s += &created("e4", "10:01:00", "c2", "t2", "billing", "email", "urgent");
    s += &created("e5", "10:02:00", "c3", "t3", "tech", "phone", "normal");
    s += &ev("e6", "ticket.message", "10:03:00", "c3", json!({"ticket": "t3", "author": "system"}));
    s += &reply("e2", "10:05:00", "c1", "t1");
    s += &solved("e3", "10:10:00", "c1", "t1");
    s += &reply("e7", "10:30:00", "c2", "t2");
    s += &reply("e8", "10:35:00", "c2", "t2");
    s += &solved("e9", "10:40:00", "c2", "t2");
    // Surveys: CSAT naming t1 (billing), naming no ticket (team "none"), naming t3 (tech).
    s += &ev("e10", "survey.csat", "10:45:00", "c1", json!({"score": 5, "ticket": "t1"}));
    s += &ev("e11", "survey.csat", "10:46:00", "c4", json!({"score": 2}));
    s += &ev("e12", "survey.csat", "10:47:00", "c3", json!({"score": 4, "ticket": "t3"}));
    s += &ev("e13", "survey.nps", "10:48:00", "c1", json!({"score": 10}));
    s += &ev("e14", "survey.nps", "10:49:00", "c2", json!({"score": 7}));
    s += &ev("e15", "survey.nps", "10:50:00", "c5", json!({"score": 3}));
    s += &ev("e16", "survey.ces", "10:51:00", "c1", json!({"score": 6, "ticket": "t1"}));
    s += &ev("e17", "contact.handled", "10:52:00", "c1",
             json!({"agent": "a1", "channel": "phone", "handle_seconds": 120.5}));
    // Invalid inputs, an orphan, a duplicate, an existing ticket.
    s += "this is not json\n";
    s += &ev("e18", "ticket.teleported", "10:53:00", "c1", json!({}));
    s += &ev("e19", "survey.csat", "10:53:00", "c1", json!({"score": 9}));
    s += &created("e20", "10:53:00", "c1", "t1", "billing", "chat", "high");
    s += &reply("e21", "10:53:00", "c9", "nope");
    s += &created("e1", "10:00:00", "c1", "t1", "billing", "chat", "high");
    // After-sales: c1 orders after t1's first solve (converted, CSAT band satisfied), a churn.
    s += &ev("e22", "order.placed", "10:55:00", "c1", json!({"order": "o1", "amount": 99.5}));
    s += &ev("e23", "customer.churned", "10:56:00", "c6", json!({}));
    s += &ev("e24", "order.returned", "10:57:00", "c1", json!({"order": "o1"}));
    s += &ev("e25", "warranty.claimed", "10:58:00", "c1", json!({"order": "o1"}));
    // The last event moves the watermark past 11:00: the 10:00-11:00 hour closes.
    s += &ev("e26", "order.placed", "11:30:00", "c7", json!({"order": "o2", "amount": 10}));
    s
}

// ---------------------------------------------------------------------------------------------
// (1) Exact values

#[test]
fn replay_gives_exact_metric_values() {
    let (metrics, _engine, records) = replay_with_metrics(Config::default(), &small_input());
    let text = metrics.encode();
    let s = samples(&text);

    // Tickets by team, channel, priority.
    assert_series(
        &s,
        r#"
        cxstream_tickets_created_total{channel="chat",priority="high",team="billing"} 1.0
        cxstream_tickets_created_total{channel="email",priority="urgent",team="billing"} 1.0
        cxstream_tickets_created_total{channel="phone",priority="normal",team="tech"} 1.0
        cxstream_tickets_first_solved_total{channel="chat",priority="high",team="billing"} 1.0
        cxstream_tickets_first_solved_total{channel="email",priority="urgent",team="billing"} 1.0
        cxstream_tickets_fcr_total{channel="chat",priority="high",team="billing"} 1.0
        cxstream_tickets_fcr_total{channel="email",priority="urgent",team="billing"} absent
        cxstream_tickets_solved_total{channel="email",priority="urgent",team="billing"} 1.0

        # Histograms: t1's first response (300 s) and t2's (1740 s) in their buckets.
        cxstream_first_response_seconds_bucket{channel="chat",priority="high",team="billing",le="300"} 1.0
        cxstream_first_response_seconds_bucket{channel="email",priority="urgent",team="billing",le="900"} 0.0
        cxstream_first_response_seconds_bucket{channel="email",priority="urgent",team="billing",le="1800"} 1.0
        cxstream_first_response_seconds_sum{channel="email",priority="urgent",team="billing"} 1740.0
        cxstream_resolution_seconds_count{channel="chat",priority="high",team="billing"} 1.0
        cxstream_resolution_seconds_sum{channel="email",priority="urgent",team="billing"} 2340.0
        cxstream_handle_seconds_sum{channel="phone"} 120.5
        "#,
    );
    // Every default SLA target is a bucket bound.
    for le in ["900", "3600", "14400", "86400", "28800", "259200"] {
        assert!(text.contains(&format!(r#"cxstream_first_response_seconds_bucket{{channel="chat",priority="high",team="billing",le="{le}"}}"#)), "le={le}");
        assert!(text.contains(&format!(r#"cxstream_resolution_seconds_bucket{{channel="chat",priority="high",team="billing",le="{le}"}}"#)), "le={le}");
    }

    // SLA outcomes.
    assert_series(
        &s,
        r#"
        cxstream_sla_breached_total{priority="urgent",sla="first_response",team="billing"} 1.0
        cxstream_sla_achieved_total{priority="high",sla="first_response",team="billing"} 1.0
        cxstream_sla_achieved_total{priority="high",sla="resolution",team="billing"} 1.0
        cxstream_sla_achieved_total{priority="urgent",sla="resolution",team="billing"} 1.0
        cxstream_sla_achieved_total{priority="urgent",sla="first_response",team="billing"} absent

        # Surveys.
        cxstream_csat_responses_total{score="5",team="billing"} 1.0
        cxstream_csat_responses_total{score="2",team="none"} 1.0
        cxstream_csat_responses_total{score="4",team="tech"} 1.0
        cxstream_nps_responses_total{class="promoter"} 1.0
        cxstream_nps_responses_total{class="passive"} 1.0
        cxstream_nps_responses_total{class="detractor"} 1.0
        cxstream_ces_responses_total{score="6"} 1.0

        # Orders and after-sales.
        cxstream_orders_total 2.0
        cxstream_order_revenue_total 109.5
        cxstream_returns_total 1.0
        cxstream_warranty_claims_total 1.0
        cxstream_customers_churned_total{signalled="false"} 1.0
        cxstream_customers_churned_total{signalled="true"} 0.0
        cxstream_recovery_cases_total{outcome="opened"} 2.0
        cxstream_recovery_cases_total{outcome="answered"} 0.0
        cxstream_recovery_open_cases 2.0
        cxstream_post_service_outcomes_total{csat_band="satisfied",outcome="converted"} 1.0
        cxstream_post_service_outcomes_total{csat_band="unrated",outcome="expired"} 0.0

        # Current state: only t3 is open; the billing series went back to 0 and are gone.
        cxstream_open_tickets{priority="normal",team="tech"} 1.0
        cxstream_open_tickets{priority="high",team="billing"} absent
        cxstream_open_tickets{priority="urgent",team="billing"} absent
        "#,
    );
    assert!(
        !text.contains("cxstream_sla_breached_open_tickets{"),
        "no ticket waits past due"
    );

    // The pipeline.
    assert_series(
        &s,
        r#"
        cxstream_events_total{type="ticket.created"} 3.0
        cxstream_events_total{type="ticket.message"} 4.0
        cxstream_events_total{type="customer.contacted"} 0.0
        cxstream_events_invalid_total{reason="invalid_json"} 1.0
        cxstream_events_invalid_total{reason="unknown_type"} 1.0
        cxstream_events_invalid_total{reason="out_of_range"} 1.0
        cxstream_events_invalid_total{reason="ticket_exists"} 1.0
        cxstream_events_invalid_total{reason="missing_field"} 0.0
        cxstream_events_orphan_total 1.0
        cxstream_events_duplicate_total 1.0
        cxstream_events_late_total 0.0
        cxstream_output_records_total{type="deadletter"} 5.0
        cxstream_output_records_total{type="sla.breached"} 1.0
        cxstream_state_tickets 3.0
        cxstream_label_overflow_total{label="team"} 0.0
        "#,
    );
    assert_eq!(of_type(&records, "sla.breached").len(), 1);
    let windows = of_type(&records, "kpi.window").len();
    assert_sample(
        &s,
        r#"cxstream_output_records_total{type="kpi.window"}"#,
        windows as f64,
    );
    let wm = cxstream::ts::parse_rfc3339_ms("2026-11-22T11:30:00Z").unwrap() as f64 / 1000.0;
    assert_sample(&s, "cxstream_watermark_seconds", wm);

    // Last closed window of the {} group: the 10:00-11:00 hour (11:00-12:00 is partial).
    let hour = win(&records, 3600, "2026-11-22T10:00:00Z", json!({}));
    assert_eq!(hour["partial"], false);
    assert_eq!(hour["tickets"]["created"], 3);
    assert_sample(&s, r#"cxstream_window_csat_ratio{window="1h"}"#, 2.0 / 3.0);
    let fr = &hour["first_response_seconds"];
    assert_sample(
        &s,
        r#"cxstream_window_first_response_seconds{window="1h",quantile="0.5"}"#,
        fr["p50"].as_f64().unwrap(),
    );
    assert_sample(
        &s,
        r#"cxstream_window_first_response_seconds{window="1h",quantile="0.9"}"#,
        fr["p90"].as_f64().unwrap(),
    );
    assert_series(
        &s,
        r#"
        cxstream_window_fcr_ratio{window="1h"} 0.5
        cxstream_window_nps{window="1h"} 0.0
        cxstream_window_first_response_seconds{window="1h",quantile="0.99"} 1740.0
        cxstream_window_first_response_seconds_count{window="1h"} 2.0
        cxstream_window_first_response_seconds_sum{window="1h"} 2040.0
        cxstream_window_resolution_seconds{window="1h",quantile="0.99"} 2340.0
        # The last closed minute (10:58, a warranty claim) had no first solve, CSAT or NPS answer.
        cxstream_window_fcr_ratio{window="1m"} absent
        cxstream_window_nps{window="1m"} absent
        cxstream_window_first_response_seconds_count{window="1m"} absent
        "#,
    );

    // Every metric family has HELP text and the cxstream_ prefix.
    let mut families = 0;
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = l.split_whitespace().nth(2).unwrap();
        assert!(name.starts_with("cxstream_"), "{name}");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
        families += 1;
    }
    assert!(families >= 40, "only {families} metric families");
}

#[test]
fn label_values_past_the_limit_fold_into_other() {
    let mut cfg = Config::default();
    cfg.metrics.label_limit = 2;
    let mut s = String::new();
    for (i, team) in ["a", "b", "c", "d"].iter().enumerate() {
        s += &created(
            &format!("e{i}"),
            &format!("10:0{i}:00"),
            "c1",
            &format!("t{i}"),
            team,
            "chat",
            "high",
        );
    }
    let (metrics, _engine, _records) = replay_with_metrics(cfg, &s);
    let s = samples(&metrics.encode());
    assert_series(
        &s,
        r#"
        cxstream_tickets_created_total{channel="chat",priority="high",team="a"} 1.0
        cxstream_tickets_created_total{channel="chat",priority="high",team="b"} 1.0
        cxstream_tickets_created_total{channel="chat",priority="high",team="__other__"} 2.0
        cxstream_tickets_created_total{channel="chat",priority="high",team="c"} absent
        cxstream_open_tickets{priority="high",team="__other__"} 2.0
        cxstream_open_tickets{priority="high",team="a"} 1.0
        # Counted once per metric update that folded a value: c and d each made one created
        # measurement and one open-tickets change.
        cxstream_label_overflow_total{label="team"} 4.0
        cxstream_label_overflow_total{label="channel"} 0.0
        "#,
    );
    assert_eq!(metrics.caps().team.len(), 2);
}

#[test]
fn open_ticket_gauges_follow_escalations_and_breaches() {
    let mut s = String::new();
    s += &created("e1", "10:00:00", "c1", "t1", "billing", "chat", "urgent");
    // An urgent ticket unanswered past its 15-minute due: breached while still waiting.
    s += &ev(
        "e2",
        "order.placed",
        "10:20:00",
        "c2",
        json!({"order": "o", "amount": 1}),
    );
    let (metrics, _e, _r) = replay_with_metrics(Config::default(), &s);
    let x = samples(&metrics.encode());
    assert_series(
        &x,
        r#"
        cxstream_sla_breached_open_tickets{priority="urgent",sla="first_response",team="billing"} 1.0
        cxstream_open_tickets{priority="urgent",team="billing"} 1.0
        "#,
    );

    // Escalated to another team, then answered: the breached-waiting series goes away and
    // the open ticket moves to the new team.
    s += &ev(
        "e3",
        "ticket.escalated",
        "10:21:00",
        "c1",
        json!({"ticket": "t1", "team": "tier2"}),
    );
    s += &reply("e4", "10:22:00", "c1", "t1");
    let (metrics, _e, _r) = replay_with_metrics(Config::default(), &s);
    let text = metrics.encode();
    let x = samples(&text);
    assert!(
        !text.contains("cxstream_sla_breached_open_tickets{"),
        "{text}"
    );
    assert_series(
        &x,
        r#"
        cxstream_open_tickets{priority="urgent",team="billing"} absent
        cxstream_open_tickets{priority="urgent",team="tier2"} 1.0
        cxstream_tickets_escalated_total{channel="chat",priority="urgent",team="billing"} 1.0
        cxstream_sla_breached_total{priority="urgent",sla="first_response",team="billing"} 1.0
        "#,
    );
}

#[test]
fn pipeline_hooks_and_repeated_syncs() {
    let (metrics, engine, _r) = replay_with_metrics(Config::default(), &small_input());
    // sync_engine is idempotent: counters advance only by what the engine gained.
    metrics.sync_engine(&engine);
    metrics.sync_engine(&engine);
    metrics.set_consumer_lag("cx.events", 3, 42);
    metrics.set_consumer_lag("cx.events", 4, 7);
    metrics.set_consumer_lag("cx.events", 4, -1);
    metrics.observe_processing(0.002);
    let s = samples(&metrics.encode());
    assert_series(
        &s,
        r#"
        cxstream_events_total{type="ticket.created"} 3.0
        cxstream_events_invalid_total{reason="invalid_json"} 1.0
        cxstream_consumer_lag{partition="3",topic="cx.events"} 42.0
        cxstream_consumer_lag{partition="4",topic="cx.events"} absent
        cxstream_processing_seconds_count 1.0
        cxstream_processing_seconds_bucket{le="0.0025"} 1.0
        "#,
    );
    metrics.remove_consumer_lag("cx.events", 3);
    let s = samples(&metrics.encode());
    assert_absent(
        &s,
        r#"cxstream_consumer_lag{partition="3",topic="cx.events"}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTP endpoint

/// A minimal HTTP/1.1 GET: (status, content-type, body). Handles chunked bodies.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = body.to_string();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut rest = body.as_str();
        let mut out = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").expect("chunk size");
            let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        body = out;
    }
    (status, header("content-type").unwrap_or_default(), body)
}

/// Percent-encodes a query parameter value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The endpoint running on a free loopback port in its own runtime; stops on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(metrics: Arc<Metrics>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = rt.spawn(cxstream::metrics::serve_listener(
            listener,
            metrics,
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            stop: Some(tx),
            task: Some(task),
            rt,
        }
    }

    fn shutdown(mut self) {
        self.stop_now().expect("server ends cleanly");
    }

    fn stop_now(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), t).await })
                .map_err(|_| anyhow::anyhow!("graceful shutdown took over 10 s"))?
                .map_err(|e| anyhow::anyhow!("server task: {e}"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_now();
    }
}

#[test]
fn http_endpoint_serves_metrics_health_and_readiness() {
    let (metrics, _e, _r) = replay_with_metrics(Config::default(), &small_input());
    let server = Server::start(metrics.clone());
    let (st, _, body) = http_get(server.addr, "/healthz");
    assert_eq!((st, body.trim()), (200, "ok"));
    let (st, _, _) = http_get(server.addr, "/readyz");
    assert_eq!(st, 503, "not ready before set_ready(true)");
    metrics.set_ready(true);
    let (st, _, _) = http_get(server.addr, "/readyz");
    assert_eq!(st, 200);
    let (st, ct, body) = http_get(server.addr, "/metrics");
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(body.contains("cxstream_tickets_created_total{"), "{body}");
    let (st, _, _) = http_get(server.addr, "/nope");
    assert_eq!(st, 404);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------------
// (2) promtool check metrics

#[test]
fn promtool_finds_no_problem_in_the_exposition() {
    let Some(promtool) = find_program("CXSTREAM_PROMTOOL", "promtool", PROMETHEUS_INSTALL) else {
        return;
    };
    let (metrics, _e, _r) = replay_with_metrics(Config::default(), &synthetic_input());
    // Exercise every family: lag, processing, plus the KPIs of the replay.
    metrics.set_consumer_lag("cx.events", 0, 12);
    metrics.observe_processing(0.0004);
    let text = metrics.encode();
    for family in [
        "cxstream_tickets_reopened_total",
        "cxstream_tickets_escalated_total",
        "cxstream_sla_breached_open_tickets",
        "cxstream_window_resolution_seconds",
        "cxstream_recovery_answer_seconds",
        "cxstream_customers_at_risk",
        "cxstream_churn_signals_total",
        "cxstream_churn_signal_outcomes_total",
        "cxstream_consumer_lag",
        "cxstream_processing_seconds",
        "cxstream_state_customers",
        "cxstream_handle_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} not exercised"
        );
    }
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// (3) A real Prometheus server

/// Three hours of help-desk traffic for three teams, deterministic: answers from 2 minutes to
/// 2 hours (so urgent and high tickets breach), some never answered, solves, reopens,
/// escalations, surveys, orders, a returned order, churn. Events in time order.
fn synthetic_input() -> String {
    let base = cxstream::ts::parse_rfc3339_ms("2026-11-22T08:00:00Z").unwrap();
    let min = 60_000i64;
    let teams = ["billing", "tech", "returns"];
    let channels = ["email", "chat", "phone", "web_form"];
    let prios = ["urgent", "high", "normal", "low"];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut evs = Script::default();
    for i in 0..90i64 {
        let t0 = base + i * 2 * min + rng.below(60) as i64 * 1000;
        let cust = format!("cust{}", rng.below(40));
        let ticket = format!("T{i}");
        let (team, channel, prio) = (rng.pick(&teams), rng.pick(&channels), rng.pick(&prios));
        let created = json!({"ticket": ticket, "team": team, "channel": channel, "priority": prio});
        evs.push(t0, "ticket.created", &cust, created);
        if rng.below(10) == 0 {
            continue; // never answered: its SLA clocks run out
        }
        let answer = t0 + (2 + rng.below(120) as i64) * min;
        let message = |agent| json!({"ticket": ticket, "author": "agent", "agent": agent});
        evs.push(answer, "ticket.message", &cust, message("a1"));
        if rng.below(3) == 0 {
            evs.push(answer + 5 * min, "ticket.message", &cust, message("a2"));
        }
        if rng.below(4) == 0 {
            let escalated = json!({"ticket": ticket, "team": rng.pick(&teams)});
            evs.push(answer + min, "ticket.escalated", &cust, escalated);
        }
        let solve = answer + (10 + rng.below(90) as i64) * min;
        let tk = json!({"ticket": ticket}); // the fields of an event about the ticket only
        evs.push(solve, "ticket.solved", &cust, tk.clone());
        let (channel, seconds) = (rng.pick(&channels), 30 + rng.below(600));
        let handled = json!({"agent": "a1", "channel": channel, "handle_seconds": seconds,
                             "ticket": ticket});
        evs.push(solve + 3 * min, "contact.handled", &cust, handled);
        if rng.below(6) == 0 {
            evs.push(solve + 20 * min, "ticket.reopened", &cust, tk.clone());
            evs.push(solve + 40 * min, "ticket.solved", &cust, tk);
        }
        for (chance, after, ty, fields) in AFTER_SOLVE {
            if rng.below(chance) == 0 {
                let fields = fields(&mut rng, i, &ticket);
                evs.push(solve + after * min, ty, &cust, fields);
            }
        }
    }
    // Next day: one ticket answered and solved in the 15:00 hour, so the last closed hour
    // has first-response and resolution data; then a last event at 16:30 closes that hour
    // and moves the watermark past every SLA due of the first day.
    let day2 = |h: i64, m: i64| base + 24 * 60 * min + h * 60 * min + m * min;
    let created = json!({"ticket": "LAST", "team": "tech", "channel": "chat", "priority": "high"});
    evs.push(day2(7, 0), "ticket.created", "cust1", created);
    let answer = json!({"ticket": "LAST", "author": "agent", "agent": "a1"});
    evs.push(day2(7, 5), "ticket.message", "cust1", answer);
    let solved = json!({"ticket": "LAST"});
    evs.push(day2(7, 10), "ticket.solved", "cust1", solved);
    evs.push(day2(8, 30), "warranty.claimed", "cust0", json!({}));
    evs.into_lines()
}

/// xorshift64: the deterministic random source of [`synthetic_input`].
struct Rng(u64);

impl Rng {
    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// One of `items`.
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What may follow a ticket's solve: one chance in `n`, minutes after the solve, the event
/// type, and its fields from the random source, the ticket number and the ticket id.
type FollowUp = (u64, i64, &'static str, fn(&mut Rng, i64, &str) -> Value);

/// The follow-ups of a solve, drawn in this order.
#[rustfmt::skip]
const AFTER_SOLVE: [FollowUp; 7] = [
    (2, 30, "survey.csat", |r, _, t| json!({"score": 1 + r.below(5), "ticket": t})),
    (3, 31, "survey.nps", |r, _, _| json!({"score": r.below(11)})),
    (4, 32, "survey.ces", |r, _, t| json!({"score": 1 + r.below(7), "ticket": t})),
    (3, 50, "order.placed",
     |r, i, _| json!({"order": format!("O{i}"), "amount": 10 + r.below(200)})),
    (8, 55, "customer.contacted", |_, _, _| json!({"agent": "a3", "channel": "phone"})),
    (10, 60, "order.returned", |_, i, _| json!({"order": format!("O{i}")})),
    (25, 70, "customer.churned", |_, _, _| json!({})),
];

/// The events of [`synthetic_input`], with ids `s1`, `s2`, ... in the order they are made.
#[derive(Default)]
struct Script(Vec<(i64, Value)>);

impl Script {
    /// An event of type `ty` at `t` (ms since the epoch) by `cust`, with `fields`.
    fn push(&mut self, t: i64, ty: &str, cust: &str, fields: Value) {
        let id = format!("s{}", self.0.len() + 1);
        let time = cxstream::ts::format_ms(t);
        self.0.push((t, common::ev(&id, ty, &time, cust, fields)));
    }

    /// The events in time order (a stable sort: ties keep their order), as JSON Lines.
    fn into_lines(mut self) -> String {
        self.0.sort_by_key(|(t, _)| *t);
        self.0.into_iter().map(|(_, v)| line(v)).collect()
    }
}

/// Sums of the `{}` group's 1h `kpi.window` records of a plain replay (no metrics involved).
fn replay_totals(input: &str) -> BTreeMap<&'static str, f64> {
    let mut t: BTreeMap<&'static str, f64> = BTreeMap::new();
    for r in run_text(Config::default(), input) {
        if r["type"] != "kpi.window"
            || r["group"] != json!({})
            || r["window"]["size_seconds"] != 3600
        {
            continue;
        }
        let n = |p: &[&str]| p.iter().fold(&r, |v, k| &v[*k]).as_f64().unwrap_or(0.0);
        for (k, path) in [
            ("created", &["tickets", "created"][..]),
            ("solved", &["tickets", "solved"]),
            ("first_solved", &["tickets", "first_solved"]),
            ("fcr", &["tickets", "fcr"]),
            ("reopened", &["tickets", "reopened"]),
            ("escalated", &["tickets", "escalated"]),
            ("fr_count", &["first_response_seconds", "count"]),
            ("fr_breached", &["sla", "first_response", "breached"]),
            ("fr_achieved", &["sla", "first_response", "achieved"]),
            ("res_breached", &["sla", "resolution", "breached"]),
            ("res_achieved", &["sla", "resolution", "achieved"]),
            ("csat", &["csat", "responses"]),
            ("csat_satisfied", &["csat", "satisfied"]),
            ("nps", &["nps", "responses"]),
            ("promoters", &["nps", "promoters"]),
            ("orders", &["orders", "placed"]),
            ("revenue", &["orders", "revenue"]),
            ("returned", &["orders", "returned"]),
            ("churned", &["customers", "churned"]),
            ("recovery_opened", &["recovery", "opened"]),
        ] {
            *t.entry(k).or_default() += n(path);
        }
    }
    t
}

/// `tests/e2e/prom.py` with the test's Python.
fn prom_py(python: &Path, args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/prom.py");
    Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("run prom.py")
}

/// Stops the Prometheus started through `prom.py start --pidfile` when dropped, pass or fail.
struct PromGuard {
    python: PathBuf,
    pidfile: PathBuf,
}

impl Drop for PromGuard {
    fn drop(&mut self) {
        let out = prom_py(
            &self.python,
            &["stop", "--pidfile", self.pidfile.to_str().unwrap()],
        );
        if !out.status.success() {
            eprintln!("prom.py stop: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn real_prometheus_scrapes_values_equal_to_the_replay_output() {
    let Some(_prom) = find_program("CXSTREAM_PROMETHEUS", "prometheus", PROMETHEUS_INSTALL) else {
        return;
    };
    let Some(python) = find_program("CXSTREAM_PYTHON", "python3", "scripts/install-test-deps.sh")
    else {
        return;
    };
    let input = synthetic_input();
    let expected = replay_totals(&input);
    assert!(
        expected["fr_breached"] > 0.0 && expected["res_breached"] > 0.0,
        "{expected:?}"
    );
    assert!(
        expected["fcr"] > 0.0 && expected["csat"] > 0.0,
        "{expected:?}"
    );

    let (metrics, _engine, _records) = replay_with_metrics(Config::default(), &input);
    metrics.set_ready(true);
    let server = Server::start(metrics.clone());

    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("prometheus.pid");
    let prom_dir = dir.path().join("prom");
    let guard = PromGuard {
        python: python.clone(),
        pidfile: pidfile.clone(),
    };
    let target = server.addr.to_string();
    let out = prom_py(
        &python,
        &[
            "start",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--target",
            &target,
            "--interval",
            "1s",
            "--dir",
            prom_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "prom.py start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let out = prom_py(
        &python,
        &[
            "wait",
            "--url",
            &url,
            r#"up{job="cxstream"} == 1"#,
            "--timeout",
            "45",
        ],
    );
    assert!(
        out.status.success(),
        "Prometheus never scraped cxstream: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(prom_dir.join("prometheus.log")).unwrap_or_default()
    );

    // Instant queries straight to the HTTP API (/api/v1/query), as Grafana does.
    let prom_addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let query = |expr: &str| -> f64 {
        let (status, _, body) = http_get(
            prom_addr,
            &format!("/api/v1/query?query={}", url_encode(expr)),
        );
        let doc: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("query {expr}: HTTP {status}: {e}: {body}"));
        assert_eq!(doc["status"], "success", "query {expr}: {doc}");
        let result = doc["data"]["result"].as_array().expect("vector");
        assert_eq!(result.len(), 1, "{expr}: {doc}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    };
    let checks: &[(&str, &str)] = &[
        ("created", "sum(cxstream_tickets_created_total)"),
        ("solved", "sum(cxstream_tickets_solved_total)"),
        ("first_solved", "sum(cxstream_tickets_first_solved_total)"),
        ("fcr", "sum(cxstream_tickets_fcr_total)"),
        ("reopened", "sum(cxstream_tickets_reopened_total)"),
        ("escalated", "sum(cxstream_tickets_escalated_total)"),
        ("fr_count", "sum(cxstream_first_response_seconds_count)"),
        (
            "fr_breached",
            r#"sum(cxstream_sla_breached_total{sla="first_response"})"#,
        ),
        (
            "fr_achieved",
            r#"sum(cxstream_sla_achieved_total{sla="first_response"})"#,
        ),
        (
            "res_breached",
            r#"sum(cxstream_sla_breached_total{sla="resolution"})"#,
        ),
        (
            "res_achieved",
            r#"sum(cxstream_sla_achieved_total{sla="resolution"})"#,
        ),
        ("csat", "sum(cxstream_csat_responses_total)"),
        (
            "csat_satisfied",
            r#"sum(cxstream_csat_responses_total{score=~"4|5"})"#,
        ),
        ("nps", "sum(cxstream_nps_responses_total)"),
        (
            "promoters",
            r#"sum(cxstream_nps_responses_total{class="promoter"})"#,
        ),
        ("orders", "sum(cxstream_orders_total)"),
        ("revenue", "sum(cxstream_order_revenue_total)"),
        ("returned", "sum(cxstream_returns_total)"),
        ("churned", "sum(cxstream_customers_churned_total)"),
        (
            "recovery_opened",
            r#"sum(cxstream_recovery_cases_total{outcome="opened"})"#,
        ),
    ];
    let mut mismatches = Vec::new();
    for (key, expr) in checks {
        let got = query(expr);
        let want = expected[key];
        if (got - want).abs() > 1e-6 {
            mismatches.push(format!("{expr} = {got}, replay says {key} = {want}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "Prometheus disagrees with replay:\n{}",
        mismatches.join("\n")
    );
    assert!(query("sum(cxstream_sla_breached_total)") > 0.0);
    // A few dashboard-style expressions evaluate.
    assert!(
        query(r#"histogram_quantile(0.9, sum by (le) (cxstream_first_response_seconds_bucket))"#)
            > 0.0
    );
    assert!(
        query(r#"max(cxstream_window_first_response_seconds{window="1h",quantile="0.9"})"#) > 0.0
    );
    assert_eq!(query(r#"count(up{job="cxstream"} == 1)"#), 1.0);
    // The same through the helper's client.
    let out = prom_py(
        &python,
        &[
            "query",
            "--url",
            &url,
            "sum(cxstream_tickets_created_total)",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v: f64 = data["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v, expected["created"]);

    drop(guard);
    server.shutdown();
}
