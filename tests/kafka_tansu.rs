//! End to end against a real broker process (Tansu, GUIDE §5) with an independent client
//! (Python confluent-kafka, `tests/e2e/kclient.py`), SPEC §7: the client produces about 150k
//! generated events (invalid, duplicate and orphan lines among them) to a 3-partition input
//! topic, keyed by customer; a real `cxstream run --until-end` process is SIGKILLed at least
//! three times mid-run, each time after it committed a checkpoint, and restarted; the client
//! then reads the output and dead-letter topics, which must equal `replay --partitions 3` of
//! the same file — the last `kpi.window` per key, alerts, signals and dead letters as sets by
//! `id` — with every repeated record byte-identical to its first emission. The same runs on a
//! file with 90 s of disorder (over half the events late against 30 s of lateness).
//!
//! The ordered scenario's event count is `CXSTREAM_TANSU_EVENTS` (default 150,000); the
//! 1M-event run of issue 9 (docs/benchmarks.md) is
//! `CXSTREAM_TANSU_EVENTS=1000000 cargo test --release --test kafka_tansu -- --nocapture`.
//!
//! `CXSTREAM_TANSU_KEEP=1` keeps each scenario's directory (input, configs, run logs).
//!
//! Skips loudly when tansu or python with confluent_kafka is missing, unless
//! CXSTREAM_REQUIRE_EXTERNAL=1 (CI), where that is a failure.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::external::{find_python, find_tansu, skip};
use common::kafka::*;
use cxstream::config::Dur;
use serde_json::Value;

const PARTITIONS: i32 = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
        let bootstrap = String::from_utf8(out.stdout).unwrap().trim().to_string();
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
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Reads a whole topic from the beginning with the independent client (until 5 s without
    /// a message: never from the high watermark, which Tansu gets wrong).
    fn consume(&self, topic: &str) -> Vec<Msg> {
        self.kclient(&[
            "consume",
            "--topic",
            topic,
            "--idle",
            "5",
            "--timeout",
            "600",
        ])
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Msg {
                key: v["key"].as_str().unwrap_or_default().to_string(),
                value: v["value"].as_str().unwrap_or_default().to_string(),
                partition: v["partition"].as_i64().unwrap() as i32,
                offset: v["offset"].as_i64().unwrap(),
            }
        })
        .collect()
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

/// The Kafka position of each line of the file, learnt by reading the input topic back:
/// within a partition the messages are in file order.
fn positions(lines: &[Line], input: &[Msg]) -> Vec<(i32, i64)> {
    let mut queues: BTreeMap<i32, VecDeque<&Msg>> = BTreeMap::new();
    let mut sorted: Vec<&Msg> = input.iter().collect();
    sorted.sort_by_key(|m| (m.partition, m.offset));
    for m in sorted {
        queues.entry(m.partition).or_default().push_back(m);
    }
    lines
        .iter()
        .map(|l| {
            let text = String::from_utf8_lossy(&l.bytes);
            let p = queues
                .iter()
                .find(|(_, q)| q.front().is_some_and(|m| m.value == text))
                .map(|(p, _)| *p)
                .unwrap_or_else(|| panic!("line not found in the input topic: {text}"));
            let m = queues.get_mut(&p).unwrap().pop_front().unwrap();
            (m.partition, m.offset)
        })
        .collect()
}

/// One scenario: produce, run with three SIGKILLs, compare with replay.
fn scenario(python: &Path, tansu: &Path, name: &str, lines: Vec<Line>) {
    let t0 = Instant::now();
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var_os("CXSTREAM_TANSU_KEEP").is_some() {
        // Keep the logs and files of the runs for a post-mortem.
        dir.disable_cleanup(true);
        eprintln!("{name}: keeping {}", dir.path().display());
    }
    let group = format!("cxstream-{name}");
    let topics = format!("input:{PARTITIONS},output:3,deadletter:1,{group}.state:{PARTITIONS}");
    let broker = Broker::start(python, tansu, dir.path(), &topics);
    let file = dir.path().join("input.jsonl");
    std::fs::write(&file, jsonl(&lines)).unwrap();
    let produced = broker.kclient(&[
        "produce",
        "--topic",
        "input",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(produced, vec![format!("{{\"produced\": {}}}", lines.len())]);
    let input = broker.consume("input");
    assert_eq!(input.len(), lines.len(), "the input topic holds every line");
    let positions = positions(&lines, &input);
    eprintln!(
        "{name}: produced {} lines ({:?})",
        lines.len(),
        t0.elapsed()
    );

    let mut cfg = config(&broker.bootstrap, &group);
    // Frequent checkpoints: the first commit comes early in a run, so that each kill lands
    // mid-run even when the engine gets through the input in a few seconds.
    cfg.kafka.checkpoint_interval = Dur(100);
    // Generated files start on 2026-11-22 and a 1M-event one runs ~10 days, past the wall
    // clock: the run judges "from the future" by record timestamps, the expectation by the
    // wall clock when it is computed, so the two would disagree near the boundary.
    cfg.input.max_future = Dur(3650 * 86_400_000);
    let want = expected(&cfg, &lines, PARTITIONS, &positions);
    let cfg_file = dir.path().join("cxstream.toml");
    write_config(&cfg, &cfg_file);
    // Tansu's high watermark can lag after heavy produce: stop at the offsets read back.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for m in &input {
        let e = ends.entry(m.partition).or_default();
        *e = (*e).max(m.offset + 1);
    }
    let until: Vec<String> = ends.iter().map(|(p, o)| format!("input:{p}={o}")).collect();
    let until = until.join(",");
    let args = ["run", "--until-offsets", until.as_str()];
    let start = |round: usize| {
        let log = dir.path().join(format!("run{round}.log"));
        Proc::start(&cfg_file, &args, &log)
    };
    let committed = committed_sums(&broker.bootstrap, &group, PARTITIONS);
    let total = ends.values().sum();
    let kills = runs_with_kills(name, start, committed, total, 3, Duration::from_secs(300));
    eprintln!("{name}: {kills} kills ({:?})", t0.elapsed());
    assert!(
        kills >= 3,
        "{name}: at least three kills mid-run, got {kills}"
    );
    let out = broker.consume("output");
    let dl = broker.consume("deadletter");
    eprintln!(
        "{name}: read {} records and {} dead letters ({:?})",
        out.len(),
        dl.len(),
        t0.elapsed()
    );
    check_against(&want, &out, &dl);
}

/// Events of the ordered scenario: `CXSTREAM_TANSU_EVENTS`, default 150,000.
fn ordered_events() -> u64 {
    match std::env::var("CXSTREAM_TANSU_EVENTS") {
        Err(_) => 150_000,
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("CXSTREAM_TANSU_EVENTS={v:?} is not a number of events")),
    }
}

#[test]
fn sigkilled_run_on_a_real_broker_equals_replay() {
    let (Some(python), Some(tansu)) = (find_python(), find_tansu()) else {
        skip("kafka_tansu", "tansu or python3 with confluent_kafka not found (set CXSTREAM_TANSU / CXSTREAM_PYTHON, or run scripts/install-test-deps.sh)");
        return;
    };
    scenario(&python, &tansu, "ordered", generated(ordered_events(), 42));
    scenario(
        &python,
        &tansu,
        "disordered",
        disordered(&generated(60_000, 43), 90_000, 43),
    );
}
