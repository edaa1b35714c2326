//! Helpers shared by the Kafka tests (mock cluster and real broker): generated input keyed
//! by customer, producing it, reading topics, running the pipeline in a thread or as a child
//! process, and what replay says the output must be.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cxstream::config::{Config, Dim, Dur};
use cxstream::engine::Engine;
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::runtime::{run_pipeline_with, Progress, RunOptions, RunSummary};
use cxstream::shutdown::{self, Trigger};
use cxstream::sink::file::FileSink;
use cxstream::source::{Admission, Partitioner, Route};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use serde_json::Value;

/// One input line: its bytes and Kafka key (the customer id; none for lines without one).
#[derive(Clone, Debug)]
pub struct Line {
    pub bytes: Vec<u8>,
    pub key: Option<String>,
}

/// Generated events with invalid lines, duplicates and orphans, keyed by customer.
pub fn generated(events: u64, seed: u64) -> Vec<Line> {
    Generator::new(GenerateOptions {
        events,
        seed,
        customers: 300,
        tickets_per_hour: 600.0,
        invalid_ratio: 0.01,
        duplicate_ratio: 0.005,
        orphan_ratio: 0.005,
        ..GenerateOptions::default()
    })
    .map(|l| Line {
        bytes: l.line.into_bytes(),
        key: (!l.key.is_empty()).then_some(l.key),
    })
    .collect()
}

/// The lines reordered as producers with up to `delay_ms` of delay would deliver them.
pub fn disordered(lines: &[Line], delay_ms: i64, seed: u64) -> Vec<Line> {
    let mut x = seed | 1;
    let mut last = 0i64;
    let mut keyed: Vec<(i64, usize, Line)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if let Ok(e) = cxstream::event::decode(&l.bytes) {
                last = e.time;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (last + (x % delay_ms as u64) as i64, i, l.clone())
        })
        .collect();
    keyed.sort_by_key(|(t, i, _)| (*t, *i));
    keyed.into_iter().map(|(_, _, l)| l).collect()
}

/// The lines as a JSON Lines file.
pub fn jsonl(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l.bytes);
        out.push(b'\n');
    }
    out
}

/// The partition librdkafka's default partitioner puts a line on.
pub fn partition_of(l: &Line, n: i32) -> i32 {
    match &l.key {
        Some(k) => Partitioner::Crc32.partition(k.as_bytes(), n),
        None => 0,
    }
}

/// The config of a Kafka test: topics `input`, `output`, `deadletter`, group `group`.
pub fn config(bootstrap: &str, group: &str) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap_servers = bootstrap.to_string();
    c.kafka.group_id = group.to_string();
    c.kafka.input_topics = vec!["input".into()];
    c.kafka.output_topic = "output".into();
    c.kafka.deadletter_topic = "deadletter".into();
    c.kafka.checkpoint_interval = Dur(500);
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

struct Delivered(Mutex<Vec<(usize, i32, i64)>>);
impl ClientContext for Delivered {}
impl ProducerContext for Delivered {
    type DeliveryOpaque = usize;
    fn delivery(&self, r: &DeliveryResult<'_>, i: usize) {
        let m = r.as_ref().expect("test input delivered");
        self.0.lock().unwrap().push((i, m.partition(), m.offset()));
    }
}

/// Produces the lines in order to `topic`, keyed (librdkafka's default partitioner); returns
/// each line's (partition, offset).
pub fn produce(bootstrap: &str, topic: &str, lines: &[Line]) -> Vec<(i32, i64)> {
    let p: BaseProducer<Delivered> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create_with_context(Delivered(Mutex::new(Vec::new())))
        .unwrap();
    for (i, l) in lines.iter().enumerate() {
        let mut r = BaseRecord::with_opaque_to(topic, i).payload(&l.bytes[..]);
        if let Some(k) = &l.key {
            r = r.key(k.as_bytes());
        }
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
    p.flush(Duration::from_secs(60)).expect("flush test input");
    let mut v = p.context().0.lock().unwrap().clone();
    v.sort();
    assert_eq!(v.len(), lines.len());
    v.into_iter().map(|(_, p, o)| (p, o)).collect()
}

/// One message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub key: String,
    pub value: String,
    pub partition: i32,
    pub offset: i64,
}

/// Reads a topic from the beginning (no group) until `done(messages)` or `timeout`.
pub fn read_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Msg]) -> bool,
) -> Vec<Msg> {
    let (c, _) = reader(bootstrap, topic);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            quiet_since = Instant::now();
            out.push(Msg {
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                partition: m.partition(),
                offset: m.offset(),
            });
        }
        if quiet_since.elapsed() > Duration::from_millis(500) && done(&out) {
            break;
        }
    }
    out
}

/// A consumer assigned every partition of `topic` from the beginning, and their number.
fn reader(bootstrap: &str, topic: &str) -> (BaseConsumer, i32) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
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
    (c, n)
}

/// Reads a whole topic from the beginning up to the end offsets it has now (every producer
/// done): not "until enough messages", which stops early when records were emitted again.
pub fn read_to_end(bootstrap: &str, topic: &str, timeout: Duration) -> Vec<Msg> {
    let (c, n) = reader(bootstrap, topic);
    let mut ends = BTreeMap::new();
    for p in 0..n {
        let (low, high) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        // librdkafka's mock cluster drops the oldest messages past 5 MB per partition: a
        // test whose output does not fit must say so, not report records as lost.
        assert_eq!(
            low, 0,
            "{topic} partition {p} starts at offset {low}: the broker dropped its oldest records \
             (the mock cluster keeps 5 MB per partition); use more partitions or less output"
        );
        ends.insert(p, high);
    }
    let mut out: Vec<Msg> = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let done = |next: &BTreeMap<i32, i64>| {
        ends.iter()
            .all(|(p, end)| next.get(p).copied().unwrap_or(0) >= *end)
    };
    while !done(&next) {
        assert!(
            Instant::now() < deadline,
            "{topic} not read to its end offsets {ends:?} within {timeout:?}"
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            next.insert(m.partition(), m.offset() + 1);
            out.push(Msg {
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                partition: m.partition(),
                offset: m.offset(),
            });
        }
    }
    out
}

/// A pipeline running in a thread; stopped (gracefully) on drop.
pub struct Running {
    pub shutdown: Trigger,
    pub progress: Arc<Progress>,
    pub handle: Option<JoinHandle<anyhow::Result<RunSummary>>>,
}

impl Running {
    pub fn start(cfg: Config, opts: RunOptions) -> Running {
        Self::start_with(cfg, None, opts)
    }

    pub fn start_with(
        cfg: Config,
        metrics: Option<Arc<cxstream::metrics::Metrics>>,
        opts: RunOptions,
    ) -> Running {
        let (shutdown, s) = shutdown::channel();
        let progress = Progress::new();
        let p = Arc::clone(&progress);
        let handle =
            std::thread::spawn(move || run_pipeline_with(Arc::new(cfg), metrics, s, p, opts));
        Running {
            shutdown,
            progress,
            handle: Some(handle),
        }
    }

    /// Waits for the run to end by itself (a bounded run).
    pub fn join(mut self) -> anyhow::Result<RunSummary> {
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("pipeline thread panicked")
    }

    /// Stops it gracefully.
    pub fn stop(mut self) -> RunSummary {
        self.shutdown.fire();
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("pipeline thread panicked")
            .expect("pipeline failed")
    }

    pub fn wait_assigned(&self, timeout: Duration) {
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

pub fn wait_for(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `cxstream` as a child process, with the config as environment overrides (so it is a real
/// process that can be SIGKILLed).
pub struct Proc {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Proc {
    pub fn start(cfg_file: &Path, args: &[&str], log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cxstream"))
            .arg("--config")
            .arg(cfg_file)
            .args(args)
            // CXSTREAM_TEST_LOG (e.g. `info,cxstream::logs=trace` with
            // CXSTREAM_KAFKA__LIBRDKAFKA__DEBUG set) for a post-mortem.
            .env(
                "CXSTREAM_LOG",
                std::env::var("CXSTREAM_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start cxstream");
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL: no flush, no checkpoint, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the graceful stop (final checkpoints, leaving the group).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM {}", self.child.id());
    }

    /// Waits for it to exit by itself; its exit status and log.
    pub fn wait(&mut self, timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return (
                    st.success(),
                    std::fs::read_to_string(&self.log).unwrap_or_default(),
                );
            }
            if Instant::now() > deadline {
                self.kill();
                return (
                    false,
                    std::fs::read_to_string(&self.log).unwrap_or_default(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `cfg`'s Kafka-related settings as a TOML file the child process reads.
pub fn write_config(cfg: &Config, path: &Path) {
    let k = &cfg.kafka;
    let mut f = std::fs::File::create(path).unwrap();
    let groups: Vec<String> = cfg
        .engine
        .group_by
        .iter()
        .map(|g| {
            let d: Vec<String> = g.iter().map(|d| format!("\"{}\"", d.as_str())).collect();
            format!("[{}]", d.join(", "))
        })
        .collect();
    writeln!(f, "[engine]\ngroup_by = [{}]", groups.join(", ")).unwrap();
    writeln!(
        f,
        "[input]\nmax_future = \"{}\"",
        cxstream::ts::duration_label(cfg.input.max_future.0)
    )
    .unwrap();
    writeln!(
        f,
        "[kafka]\nbootstrap_servers = \"{}\"\ngroup_id = \"{}\"\ninput_topics = [\"{}\"]\noutput_topic = \"{}\"\ndeadletter_topic = \"{}\"\ncheckpoint_interval = \"{}\"\nshutdown_timeout = \"{}\"",
        k.bootstrap_servers,
        k.group_id,
        k.input_topics[0],
        k.output_topic,
        k.deadletter_topic,
        cxstream::ts::duration_label(k.checkpoint_interval.0),
        cxstream::ts::duration_label(k.shutdown_timeout.0)
    )
    .unwrap();
    writeln!(f, "[kafka.librdkafka]").unwrap();
    for (key, v) in &k.librdkafka {
        writeln!(f, "\"{key}\" = \"{v}\"").unwrap();
    }
    writeln!(f, "[metrics]\nlisten = \"\"").unwrap();
}

/// What `replay --partitions N` of the same input says: the records by identity.
pub struct Expected {
    /// `kpi.window` records by key (complete and partial).
    pub windows: BTreeMap<String, String>,
    /// Alert and signal records by id.
    pub alerts: BTreeMap<String, String>,
    /// Dead letters by id, with the Kafka position of their line (`deadletter|input|p|o`).
    pub deadletters: BTreeMap<String, String>,
}

/// Replays `lines` split over `n` partitions as the Kafka path would see them.
pub fn expected(cfg: &Config, lines: &[Line], n: i32, positions: &[(i32, i64)]) -> Expected {
    let mut engine = Engine::new(Arc::new(cfg.clone()));
    let mut out = Vec::new();
    let mut sink = FileSink {
        output: &mut out,
        deadletter: None,
    };
    let route = if n > 1 {
        Route::ByCustomer(Partitioner::Crc32, n)
    } else {
        Route::Fixed(0)
    };
    cxstream::replay::replay_routed(
        &mut engine,
        &jsonl(lines)[..],
        "input",
        route,
        Admission::new(cfg, None),
        &mut sink,
        |_, _| {},
    )
    .unwrap();
    let mut e = Expected {
        windows: BTreeMap::new(),
        alerts: BTreeMap::new(),
        deadletters: BTreeMap::new(),
    };
    for line in String::from_utf8(out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str().unwrap() {
            "kpi.window" => {
                e.windows.insert(window_key(&v), line.to_string());
            }
            "deadletter" => {
                // deadletter|input|<line> → the line's Kafka position.
                let n: usize = v["source"]["line"].as_u64().unwrap() as usize;
                let (p, o) = positions[n - 1];
                let mut v = v.clone();
                v["id"] = Value::String(format!("deadletter|input|{p}|{o}"));
                v["source"] = serde_json::json!({"topic": "input", "partition": p, "offset": o});
                e.deadletters
                    .insert(v["id"].as_str().unwrap().to_string(), v.to_string());
            }
            _ => {
                e.alerts
                    .insert(v["id"].as_str().unwrap().to_string(), line.to_string());
            }
        }
    }
    e
}

/// The key of a window record as the output topic has it.
pub fn window_key(v: &Value) -> String {
    let size = cxstream::ts::duration_label(v["window"]["size_seconds"].as_i64().unwrap() * 1000);
    format!(
        "{size}|{}|{}",
        v["window"]["start"].as_str().unwrap(),
        v["group"]
    )
}

/// Checks the output and dead-letter topics against replay (SPEC §7 "Re-emission"): the last
/// `kpi.window` per key equals replay's; alerts and dead letters equal as sets by id, each
/// equal to replay's record; every record seen more than once is byte-identical each time.
pub fn check_against(want: &Expected, output: &[Msg], deadletters: &[Msg]) {
    let mut windows: BTreeMap<String, String> = BTreeMap::new();
    let mut alerts: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut repeats = 0;
    for m in output.iter().chain(deadletters) {
        let v: Value = serde_json::from_str(&m.value).unwrap();
        let ident = match v["type"].as_str().unwrap() {
            "kpi.window" => {
                assert_eq!(m.key, window_key(&v), "window key");
                windows.insert(m.key.clone(), m.value.clone());
                format!("window {}", m.key)
            }
            _ => {
                let id = v["id"].as_str().expect("an id").to_string();
                alerts.insert(id.clone(), m.value.clone());
                id
            }
        };
        match seen.get(&ident) {
            Some(first) => {
                repeats += 1;
                if !m.value.contains("\"partial\":true") {
                    assert_eq!(first, &m.value, "{ident} re-emitted differently");
                }
            }
            None => {
                seen.insert(ident, m.value.clone());
            }
        }
    }
    let diff = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| -> Vec<String> {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .take(6)
            .map(|k| format!("{k}:\n  got  {:?}\n  want {:?}", a.get(k), b.get(k)))
            .collect()
    };
    let dw = diff(&windows, &want.windows);
    assert!(
        dw.is_empty(),
        "{} of {} windows differ from replay, e.g.\n{}",
        windows.len().abs_diff(want.windows.len()).max(dw.len()),
        want.windows.len(),
        dw.join("\n")
    );
    let mut want_alerts = want.alerts.clone();
    want_alerts.extend(want.deadletters.clone());
    let da = diff(&alerts, &want_alerts);
    if !da.is_empty() {
        // Which kinds are missing or extra: a diagnosis, not only examples.
        let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
        let mut extra: BTreeMap<&str, usize> = BTreeMap::new();
        for k in want_alerts.keys() {
            if !alerts.contains_key(k) {
                *missing
                    .entry(k.split('|').next().unwrap_or(""))
                    .or_default() += 1;
            }
        }
        for k in alerts.keys() {
            if !want_alerts.contains_key(k) {
                *extra.entry(k.split('|').next().unwrap_or("")).or_default() += 1;
            }
        }
        eprintln!("missing by type: {missing:?}; extra by type: {extra:?}");
    }
    assert!(
        da.is_empty(),
        "alerts or dead letters differ from replay ({} got, {} wanted), e.g.\n{}",
        alerts.len(),
        want_alerts.len(),
        da.join("\n")
    );
    eprintln!(
        "output equals replay: {} windows, {} alerts and dead letters, {repeats} records re-emitted byte-identically",
        windows.len(),
        alerts.len()
    );
}

/// Generated events 48 hours in the future (so that the live idle advance, which follows
/// the wall clock, never reaches them), then one sentinel per partition 100 days later that
/// closes every data window and fires every timer; for live runs compared with replay. The
/// config must allow events from the future (`input.max_future`).
pub fn future_lines(events: u64, seed: u64, partitions: i32) -> Vec<Line> {
    let hour = 3_600_000;
    let now = cxstream::replay::wall_clock_ms();
    let start = (now / hour + 48) * hour;
    let mut lines: Vec<Line> = Generator::new(GenerateOptions {
        events,
        seed,
        start_ms: start,
        customers: 300,
        tickets_per_hour: 600.0,
        invalid_ratio: 0.01,
        duplicate_ratio: 0.005,
        orphan_ratio: 0.005,
    })
    .map(|l| Line {
        bytes: l.line.into_bytes(),
        key: (!l.key.is_empty()).then_some(l.key),
    })
    .collect();
    let last = lines
        .iter()
        .filter_map(|l| cxstream::event::decode(&l.bytes).ok().map(|e| e.time))
        .max()
        .unwrap_or(start);
    let m = (last / hour + 1) * hour + 100 * 24 * hour;
    for p in 0..partitions {
        let key = (0..)
            .map(|i| format!("sentinel-{p}-{i}"))
            .find(|k| Partitioner::Crc32.partition(k.as_bytes(), partitions) == p)
            .unwrap();
        lines.push(Line {
            bytes: format!(
                r#"{{"id":"{key}","type":"survey.nps","time":"{}","customer":"{key}","score":8}}"#,
                cxstream::ts::format_ms(m)
            )
            .into_bytes(),
            key: Some(key),
        });
    }
    lines
}

/// `config` for live runs over [`future_lines`].
pub fn live_config(bootstrap: &str, group: &str) -> Config {
    let mut c = config(bootstrap, group);
    c.input.max_future = Dur(400 * 24 * 3_600_000);
    c
}

/// Commits offsets for `group` as another client would (e.g. an older cxstream).
pub fn commit_offsets(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// Windows merged over parts: a consumer of several instances' output sums every distinct
/// record of a window (parts keyed `…|<partition>`, complete records without suffix).
pub fn merged_counts(msgs: &[Msg]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut distinct: BTreeMap<&str, &str> = BTreeMap::new();
    for m in msgs {
        if m.value.contains("\"type\":\"kpi.window\"") {
            distinct.insert(&m.key, &m.value);
        }
    }
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for v in distinct.values() {
        let v: Value = serde_json::from_str(v).unwrap();
        if v["partial"] == Value::Bool(true) {
            continue;
        }
        let acc = out.entry(window_key(&v)).or_default();
        for (k, n) in super::counts(&v) {
            *acc.entry(k).or_default() += n;
        }
    }
    out
}

/// The group's committed offsets of `input` summed over its `n` partitions (−1 when they
/// cannot be read).
pub fn committed_sum(bootstrap: &str, group: &str, n: i32) -> i64 {
    committed_sums(bootstrap, group, n)()
}

/// Slows a process down from outside, whatever it does and whichever broker it talks to: a
/// thread stops it (SIGSTOP) for [`Throttle::OFF`] out of every [`Throttle::ON`] +
/// [`Throttle::OFF`], so it runs 6 % of the time, like a process on a much slower machine.
/// Dropping the throttle lets the process run on (SIGCONT); [`Throttle::halt`] leaves it
/// stopped, for a kill. End it before killing or reaping the process (and check for an exit
/// with [`exited`], which does not reap), so that no signal can reach a recycled pid.
pub struct Throttle {
    pid: libc::pid_t,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Throttle {
    pub const ON: Duration = Duration::from_millis(3);
    pub const OFF: Duration = Duration::from_millis(47);

    pub fn start(pid: u32) -> Throttle {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let pid = pid as libc::pid_t;
        let thread = std::thread::spawn(move || loop {
            // SAFETY: kill(2) with a pid and a signal number; no memory is shared.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            // Told to end: the process is left stopped.
            if flag.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Throttle::OFF);
            if flag.load(Ordering::Relaxed) {
                break;
            }
            unsafe { libc::kill(pid, libc::SIGCONT) };
            std::thread::sleep(Throttle::ON);
        });
        Throttle {
            pid,
            stop,
            thread: Some(thread),
        }
    }

    /// Ends the throttling with the process stopped, for a SIGKILL that it cannot run past.
    pub fn halt(mut self) {
        self.finish(false);
    }

    /// Ends the throttling; with `resume`, lets the process run on (SIGCONT).
    fn finish(&mut self, resume: bool) {
        let Some(t) = self.thread.take() else {
            return;
        };
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = t.join();
        if resume {
            // The pid is still the child's: it is reaped only after the throttle ends.
            unsafe { libc::kill(self.pid, libc::SIGCONT) };
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.finish(true);
    }
}

/// Whether the child has exited, without reaping it (`waitid` with `WNOWAIT`): its pid stays
/// its own until [`Proc::wait`] or [`Proc::kill`], so a [`Throttle`] cannot signal another
/// process.
fn exited(child: &Child) -> bool {
    // SAFETY: waitid(2) writes only into `info`, a zeroed siginfo_t owned here.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            child.id() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && info.si_pid() != 0
    }
}

/// Starts runs (`start(round)`) until `wanted` of them were SIGKILLed mid-run, then lets the
/// next one finish within `finish`; returns the kills, fewer than `wanted` when a run got
/// through its input before a commit of its own was seen.
///
/// Kill `k` (from 0) comes a few varying ms after the test sees the group's committed offsets
/// (`committed`, a sum) pass both everything committed before this run started and
/// `total · (k + 1) / (wanted + 2)` — so after a checkpoint of the run's own, spread over the
/// input (`total`: the sum of its end offsets) with two fifths left for the runs after the
/// last kill (a throttled run still got ~20,000 events past its restore before the test saw
/// its first commit), at a point the test does not choose. The runs to be killed
/// are [`Throttle`]d: at full speed a restored run gets through tens of thousands of events
/// between its start and the first commit the test can see (a CI run saw the first commit
/// of 60,000 disordered events at 52,181 and the second at the end: two kills, not three).
/// The last run goes at full speed.
pub fn runs_with_kills(
    label: &str,
    mut start: impl FnMut(usize) -> Proc,
    mut committed: impl FnMut() -> i64,
    total: i64,
    wanted: usize,
    finish: Duration,
) -> usize {
    let mut kills = 0;
    let mut last = committed();
    for round in 0.. {
        let mut p = start(round);
        if kills < wanted {
            let throttle = Throttle::start(p.child.id());
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = None;
            while Instant::now() < deadline {
                if exited(&p.child) {
                    break; // finished before a commit of its own was seen
                }
                let c = committed();
                let target = total * (kills as i64 + 1) / (wanted as i64 + 2);
                if c > last && c >= target {
                    std::thread::sleep(Duration::from_millis(13 * round as u64 % 50));
                    throttle.halt();
                    p.kill();
                    seen = Some(c);
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(c) = seen {
                kills += 1;
                // What the killed run committed after the commit seen: the next run's kill
                // must follow a commit of its own, not one of this run's.
                last = c.max(committed());
                eprintln!(
                    "{label}: round {round}: SIGKILL after a commit (offsets sum {c}; {last} once killed)"
                );
                continue;
            }
        }
        let (ok, text) = p.wait(finish);
        assert!(ok, "{label}: the final run failed:\n{text}");
        return kills;
    }
    unreachable!("the rounds never end")
}

/// [`committed_sum`] asked again and again through one client: a new client per question
/// takes long enough (its group coordinator found again each time) for a fast run to commit
/// its whole input between two questions.
pub fn committed_sums(bootstrap: &str, group: &str, n: i32) -> impl FnMut() -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    move || committed_sum_of(&c, n)
}

fn committed_sum_of(c: &BaseConsumer, n: i32) -> i64 {
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition("input", p);
    }
    c.committed_offsets(tpl, Duration::from_secs(10))
        .map(|t| {
            t.elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(-1)
}
