//! The Kafka runtime against librdkafka's in-process mock cluster (real Kafka protocol, no
//! external program): output equals replay, dead letters carry their offsets, a graceful
//! stop and restart skips nothing, two members split the partitions, injected broker errors
//! lose nothing, and the live watermark follows the wall clock when the input is idle.
//!
//! Test data: generated events whose times lie in the future, so the wall-clock idle advance
//! never moves the watermark (results depend on the input alone, as in replay), followed by
//! one "sentinel" event per input partition 100 days later that closes every data window in
//! both the pipeline and replay. Replay's partial windows (the sentinels') are left out of
//! the comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cxstream::config::{Config, Dim, Dur};
use cxstream::engine::Engine;
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::replay::replay_to_string;
use cxstream::runtime::{run_pipeline_with, Progress, RunSummary};
use cxstream::shutdown::{self, Trigger};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientContext;
use serde_json::Value;

mod common;
use common::{counts, Merged};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

// ---------------------------------------------------------------- helpers

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn fmt_ms(ms: i64) -> String {
    cxstream::ts::format_ms(ms)
}

/// Logs of the pipeline on stderr when CXSTREAM_TEST_LOG is set (e.g. `cxstream=debug`).
fn init_log() {
    if let Ok(f) = std::env::var("CXSTREAM_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// A mock cluster with the usual three topics.
fn cluster(
    brokers: i32,
    input_partitions: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    init_log();
    let c = MockCluster::new(brokers).expect("mock cluster");
    c.create_topic("input", input_partitions, 1).unwrap();
    c.create_topic("output", 3, 1).unwrap();
    c.create_topic("deadletter", 1, 1).unwrap();
    c
}

fn config(bootstrap: &str, group: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap_servers = bootstrap.to_string();
    c.kafka.group_id = group.to_string();
    c.kafka.input_topics = vec!["input".into()];
    c.kafka.output_topic = "output".into();
    c.kafka.deadletter_topic = "deadletter".into();
    c.kafka.commit_interval = Dur(300);
    // Fewer groups than the default: window records are costly to serialise in debug builds.
    c.engine.group_by = vec![vec![], vec![Dim::Team], vec![Dim::Priority]];
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ] {
        c.kafka.librdkafka.insert(k.into(), v.into());
    }
    c
}

/// One input line: its bytes, Kafka key and (optionally) a fixed partition.
#[derive(Clone)]
struct Line {
    bytes: Vec<u8>,
    key: Option<String>,
    partition: Option<i32>,
}

/// Generated events starting at `start` (hour-aligned), with invalid lines, duplicates and
/// orphans; keyed by customer.
fn generated(events: u64, seed: u64, start: i64) -> Vec<Line> {
    let g = Generator::new(GenerateOptions {
        events,
        seed,
        start_ms: start,
        customers: 300,
        tickets_per_hour: 600.0,
        invalid_ratio: 0.01,
        duplicate_ratio: 0.005,
        orphan_ratio: 0.005,
    });
    g.map(|l| Line {
        bytes: l.line.into_bytes(),
        key: (!l.key.is_empty()).then_some(l.key),
        partition: None,
    })
    .collect()
}

fn future_start() -> i64 {
    (now_ms() / HOUR + 48) * HOUR
}

fn nps_line(id: &str, customer: &str, t: i64) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","type":"survey.nps","time":"{}","customer":"{customer}","score":8}}"#,
        fmt_ms(t)
    )
    .into_bytes()
}

/// One passive NPS answer per partition, 100 days after the data: closes every data window.
fn sentinels(lines: &[Line], partitions: i32) -> Vec<Line> {
    let last = lines
        .iter()
        .filter_map(|l| cxstream::event::decode(&l.bytes).ok().map(|e| e.time))
        .max()
        .unwrap();
    let m = (last / HOUR + 1) * HOUR + 100 * DAY;
    (0..partitions)
        .map(|p| Line {
            bytes: nps_line(&format!("sentinel-{p}"), &format!("sentinel-{p}"), m),
            key: Some(format!("sentinel-{p}")),
            partition: Some(p),
        })
        .collect()
}

struct Delivered(Mutex<Vec<(usize, i32, i64)>>);
impl ClientContext for Delivered {}
impl ProducerContext for Delivered {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, i: usize) {
        let m = r.as_ref().expect("test input delivered");
        self.0.lock().unwrap().push((i, m.partition(), m.offset()));
    }
}

/// Produces the lines in order; returns each line's (partition, offset).
fn produce(bootstrap: &str, lines: &[Line]) -> Vec<(i32, i64)> {
    let p: BaseProducer<Delivered> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Delivered(Mutex::new(Vec::new())))
        .unwrap();
    for (i, l) in lines.iter().enumerate() {
        let mut r = BaseRecord::with_opaque_to("input", i).payload(&l.bytes[..]);
        if let Some(k) = &l.key {
            r = r.key(k.as_bytes());
        }
        if let Some(part) = l.partition {
            r = r.partition(part);
        }
        let mut r = r;
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush test input");
    let mut v = p.context().0.lock().unwrap().clone();
    v.sort();
    assert_eq!(v.len(), lines.len());
    v.into_iter().map(|(_, p, o)| (p, o)).collect()
}

#[derive(Debug, Clone)]
struct Msg {
    key: String,
    value: String,
}

/// Reads a topic from the beginning (no group) until at least `expect` messages arrived and
/// every partition is at its end, or `timeout`.
fn read_topic(bootstrap: &str, topic: &str, expect: usize, timeout: Duration) -> Vec<Msg> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let n = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut eof = BTreeSet::new();
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                out.push(Msg {
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                });
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            _ => {}
        }
        if out.len() >= expect && eof.len() as i32 == n {
            break;
        }
    }
    out
}

/// A pipeline running in a thread; stopped (gracefully) on drop.
struct Running {
    shutdown: Trigger,
    progress: Arc<Progress>,
    handle: Option<JoinHandle<anyhow::Result<RunSummary>>>,
}

impl Running {
    fn start(cfg: Config) -> Running {
        Self::start_with(cfg, None)
    }

    fn start_with(cfg: Config, metrics: Option<Arc<cxstream::metrics::Metrics>>) -> Running {
        let (shutdown, s) = shutdown::channel();
        let progress = Progress::new();
        let p = Arc::clone(&progress);
        let handle = std::thread::spawn(move || run_pipeline_with(Arc::new(cfg), metrics, s, p));
        Running {
            shutdown,
            progress,
            handle: Some(handle),
        }
    }

    fn stop(mut self) -> RunSummary {
        self.shutdown.fire();
        let t0 = Instant::now();
        let s = self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("pipeline thread panicked")
            .expect("pipeline failed");
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "shutdown took {:?}",
            t0.elapsed()
        );
        s
    }

    fn wait_assigned(&self, timeout: Duration) {
        wait_for(timeout, "partition assignment", || {
            !self.progress.assigned().is_empty()
        });
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.fire();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn wait_for(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What replay says the pipeline must produce for these lines (in this order).
struct Expected {
    /// Output records (no dead letters, no partial windows), as JSON lines.
    records: Vec<String>,
    /// Dead letters: (payload, reason).
    deadletters: Vec<(String, String)>,
}

fn replay(cfg: &Config, lines: &[Line]) -> Expected {
    let mut input = Vec::new();
    for l in lines {
        input.extend_from_slice(&l.bytes);
        input.push(b'\n');
    }
    let mut engine = Engine::new(Arc::new(cfg.clone()));
    let out = replay_to_string(&mut engine, &input);
    assert_eq!(
        engine.stats().late_events,
        0,
        "test data must have no late events"
    );
    let mut e = Expected {
        records: Vec::new(),
        deadletters: Vec::new(),
    };
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str().unwrap() {
            "deadletter" => e.deadletters.push((
                v["payload"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )),
            "kpi.window" if v["partial"] == Value::Bool(true) => {}
            _ => e.records.push(line.to_string()),
        }
    }
    e
}

/// Items only in `got` ("+ …") or only in `want` ("- …"), with multiplicity.
fn multiset_diff(
    got: impl Iterator<Item = String>,
    want: impl Iterator<Item = String>,
) -> Vec<String> {
    let mut count: BTreeMap<String, i64> = BTreeMap::new();
    for g in got {
        *count.entry(g).or_default() += 1;
    }
    for w in want {
        *count.entry(w).or_default() -= 1;
    }
    count
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(k, n)| format!("{}{} {k}", if n > 0 { "+" } else { "-" }, n.abs()))
        .collect()
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn merge_windows<'a>(records: impl Iterator<Item = &'a str>, skip_before: i64) -> Merged {
    let mut m = Merged::new();
    for line in records {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] != "kpi.window" {
            continue;
        }
        let end = cxstream::ts::parse_rfc3339_ms(v["window"]["end"].as_str().unwrap()).unwrap();
        if end <= skip_before {
            continue;
        }
        let key = (
            v["window"]["size_seconds"].as_u64().unwrap(),
            v["window"]["start"].as_str().unwrap().to_string(),
            v["group"].to_string(),
        );
        let acc = m.entry(key).or_default();
        for (k, n) in counts(&v) {
            *acc.entry(k).or_default() += n;
        }
    }
    m
}

/// Alert records (not `kpi.window`), sorted. An `sla.breached` record's `team` is left out:
/// the engine takes the ticket's team when the watermark detects the breach, so an escalation
/// between the due and the detection moves it, and detection depends on how the input is
/// partitioned (see `partitioned_config`).
fn alerts<'a>(records: impl Iterator<Item = &'a str>) -> Vec<String> {
    sorted(
        &records
            .filter(|l| !l.contains(r#""type":"kpi.window""#))
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                if v["type"] == "sla.breached" {
                    v.as_object_mut().unwrap().remove("team");
                }
                v.to_string()
            })
            .collect::<Vec<_>>(),
    )
}

/// For comparisons across partitionings: no `team` group. The engine counts an SLA breach
/// under the team the ticket has when the watermark passes the due (golden case
/// `sla_breach`), and where the watermark is when an escalation arrives depends on the
/// partitioning, so team-grouped breach counts may legitimately differ from replay's.
fn partitioned_config(bootstrap: &str, group: &str) -> Config {
    let mut c = config(bootstrap, group);
    c.engine.group_by = vec![vec![], vec![Dim::Channel], vec![Dim::Priority]];
    c
}

fn assert_merged_eq(got: &Merged, want: &Merged) {
    let empty = BTreeMap::new();
    let mut diffs = Vec::new();
    for k in got.keys().chain(want.keys()).collect::<BTreeSet<_>>() {
        let (g, w) = (got.get(k).unwrap_or(&empty), want.get(k).unwrap_or(&empty));
        if g != w {
            let d: Vec<String> = g
                .keys()
                .chain(w.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|p| g.get(*p) != w.get(*p))
                .map(|p| format!("{p}: got {:?} want {:?}", g.get(p), w.get(p)))
                .collect();
            diffs.push(format!("{k:?}: {}", d.join(", ")));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} windows differ (of {} expected):\n{}",
        diffs.len(),
        want.len(),
        diffs[..diffs.len().min(12)].join("\n")
    );
}

// ---------------------------------------------------------------- tests

/// (a) one partition: the output topic holds exactly replay's records (as a multiset), keyed
/// per SPEC §4; (b) dead letters carry topic/partition/offset.
#[test]
fn one_partition_output_equals_replay_and_deadletters_carry_offsets() {
    let t0 = Instant::now();
    let mock = cluster(1, 1);
    let bs = mock.bootstrap_servers();
    let cfg = config(&bs, "g-one");
    let mut lines = generated(3000, 7, future_start());
    // Hand-written invalid inputs, including bytes that are not UTF-8 and an empty value.
    for bad in [
        &b"not json"[..],
        b"{\"id\":\"x\"}",
        b"\xff\xfe{\"a\":1}",
        b"",
    ] {
        lines.insert(
            lines.len() / 2,
            Line {
                bytes: bad.to_vec(),
                key: None,
                partition: None,
            },
        );
    }
    lines.extend(sentinels(&lines, 1));
    let expected = replay(&cfg, &lines);
    let positions = produce(&bs, &lines);

    let run = Running::start(cfg.clone());
    let out = read_topic(
        &bs,
        "output",
        expected.records.len(),
        Duration::from_secs(40),
    );
    let dl = read_topic(
        &bs,
        "deadletter",
        expected.deadletters.len(),
        Duration::from_secs(20),
    );
    let summary = run.stop();

    // (a) exact equality of the record multiset, and the keys.
    let got: Vec<String> = out.iter().map(|m| m.value.clone()).collect();
    assert_eq!(got.len(), expected.records.len(), "record count");
    assert_eq!(sorted(&got), sorted(&expected.records));
    for m in &out {
        let v: Value = serde_json::from_str(&m.value).unwrap();
        if v["type"] == "kpi.window" {
            let size =
                cxstream::ts::duration_label(v["window"]["size_seconds"].as_i64().unwrap() * 1000);
            let want = format!(
                "{size}|{}|{}",
                v["window"]["start"].as_str().unwrap(),
                v["group"]
            );
            assert_eq!(m.key, want, "window key (one instance owns all: no suffix)");
            assert_eq!(v["partitions"], serde_json::json!([0]));
        } else {
            assert_eq!(m.key, v["customer"].as_str().unwrap(), "alert key");
        }
    }

    // (b) every invalid or rejected input on the dead-letter topic, with its position.
    let by_offset: BTreeMap<i64, &Line> = positions
        .iter()
        .zip(&lines)
        .map(|((_, o), l)| (*o, l))
        .collect();
    let diff = multiset_diff(
        dl.iter().map(|m| {
            let v: Value = serde_json::from_str(&m.value).unwrap();
            format!(
                "{} | {}",
                v["payload"].as_str().unwrap(),
                v["reason"].as_str().unwrap()
            )
        }),
        expected
            .deadletters
            .iter()
            .map(|(p, r)| format!("{p} | {r}")),
    );
    assert!(
        diff.is_empty(),
        "dead letters differ from replay's: {diff:?}"
    );
    let mut got_dl = Vec::new();
    for m in &dl {
        let v: Value = serde_json::from_str(&m.value).unwrap();
        assert_eq!(v["type"], "deadletter");
        let src = &v["source"];
        assert_eq!(src["topic"], "input");
        assert_eq!(src["partition"], 0);
        let off = src["offset"].as_i64().unwrap();
        assert_eq!(m.key, format!("input|0|{off}"));
        let line = by_offset[&off];
        assert_eq!(
            v["payload"].as_str().unwrap(),
            String::from_utf8_lossy(&line.bytes),
            "payload at offset {off}"
        );
        if std::str::from_utf8(&line.bytes).is_err() {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v["payload_base64"].as_str().unwrap())
                .unwrap();
            assert_eq!(raw, line.bytes, "lossless payload");
        }
        got_dl.push((
            v["payload"].as_str().unwrap().to_string(),
            v["reason"].as_str().unwrap().to_string(),
        ));
    }
    let empty = got_dl.iter().filter(|(p, _)| p.is_empty()).count();
    assert_eq!(empty, 1, "the empty value is dead-lettered");
    assert_eq!(sorted(&got_dl), sorted(&expected.deadletters));

    assert_eq!(summary.events, lines.len() as u64);
    // Everything but the sentinel (its windows are still open) is committed.
    let sentinel_offset = positions.last().unwrap().1;
    assert_eq!(
        summary.committed.get(&("input".into(), 0)),
        Some(&sentinel_offset)
    );
    eprintln!(
        "one_partition: {} records, {} dead letters, {:?}",
        got.len(),
        dl.len(),
        t0.elapsed()
    );
}

/// (a) three partitions keyed by customer, one instance: merged window counts and alerts
/// equal replay's. Also exercises the metrics hook.
#[test]
fn three_partitions_merged_output_equals_replay() {
    let t0 = Instant::now();
    let mock = cluster(1, 3);
    let bs = mock.bootstrap_servers();
    let cfg = partitioned_config(&bs, "g-three");
    let mut lines = generated(3000, 11, future_start());
    lines.extend(sentinels(&lines, 3));
    let expected = replay(&cfg, &lines);
    let positions = produce(&bs, &lines);
    let used: BTreeSet<i32> = positions.iter().map(|(p, _)| *p).collect();
    assert_eq!(used.len(), 3, "data on every partition");

    let metrics = cxstream::metrics::Metrics::new(&cfg);
    let run = Running::start_with(cfg.clone(), Some(metrics));
    let want = merge_windows(expected.records.iter().map(String::as_str), i64::MIN);
    let want_alerts = alerts(expected.records.iter().map(String::as_str));
    let out = read_topic(
        &bs,
        "output",
        expected.records.len(),
        Duration::from_secs(40),
    );
    let summary = run.stop();
    let got_lines: Vec<&str> = out.iter().map(|m| m.value.as_str()).collect();
    assert_merged_eq(&merge_windows(got_lines.iter().copied(), i64::MIN), &want);
    assert_eq!(alerts(got_lines.iter().copied()), want_alerts);
    // One instance owns all partitions: complete records, keys without a suffix.
    for m in &out {
        assert_eq!(
            m.key.matches('|').count(),
            if m.value.contains("kpi.window") { 2 } else { 0 }
        );
    }
    assert_eq!(summary.stats.late_events, 0);
    eprintln!(
        "three_partitions: {} records, {:?}",
        out.len(),
        t0.elapsed()
    );
}

/// (c) graceful stop mid-stream, restart in the same group: every input offset is consumed
/// at least once and none is skipped; the commit never runs ahead of what was processed.
#[test]
fn graceful_stop_and_restart_skips_nothing() {
    let t0 = Instant::now();
    let mock = cluster(1, 1);
    let bs = mock.bootstrap_servers();
    let mut cfg = config(&bs, "g-restart");
    // Small fetches so that the stop lands in the middle of the input.
    cfg.kafka
        .librdkafka
        .insert("max.partition.fetch.bytes".into(), "20000".into());
    let mut lines = generated(8000, 3, future_start());
    lines.extend(sentinels(&lines, 1));
    let positions = produce(&bs, &lines);
    let end = positions.last().unwrap().1 + 1;

    let run = Running::start(cfg.clone());
    wait_for(Duration::from_secs(30), "some progress", || {
        run.progress.events.load(Ordering::Relaxed) >= 2000
    });
    let first = run.stop();
    let key = ("input".to_string(), 0);
    let (a0, a1) = first.processed[&key];
    let c1 = *first.committed.get(&key).expect("first run committed");
    assert_eq!(a0, 0);
    assert!(c1 <= a1 + 1, "committed {c1} past processed {a1}");
    assert!(c1 > 0, "something committed");

    // The group's committed offset, as another client sees it.
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "g-restart")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("input", 0);
    let committed = probe
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition("input", 0).unwrap().offset(),
        Offset::Offset(c1)
    );
    drop(probe);

    let run = Running::start(cfg.clone());
    wait_for(Duration::from_secs(40), "the rest of the input", || {
        run.progress.events.load(Ordering::Relaxed) as i64 >= end - c1
    });
    let second = run.stop();
    let (b0, b1) = second.processed[&key];
    assert_eq!(b0, c1, "the restart resumes exactly at the commit");
    assert_eq!(b1, end - 1, "and reads to the end");
    assert_eq!(second.events as i64, end - c1);
    // Union of what the two runs processed covers every offset.
    assert!(a0 == 0 && b0 <= a1 + 1 && b1 == end - 1);
    let c2 = second.committed[&key];
    assert!(c2 >= c1 && c2 <= end);
    eprintln!(
        "restart: run1 [{a0},{a1}] committed {c1} ({} records); run2 [{b0},{b1}] committed {c2}; {:?}",
        first.records_produced,
        t0.elapsed()
    );
}

/// (d) two pipelines in one group split the partitions; the merge of their parts equals
/// replay (window counts add; alerts as multisets); keys carry the `|<partitions>` suffix.
#[test]
fn two_instances_split_partitions_and_merge_to_replay() {
    two_instances("g-two", None);
}

/// (d) with the cooperative protocol: the second member's join revokes only the moved
/// partitions, and the first member restarts its engine and rewinds the partitions it keeps.
#[test]
fn two_instances_cooperative_rebalance_merge_to_replay() {
    two_instances("g-two-coop", Some("cooperative-sticky"));
}

fn two_instances(group: &str, strategy: Option<&str>) {
    let t0 = Instant::now();
    let mock = cluster(1, 3);
    let bs = mock.bootstrap_servers();
    let mut cfg = partitioned_config(&bs, group);
    if let Some(s) = strategy {
        cfg.kafka
            .librdkafka
            .insert("partition.assignment.strategy".into(), s.into());
    }
    let start = future_start();
    // One early event per partition, produced first: every shard has data before the main
    // input, so the watermark waits for all of them (their own windows are not compared:
    // they may be counted twice when the second member's join moves a partition).
    let starters: Vec<Line> = (0..3)
        .map(|p| Line {
            bytes: nps_line(
                &format!("starter-{p}"),
                &format!("starter-{p}"),
                start - HOUR / 2,
            ),
            key: Some(format!("starter-{p}")),
            partition: Some(p),
        })
        .collect();
    let mut lines = generated(3000, 5, start);
    lines.extend(sentinels(&lines, 3));
    let mut all = starters.clone();
    all.extend(lines.iter().cloned());
    let expected = replay(&cfg, &all);
    produce(&bs, &starters);

    let a = Running::start(cfg.clone());
    a.wait_assigned(Duration::from_secs(20));
    let b = Running::start(cfg.clone());
    let split = || {
        let (x, y) = (a.progress.assigned(), b.progress.assigned());
        let u: BTreeSet<_> = x.iter().chain(&y).cloned().collect();
        !x.is_empty() && !y.is_empty() && u.len() == 3 && x.len() + y.len() == 3
    };
    wait_for(Duration::from_secs(30), "both members assigned", split);
    std::thread::sleep(Duration::from_millis(500));
    assert!(split(), "assignment stable");
    let (pa, pb) = (a.progress.assigned(), b.progress.assigned());
    produce(&bs, &lines);

    let want = merge_windows(expected.records.iter().map(String::as_str), start);
    let want_alerts = alerts(expected.records.iter().map(String::as_str));
    // Parts: at least as many records as replay (a window may be split in two parts).
    let deadline = Instant::now() + Duration::from_secs(40);
    let out = loop {
        let out = read_topic(
            &bs,
            "output",
            expected.records.len(),
            Duration::from_secs(10),
        );
        let got = merge_windows(out.iter().map(|m| m.value.as_str()), start);
        if got == want || Instant::now() > deadline {
            break out;
        }
    };
    let sa = a.stop();
    let sb = b.stop();
    let got_lines: Vec<&str> = out.iter().map(|m| m.value.as_str()).collect();
    assert_merged_eq(&merge_windows(got_lines.iter().copied(), start), &want);
    assert_eq!(alerts(got_lines.iter().copied()), want_alerts);
    let owned = |v: &[(String, i32)]| v.iter().map(|(_, p)| *p).collect::<BTreeSet<i32>>();
    let (oa, ob) = (owned(&pa), owned(&pb));
    let mut parts = 0;
    for m in &out {
        let v: Value = serde_json::from_str(&m.value).unwrap();
        if v["type"] != "kpi.window" {
            continue;
        }
        let end = cxstream::ts::parse_rfc3339_ms(v["window"]["end"].as_str().unwrap()).unwrap();
        if end <= start {
            continue; // the starters' windows (see above)
        }
        let ps: BTreeSet<i32> = v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap() as i32)
            .collect();
        let suffix: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
        assert!(
            m.key.ends_with(&format!("|{}", suffix.join(","))),
            "key {}",
            m.key
        );
        assert!(
            ps.is_subset(&oa) || ps.is_subset(&ob),
            "a part covers one member's partitions"
        );
        parts += 1;
    }
    assert!(sa.events > 0 && sb.events > 0, "both members worked");
    eprintln!(
        "two_instances ({group}): {oa:?} + {ob:?}, {parts} window parts, events {} + {}, engine restarts {} + {}, {:?}",
        sa.events,
        sb.events,
        sa.engine_restarts,
        sb.engine_restarts,
        t0.elapsed()
    );
}

/// (e) injected Produce and OffsetCommit errors, produce timeouts, and the broker down then
/// up: no crash, no loss (every replay record arrives; retries may duplicate), commits
/// recover.
#[test]
fn broker_errors_and_outage_lose_nothing() {
    let t0 = Instant::now();
    let mock = cluster(1, 1);
    let bs = mock.bootstrap_servers();
    let mut cfg = config(&bs, "g-errors");
    // Deliveries time out quickly so that failed deliveries go through the resend path.
    cfg.kafka
        .librdkafka
        .insert("message.timeout.ms".into(), "1500".into());
    let mut lines = generated(3000, 9, future_start());
    let second_half = lines.split_off(lines.len() / 2);
    let mut tail = second_half.clone();
    let mut full = lines.clone();
    full.extend(second_half);
    tail.extend(sentinels(&full, 1));
    full.extend(sentinels(&full, 1));
    let expected = replay(&cfg, &full);
    produce(&bs, &lines);

    // Phase 1: every Produce request fails for a while (past message.timeout.ms), and the
    // first commits fail.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 40],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 3],
    );
    let run = Running::start(cfg.clone());
    wait_for(Duration::from_secs(30), "first half processed", || {
        run.progress.events.load(Ordering::Relaxed) >= lines.len() as u64
    });
    wait_for(Duration::from_secs(30), "a commit after the errors", || {
        run.progress.commits.load(Ordering::Relaxed) >= 1
    });

    // Phase 2: the broker goes down; the rest of the input is produced meanwhile (queued
    // by the test's producer), then the broker comes back.
    mock.broker_down(1).unwrap();
    let producer = {
        let bs = bs.clone();
        let tail = tail.clone();
        std::thread::spawn(move || produce(&bs, &tail))
    };
    std::thread::sleep(Duration::from_secs(3));
    mock.broker_up(1).unwrap();
    producer.join().unwrap();

    let want_set: BTreeSet<String> = expected.records.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(40);
    let out = loop {
        let out = read_topic(
            &bs,
            "output",
            expected.records.len(),
            Duration::from_secs(10),
        );
        let got: BTreeSet<String> = out.iter().map(|m| m.value.clone()).collect();
        if want_set.is_subset(&got) || Instant::now() > deadline {
            break out;
        }
    };
    let summary = run.stop();
    let got: BTreeSet<String> = out.iter().map(|m| m.value.clone()).collect();
    let missing: Vec<_> = want_set.difference(&got).take(3).collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
    assert_eq!(got, want_set, "nothing else than replay's records");
    assert_eq!(summary.records_dropped, 0);
    let dl = read_topic(
        &bs,
        "deadletter",
        expected.deadletters.len(),
        Duration::from_secs(20),
    );
    let dl_payloads: BTreeSet<String> = dl
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_str(&m.value).unwrap();
            v["payload"].as_str().unwrap().to_string()
        })
        .collect();
    let want_dl: BTreeSet<String> = expected
        .deadletters
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(dl_payloads, want_dl);
    // Commits recovered: everything up to the sentinel is committed.
    let end = full.len() as i64;
    assert_eq!(summary.committed[&("input".to_string(), 0)], end - 1);
    eprintln!(
        "errors: {} records ({} distinct, {} resent after failed delivery), {} commits, {:?}",
        out.len(),
        got.len(),
        summary.records_resent,
        summary.commits,
        t0.elapsed()
    );
}

/// SPEC §2 live mode: once caught up and idle, the watermark follows the wall clock minus
/// the allowed lateness, so an SLA breaches and windows close on a quiet stream.
#[test]
fn idle_input_advances_the_watermark_with_the_wall_clock() {
    let mock = cluster(1, 1);
    let bs = mock.bootstrap_servers();
    let cfg = config(&bs, "g-idle");
    let t = now_ms() - 20 * 60_000;
    let line = format!(
        r#"{{"id":"e1","type":"ticket.created","time":"{}","customer":"c1","ticket":"t1","channel":"chat","priority":"urgent"}}"#,
        fmt_ms(t)
    );
    produce(
        &bs,
        &[Line {
            bytes: line.into_bytes(),
            key: Some("c1".into()),
            partition: None,
        }],
    );
    let run = Running::start(cfg);
    // Urgent first response is due after 15 min: already past; the 1m window closed too.
    let out = read_topic(&bs, "output", 3, Duration::from_secs(20));
    let wm = run.progress.watermark().expect("a watermark");
    let summary = run.stop();
    let types: Vec<String> = out
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.value).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(types.iter().any(|t| t == "sla.breached"), "{types:?}");
    assert!(types.iter().any(|t| t == "kpi.window"), "{types:?}");
    assert!(
        wm <= now_ms() - 30_000 && wm > now_ms() - 60_000,
        "watermark {wm}"
    );
    assert_eq!(summary.events, 1);
}

/// `cxstream demo`'s engine room: the embedded cluster, the generator and the pipeline run,
/// the metrics endpoint answers while it runs, and it stops by itself after `duration`.
#[test]
fn demo_runs_generates_and_serves_metrics() {
    use std::io::{Read, Write};
    init_log();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cfg = Config::default();
    cfg.kafka.commit_interval = Dur(1000);
    let opts = cxstream::runtime::DemoOptions {
        rate: 300.0,
        duration: Some(Duration::from_secs(9)),
        metrics_listen: addr,
        partitions: 2,
    };
    let demo = std::thread::spawn(move || {
        cxstream::runtime::demo(Arc::new(cfg), opts, cxstream::shutdown::Shutdown::never())
    });
    let get = |path: &str| -> Option<String> {
        let mut c = std::net::TcpStream::connect(addr).ok()?;
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut body = String::new();
        c.read_to_string(&mut body).ok()?;
        Some(body)
    };
    // Events flow through the pipeline into the metrics while the demo runs.
    wait_for(Duration::from_secs(8), "events in /metrics", || {
        get("/metrics").is_some_and(|b| {
            b.lines().any(|l| {
                l.starts_with("cxstream_events_total{")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0)
            })
        })
    });
    demo.join().unwrap().expect("demo ran and stopped cleanly");
    assert!(
        get("/metrics").is_none(),
        "the endpoint stops with the demo"
    );
}
