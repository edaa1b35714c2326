//! Several `cxstream run` instances in one consumer group against a real broker (Tansu,
//! GUIDE §5), with the independent Python client (`tests/e2e/kclient.py`): SPEC §7 "Several
//! instances", issue 11.
//!
//! - [`several_instances_on_a_real_broker_publish_complete_windows`]: about 150k generated
//!   events on 6 input partitions, produced in three stages so that every phase has input to
//!   process: two bounded `run --until-offsets` processes share the first stage; with the
//!   second, a third joins; with the third, once the committed offsets move, one is
//!   SIGKILLed and started again; then all but one are stopped with SIGTERM, one at a time,
//!   and the last one, owning every partition, runs to the end offsets, flushes the partial
//!   windows through the merge step and exits 0. The output topic, read by the Python client,
//!   must hold complete windows only (no part keys `…|<partition>`) whose last record per key
//!   equals `replay --partitions 6` of the same lines, with alerts and dead letters equal as
//!   sets by `id`; the processes' logs must show at least two of them owning input partitions
//!   at the same time; cxstream creates the parts topic. The phases are gated on the committed
//!   offsets and on who owns what (from the logs), never on time. (Bounded runs never advance
//!   watermarks by the wall clock, so their output is comparable with replay.)
//! - [`compose_layout_runs_as_processes`]: every cxstream service of docker-compose.yml run as
//!   a plain process with its own configuration and environment (bootstrap servers pointed at
//!   the test broker, a metrics port of its own) against the topics `kafka-init` creates; both
//!   become ready, the output topic receives `kpi.window` records, the parts-topic partitions
//!   are spread over the processes (`cxstream_merge_partitions_owned` adds up to the parts
//!   topic's partition count), and SIGTERM stops each with exit status 0.
//!
//! Event count of the first test: `CXSTREAM_SCALE_EVENTS` (default 150,000).
//! `CXSTREAM_TANSU_KEEP=1` keeps each test's directory (input, configuration, process logs);
//! `CXSTREAM_SCALE_DEBUG=1` adds librdkafka's consumer-group protocol (`debug=cgrp`) to the
//! first test's process logs.
//!
//! Skips loudly when tansu or python with confluent_kafka is missing, unless
//! CXSTREAM_REQUIRE_EXTERNAL=1 (CI), where that is a failure.

mod common;
#[path = "common/compose.rs"]
mod compose;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::external::{find_python, find_tansu, http_get, skip};
use common::kafka::*;
use cxstream::config::Dur;
use cxstream::generate::{GenerateOptions, Generator};
use serde_json::Value;

const PARTITIONS: i32 = 6;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Python and Tansu, or `None` after [`skip`].
fn externals() -> Option<(PathBuf, PathBuf)> {
    match (find_python(), find_tansu()) {
        (Some(p), Some(t)) => Some((p, t)),
        _ => {
            skip("scale_out", "tansu or python3 with confluent_kafka not found (set CXSTREAM_TANSU / CXSTREAM_PYTHON, or run scripts/install-test-deps.sh)");
            None
        }
    }
}

/// A test directory, kept with `CXSTREAM_TANSU_KEEP`.
fn test_dir(name: &str) -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CXSTREAM_TANSU_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("{name}: keeping {}", dir.path().display());
    }
    dir
}

/// The broker started by tests/e2e/tansu.py; stopped on drop, whatever happens.
struct Broker {
    python: PathBuf,
    tansu: PathBuf,
    pidfile: PathBuf,
    bootstrap: String,
}

impl Broker {
    fn start(python: &Path, tansu: &Path, dir: &Path, topics: &str) -> Broker {
        let pidfile = dir.join("tansu.pid");
        let out = Command::new(python)
            .arg(root().join("tests/e2e/tansu.py"))
            .args(["start", "--pidfile"])
            .arg(&pidfile)
            .args(["--topics", topics])
            .env("CXSTREAM_TANSU", tansu)
            .stderr(Stdio::inherit())
            .output()
            .expect("run tansu.py start");
        assert!(out.status.success(), "tansu.py start failed");
        let bootstrap = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            bootstrap.starts_with("127.0.0.1:"),
            "bootstrap {bootstrap:?}"
        );
        Broker {
            python: python.to_path_buf(),
            tansu: tansu.to_path_buf(),
            pidfile,
            bootstrap,
        }
    }

    /// Runs kclient.py with these arguments; returns its stdout lines.
    fn kclient(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new(&self.python)
            .arg(root().join("tests/e2e/kclient.py"))
            .args(args)
            .args(["--bootstrap", &self.bootstrap])
            .stderr(Stdio::inherit())
            .output()
            .expect("run kclient.py");
        assert!(
            out.status.success(),
            "kclient.py {args:?} exited with {:?}",
            out.status.code()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Produces a JSON Lines file, keyed by customer; checks every line was delivered.
    fn produce(&self, topic: &str, file: &Path, lines: usize) {
        let file = file.to_str().expect("a UTF-8 path");
        let produced = self.kclient(&["produce", "--topic", topic, "--file", file]);
        assert_eq!(produced, vec![format!("{{\"produced\": {lines}}}")]);
    }

    /// Reads a whole topic from the beginning with the independent client (until `idle` s
    /// without a message: never from the high watermark, which Tansu gets wrong).
    fn consume(&self, topic: &str, idle: u32) -> Vec<Msg> {
        let idle = idle.to_string();
        self.kclient(&[
            "consume",
            "--topic",
            topic,
            "--idle",
            &idle,
            "--timeout",
            "600",
        ])
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("kclient prints JSON");
            Msg {
                key: v["key"].as_str().unwrap_or_default().to_string(),
                value: v["value"].as_str().unwrap_or_default().to_string(),
                partition: v["partition"].as_i64().unwrap_or(-1) as i32,
                offset: v["offset"].as_i64().unwrap_or(-1),
            }
        })
        .collect()
    }

    /// The partition count of a topic, from the broker's metadata (`None` if it has none).
    fn partitions(&self, topic: &str) -> Option<usize> {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .ok()?;
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(&self.python)
            .arg(root().join("tests/e2e/tansu.py"))
            .args(["stop", "--pidfile"])
            .arg(&self.pidfile)
            .env("CXSTREAM_TANSU", &self.tansu)
            .status();
    }
}

/// The Kafka position of each line, learnt by reading the input topic back: the copies of a
/// text take its positions in offset order. Keyed copies share a partition, where the
/// messages are in file order; unkeyed copies (invalid lines, repeated by the generator's
/// duplicates) may land anywhere, and which of them takes which position changes nothing:
/// they only become dead letters, identified by text and position.
fn positions(lines: &[Line], input: &[Msg]) -> Vec<(i32, i64)> {
    let mut at: BTreeMap<&str, VecDeque<(i32, i64)>> = BTreeMap::new();
    let mut sorted: Vec<&Msg> = input.iter().collect();
    sorted.sort_by_key(|m| (m.partition, m.offset));
    for m in sorted {
        at.entry(&m.value)
            .or_default()
            .push_back((m.partition, m.offset));
    }
    lines
        .iter()
        .map(|l| {
            let text = String::from_utf8_lossy(&l.bytes);
            at.get_mut(text.as_ref())
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| panic!("line not found in the input topic: {text}"))
        })
        .collect()
}

/// A log line without its ANSI colours.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The numbers in `s` (partition lists such as `[("input", 3), ("input", 4)]` or `[0, 2]`).
fn numbers(s: &str) -> BTreeSet<i32> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The input partitions and the parts-topic partitions a process owns by its log so far
/// (`partitions assigned assigned=…`, `partitions revoked … remaining=…`, and the merge
/// step's `parts-topic partitions assigned/revoked partitions=…`).
fn owned(log: &str) -> (BTreeSet<i32>, BTreeSet<i32>) {
    let (mut input, mut parts) = (BTreeSet::new(), BTreeSet::new());
    for line in log.lines().map(plain) {
        if let Some((_, a)) = line.split_once("partitions assigned assigned=") {
            input.extend(numbers(a));
        } else if let Some((_, r)) = line.split_once(" remaining=") {
            if line.contains("partitions revoked") {
                input = numbers(r);
            }
        } else if let Some((_, a)) = line.split_once("parts-topic partitions assigned partitions=")
        {
            parts.extend(numbers(a));
        } else if let Some((_, r)) = line.split_once("parts-topic partitions revoked partitions=") {
            parts.retain(|q| !numbers(r).contains(q));
        }
    }
    (input, parts)
}

/// One `cxstream run` process of the first test.
struct Instance {
    name: String,
    proc: Proc,
}

/// Who owns what among the live instances, by their logs: (name, input partitions,
/// parts-topic partitions).
type Owners = Vec<(String, BTreeSet<i32>, BTreeSet<i32>)>;

fn owners(live: &[Instance]) -> Owners {
    live.iter()
        .map(|i| {
            let (a, b) = owned(&i.proc.log_text());
            (i.name.clone(), a, b)
        })
        .collect()
}

/// Whether the live instances own every input and every parts-topic partition: the group is
/// stable and without the dead.
fn covered(o: &Owners) -> bool {
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();
    let input: BTreeSet<i32> = o.iter().flat_map(|(_, a, _)| a.iter().copied()).collect();
    let parts: BTreeSet<i32> = o.iter().flat_map(|(_, _, b)| b.iter().copied()).collect();
    input == all && parts == all
}

/// What the test saw of the instances' ownership, sampled while it waits.
#[derive(Default)]
struct Seen {
    /// Most instances owning input partitions at one time, and who owned what then.
    most: usize,
    most_at: String,
    /// Most instances owning parts-topic partitions at one time.
    most_merge: usize,
}

impl Seen {
    fn record(&mut self, owners: &Owners) {
        let n = owners.iter().filter(|(_, a, _)| !a.is_empty()).count();
        if n > self.most {
            self.most = n;
            self.most_at = owners
                .iter()
                .map(|(name, a, b)| format!("{name}: input {a:?}, parts {b:?}"))
                .collect::<Vec<_>>()
                .join("; ");
        }
        let m = owners.iter().filter(|(_, _, b)| !b.is_empty()).count();
        self.most_merge = self.most_merge.max(m);
    }
}

/// The key kclient.py gives a line (its JSON `customer` string), if the client's default
/// partitioner hashes it (librdkafka's `consistent_random`: an empty key goes anywhere).
fn kclient_key(l: &Line) -> Option<String> {
    let v: Value = serde_json::from_slice(&l.bytes).ok()?;
    let k = v.get("customer")?.as_str()?;
    (!k.is_empty()).then(|| k.to_string())
}

#[test]
fn several_instances_on_a_real_broker_publish_complete_windows() {
    let Some((python, tansu)) = externals() else {
        return;
    };
    let name = "scale-out";
    let t0 = Instant::now();
    let dir = test_dir(name);
    let group = "cxstream-scale";
    // The parts topic (`output.parts`) is left to cxstream: created if missing (SPEC §7).
    let topics =
        format!("input:{PARTITIONS},output:{PARTITIONS},deadletter:1,{group}.state:{PARTITIONS}");
    let broker = Broker::start(&python, &tansu, dir.path(), &topics);

    // The input goes to the broker in three stages, one per phase, so that instances join,
    // die and leave while there is input to process. The bounded runs need the end offsets
    // from the start: a keyed line's partition is known (CRC-32 of the key, the client's
    // default partitioner), an unkeyed line's is random, so the unkeyed lines (a few invalid
    // ones) come first, in the first stage, which is read back before the runs start.
    let generated = generated(scale_events(), 47);
    let (mut lines, keyed): (Vec<Line>, Vec<Line>) = generated
        .into_iter()
        .partition(|l| kclient_key(l).is_none());
    let unkeyed = lines.len();
    lines.extend(keyed);
    let third = (lines.len() - unkeyed) / 3;
    let stages = [
        0..unkeyed + third,
        unkeyed + third..unkeyed + 2 * third,
        unkeyed + 2 * third..lines.len(),
    ];
    let produce_stage = |i: usize| {
        let file = dir.path().join(format!("stage{}.jsonl", i + 1));
        let part = &lines[stages[i].clone()];
        std::fs::write(&file, jsonl(part)).unwrap();
        broker.produce("input", &file, part.len());
        eprintln!(
            "{name}: produced stage {} ({} lines, {:?})",
            i + 1,
            part.len(),
            t0.elapsed()
        );
    };
    produce_stage(0);
    let first = broker.consume("input", 3);
    assert_eq!(
        first.len(),
        stages[0].len(),
        "the input topic holds stage 1"
    );
    let mut ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    for m in &first {
        *ends.entry(m.partition).or_default() += 1;
    }
    for l in &lines[stages[0].end..] {
        let key = kclient_key(l).unwrap_or_default();
        let p = cxstream::source::Partitioner::Crc32.partition(key.as_bytes(), PARTITIONS);
        *ends.entry(p).or_default() += 1;
    }
    let total: i64 = ends.values().sum();
    assert_eq!(total, lines.len() as i64);

    let mut cfg = config(&broker.bootstrap, group);
    cfg.kafka.checkpoint_interval = Dur(300);
    // Generated files start on 2026-11-22: judge "from the future" the same way in the run
    // (record timestamps) and in the expectation (the wall clock) by allowing any future.
    cfg.input.max_future = Dur(3650 * 86_400_000);
    // CXSTREAM_SCALE_DEBUG=1: librdkafka's consumer group protocol in the logs.
    let debug = std::env::var_os("CXSTREAM_SCALE_DEBUG").is_some();
    let mut run_cfg = cfg.clone();
    if debug {
        let k = &mut run_cfg.kafka.librdkafka;
        k.insert("debug".into(), "cgrp".into());
        k.insert("log_level".into(), "7".into());
    }
    let log_filter = if debug {
        "info,cxstream::runtime::merger=debug,cxstream::logs=trace,librdkafka=trace"
    } else {
        "info,cxstream::runtime::merger=debug"
    };
    let cfg_file = dir.path().join("cxstream.toml");
    write_config(&run_cfg, &cfg_file);
    let until: Vec<String> = ends.iter().map(|(p, o)| format!("input:{p}={o}")).collect();
    let until = until.join(",");
    let start = |who: &str| Instance {
        name: who.to_string(),
        proc: Proc::start(
            &cfg_file,
            &[
                "--log",
                log_filter,
                "run",
                "--until-offsets",
                until.as_str(),
            ],
            &dir.path().join(format!("{who}.log")),
        ),
    };
    let mut seen = Seen::default();
    // Waits, sampling who owns what, until `done(committed offsets, owners)`; panics if an
    // instance exits meanwhile.
    let mut wait = |live: &mut Vec<Instance>, what: &str, done: &dyn Fn(i64, &Owners) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            for i in live.iter_mut() {
                if let Ok(Some(st)) = i.proc.child.try_wait() {
                    panic!(
                        "{name}: {} exited ({st}) during {what}:\n{}",
                        i.name,
                        i.proc.log_text()
                    );
                }
            }
            let o = owners(live);
            seen.record(&o);
            let c = committed_sum(&broker.bootstrap, group, PARTITIONS);
            if done(c, &o) {
                eprintln!(
                    "{name}: {what}: committed offsets {c} of {total} ({:?})",
                    t0.elapsed()
                );
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: stuck in {what} (committed offsets {c}; owners {o:?})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The committed offsets passed `after` (or reached the end) and `who` owns input
    // partitions.
    let progress = |after: i64, who: &'static str| {
        move |c: i64, o: &Owners| {
            (c > after || c >= total) && o.iter().any(|(n, a, _)| n == who && !a.is_empty())
        }
    };

    // Two instances share the six partitions.
    let mut live = vec![start("a"), start("b")];
    let c1 = wait(&mut live, "two instances", &progress(0, "b"));
    // More input, and a third instance joins while it is processed.
    produce_stage(1);
    live.push(start("c"));
    let c2 = wait(&mut live, "a third joined", &progress(c1, "c"));
    // The last input; once the offsets move, one instance is SIGKILLed (no checkpoint, no
    // goodbye) and started again.
    produce_stage(2);
    let c3 = wait(&mut live, "the last stage", &progress(c2, "c"));
    let mut a = live.remove(0);
    a.proc.kill();
    eprintln!("{name}: SIGKILLed {} ({:?})", a.name, t0.elapsed());
    live.push(start("a2"));
    wait(&mut live, "after the SIGKILL", &progress(c3, "a2"));
    // All but one stop gracefully, one at a time, each once the live instances own every
    // partition: the killed one has left the groups (its session expired) and no rebalance
    // is in progress. (Tansu 0.6 can elect a member that has just left as the leader of a
    // rebalance that is in progress, then answers every SyncGroup with "rebalance in
    // progress", for minutes: not what this test is about.)
    while live.len() > 1 {
        wait(&mut live, "a stable group", &|_, o| covered(o));
        let mut i = live.remove(0);
        i.proc.terminate();
        let (ok, text) = i.proc.wait(Duration::from_secs(120));
        assert!(ok, "{name}: {} did not exit 0 on SIGTERM:\n{text}", i.name);
        eprintln!(
            "{name}: {} stopped with SIGTERM ({:?})",
            i.name,
            t0.elapsed()
        );
    }
    // The last one owns every partition, reaches the end offsets, flushes the partial
    // windows through the merge step and exits 0.
    let mut last = live.pop().expect("an instance");
    let (ok, text) = last.proc.wait(Duration::from_secs(300));
    assert!(ok, "{name}: the last instance failed:\n{text}");
    eprintln!(
        "{name}: {} ran to the end and exited 0 ({:?})",
        last.name,
        t0.elapsed()
    );
    eprintln!(
        "{name}: at most {} instances owned input partitions at once ({}); at most {} owned \
         parts-topic partitions at once",
        seen.most, seen.most_at, seen.most_merge
    );
    assert!(
        seen.most >= 2,
        "{name}: never saw two instances owning input partitions at the same time"
    );
    assert_eq!(
        broker.partitions("output.parts"),
        Some(PARTITIONS as usize),
        "{name}: cxstream creates the parts topic with the input's partition count"
    );

    // The input as the broker holds it: each line's position, and the ends predicted above.
    let input = broker.consume("input", 3);
    assert_eq!(input.len(), lines.len(), "the input topic holds every line");
    let positions = positions(&lines, &input);
    let mut actual: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    for m in &input {
        let e = actual.entry(m.partition).or_default();
        *e = (*e).max(m.offset + 1);
    }
    assert_eq!(actual, ends, "{name}: the end offsets the runs were given");
    let want = expected(&cfg, &lines, PARTITIONS, &positions);
    let out = broker.consume("output", 5);
    let dl = broker.consume("deadletter", 3);
    eprintln!(
        "{name}: read {} records and {} dead letters ({:?})",
        out.len(),
        dl.len(),
        t0.elapsed()
    );
    // Complete windows only: a part would be keyed `<size>|<start>|<group>|<partition>`.
    let parts: Vec<&Msg> = out
        .iter()
        .filter(|m| m.value.contains("\"type\":\"kpi.window\""))
        .filter(|m| {
            let group = m.key.splitn(3, '|').nth(2).unwrap_or_default();
            !serde_json::from_str::<Value>(group).is_ok_and(|g| g.is_object())
        })
        .take(3)
        .collect();
    assert!(
        parts.is_empty(),
        "{name}: the output topic holds window parts, e.g. {parts:?}"
    );
    check_against(&want, &out, &dl);
    eprintln!("{name}: done ({:?})", t0.elapsed());
}

/// Events of the first test: `CXSTREAM_SCALE_EVENTS`, default 150,000.
fn scale_events() -> u64 {
    match std::env::var("CXSTREAM_SCALE_EVENTS") {
        Err(_) => 150_000,
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("CXSTREAM_SCALE_EVENTS={v:?} is not a number of events")),
    }
}

// ------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The value of an unlabelled sample in a Prometheus text exposition.
fn sample(body: &str, metric: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(metric)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn compose_layout_runs_as_processes() {
    let Some((python, tansu)) = externals() else {
        return;
    };
    let name = "compose";
    let t0 = Instant::now();
    let dir = test_dir(name);
    let services = compose::cxstream_services();
    assert!(services.len() >= 2, "docker-compose.yml: two replicas");
    // The topics kafka-init creates, with their partition counts (Tansu takes no topic
    // configs: retention and cleanup policy are the layout test's business).
    let topics: Vec<String> = compose::created_topics()
        .iter()
        .map(|(t, c)| format!("{t}:{}", c.partitions.unwrap_or(1)))
        .collect();
    let broker = Broker::start(&python, &tansu, dir.path(), &topics.join(","));
    let cfg = services[0].config();
    let (input_topic, output_topic) = (&cfg.kafka.input_topics[0], &cfg.kafka.output_topic);
    let parts_topic = cfg.kafka.parts_topic();
    // Events of two days ago (the default `input.max_future` of 1 h judges them by the
    // broker's timestamps, so not in the future of the wall clock).
    let hour = 3_600_000;
    let start_ms = (cxstream::replay::wall_clock_ms() / hour - 48) * hour;
    let text: String = Generator::new(GenerateOptions {
        events: 20_000,
        seed: 11,
        start_ms,
        customers: 300,
        ..GenerateOptions::default()
    })
    .map(|l| l.line + "\n")
    .collect();
    let file = dir.path().join("input.jsonl");
    std::fs::write(&file, &text).unwrap();
    broker.produce(input_topic, &file, text.lines().count());
    eprintln!("{name}: produced 20000 events ({:?})", t0.elapsed());

    // Each service as a process: its arguments and environment, the test broker, a metrics
    // port of its own; none of this process's CXSTREAM_* variables.
    let mut procs: Vec<(String, String, Proc)> = Vec::new();
    for s in &services {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = dir.path().join(format!("{}.log", s.name));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxstream"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CXSTREAM_") {
                cmd.env_remove(&k);
            }
        }
        let child = cmd
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .env("CXSTREAM_KAFKA__BOOTSTRAP_SERVERS", &broker.bootstrap)
            .args(s.args_with_metrics_listen(&listen))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start cxstream");
        procs.push((s.name.clone(), listen, Proc { child, log }));
    }
    let metric = "cxstream_merge_partitions_owned";
    let parts_n = broker.partitions(&parts_topic).expect("the parts topic");
    let deadline = Instant::now() + Duration::from_secs(60);
    let owned = loop {
        for (n, _, p) in &mut procs {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("{name}: {n} exited ({st}):\n{}", p.log_text());
            }
        }
        let ready = procs.iter().all(|(_, l, _)| {
            http_get(l, "/readyz", Duration::from_secs(10)).is_ok_and(|(st, _)| st == 200)
        });
        let owned: Vec<Option<f64>> = procs
            .iter()
            .map(|(_, l, _)| {
                http_get(l, "/metrics", Duration::from_secs(10))
                    .ok()
                    .and_then(|(_, b)| sample(&b, metric))
            })
            .collect();
        let spread = owned.iter().all(|o| o.is_some_and(|v| v > 0.0))
            && owned.iter().flatten().sum::<f64>() == parts_n as f64;
        if ready && spread {
            break owned;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not ready ({ready}) or {metric} {owned:?} does not add up to {parts_n}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "{name}: both ready, {metric} {owned:?} of {parts_n} ({:?})",
        t0.elapsed()
    );
    let windows = read_until(
        &broker.bootstrap,
        output_topic,
        Duration::from_secs(30),
        |m| {
            m.iter()
                .any(|m| m.value.contains("\"type\":\"kpi.window\""))
        },
    );
    let n = windows
        .iter()
        .filter(|m| m.value.contains("\"type\":\"kpi.window\""))
        .count();
    assert!(n > 0, "{name}: no kpi.window record in {output_topic}");
    eprintln!(
        "{name}: {n} kpi.window records in {output_topic} ({:?})",
        t0.elapsed()
    );
    for (_, _, p) in &procs {
        p.terminate();
    }
    for (n, _, p) in &mut procs {
        let (ok, text) = p.wait(Duration::from_secs(30));
        assert!(ok, "{name}: {n} did not exit 0 on SIGTERM:\n{text}");
        // Idle advances in flight are settled first: every partition gets its final
        // checkpoint.
        assert!(
            !text.contains("final checkpoint incomplete"),
            "{name}: {n} stopped without a final checkpoint:\n{text}"
        );
    }
    eprintln!("{name}: stopped with SIGTERM, exit 0 ({:?})", t0.elapsed());
}
