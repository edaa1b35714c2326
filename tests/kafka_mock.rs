//! The Kafka runtime against librdkafka's in-process mock cluster (GUIDE §3): bounded runs
//! equal replay, checkpoints survive restarts, crashes (a real child process SIGKILLed) and
//! rebalances, idle advances are history, broker errors lose nothing.

mod common;

use std::time::{Duration, Instant};

use common::kafka::*;
use cxstream::runtime::{RunOptions, Until};
use rdkafka::mocking::MockCluster;

fn init_log() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("CXSTREAM_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}

/// A mock cluster with the usual topics (the state topic of `group` too: the mock cluster
/// does not create topics through the admin API).
fn cluster(
    brokers: i32,
    input_partitions: i32,
    groups: &[&str],
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    init_log();
    let c = MockCluster::new(brokers).expect("mock cluster");
    c.create_topic("input", input_partitions, 1).unwrap();
    c.create_topic("output", 3, 1).unwrap();
    c.create_topic("deadletter", 1, 1).unwrap();
    for g in groups {
        c.create_topic(&format!("{g}.state"), input_partitions, 1)
            .unwrap();
    }
    c
}

fn bounded() -> RunOptions {
    RunOptions {
        until: Some(Until::HighWatermarks),
        from_committed: false,
    }
}

fn read_all(bs: &str, want: &Expected, timeout: Duration) -> (Vec<Msg>, Vec<Msg>) {
    let n_out = want.windows.len() + want.alerts.len();
    let out = read_until(bs, "output", timeout, |m| m.len() >= n_out);
    let dl = read_until(bs, "deadletter", timeout, |m| {
        m.len() >= want.deadletters.len()
    });
    (out, dl)
}

/// A bounded run (`run --until-end`) over 1 and 3 partitions: the output topic equals
/// `replay --partitions N` (complete windows, partial ones at the end, alerts, dead letters
/// with their offsets), and the state topic holds a checkpoint per partition.
#[test]
fn bounded_run_equals_replay_with_one_and_three_partitions() {
    for n in [1, 3] {
        let t0 = Instant::now();
        let group = format!("g-bounded-{n}");
        let mock = cluster(1, n, &[&group]);
        let bs = mock.bootstrap_servers();
        let cfg = config(&bs, &group);
        let lines = generated(3000, 7);
        let positions = produce(&bs, "input", &lines);
        let want = expected(&cfg, &lines, n, &positions);
        let run = Running::start(cfg.clone(), bounded());
        let summary = run.join().expect("bounded run");
        assert_eq!(summary.events as usize, lines.len());
        assert!(summary.checkpoints >= n as u64, "{summary:?}");
        // Again: the end-of-input jump was not checkpointed (SPEC §2), so the second run
        // restores the real position, has nothing to read, and emits the partial windows
        // again, byte-identical.
        let again = Running::start(cfg.clone(), bounded())
            .join()
            .expect("second run");
        assert_eq!(again.events, 0, "{again:?}");
        let (out, dl) = read_all(&bs, &want, Duration::from_secs(30));
        assert!(
            out.iter()
                .filter(|m| m.value.contains("\"partial\":true"))
                .count()
                >= 2 * want
                    .windows
                    .values()
                    .filter(|w| w.contains("\"partial\":true"))
                    .count(),
            "partial windows emitted by both runs"
        );
        check_against(&want, &out, &dl);
        eprintln!("bounded run over {n} partition(s): {:?}", t0.elapsed());
    }
}

/// The group's committed offsets summed over the input partitions (−1 when none).
fn committed_sum(bs: &str, group: &str, n: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let c: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition("input", p);
    }
    match c.committed_offsets(tpl, Duration::from_secs(5)) {
        Ok(t) => t
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum(),
        Err(_) => -1,
    }
}

/// A real `cxstream run --until-end` process, SIGKILLed three times mid-run (each time after
/// it committed a checkpoint) and restarted: the output equals an uninterrupted replay, and
/// every record emitted again is byte-identical to its first emission (SPEC §7).
#[test]
fn sigkilled_process_restarts_from_its_checkpoints() {
    let n = 3;
    let group = "g-sigkill";
    let mock = cluster(1, n, &[group]);
    let bs = mock.bootstrap_servers();
    let mut cfg = config(&bs, group);
    cfg.kafka.checkpoint_interval = cxstream::config::Dur(200);
    let lines = disordered(&generated(40_000, 5), 20_000, 5);
    let positions = produce(&bs, "input", &lines);
    let want = expected(&cfg, &lines, n, &positions);
    let dir = tempfile::tempdir().unwrap();
    let cfg_file = dir.path().join("cxstream.toml");
    write_config(&cfg, &cfg_file);
    let mut kills = 0;
    let mut last = committed_sum(&bs, group, n);
    for round in 0..10 {
        let mut p = Proc::start(
            &cfg_file,
            &["run", "--until-end"],
            &dir.path().join(format!("run{round}.log")),
        );
        if kills < 3 {
            // Kill it once it has committed a new checkpoint (and a little later).
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut killed = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break; // finished before we could kill it
                }
                let c = committed_sum(&bs, group, n);
                if c > last {
                    last = c;
                    std::thread::sleep(Duration::from_millis(50 + 97 * round as u64 % 300));
                    p.kill();
                    killed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if killed {
                kills += 1;
                eprintln!("round {round}: SIGKILL after commit (offsets sum {last})");
                continue;
            }
        }
        let (ok, log) = p.wait(Duration::from_secs(120));
        assert!(ok, "the final run failed:\n{log}");
        break;
    }
    assert_eq!(kills, 3, "three kills mid-run");
    let (out, dl) = read_all(&bs, &want, Duration::from_secs(60));
    check_against(&want, &out, &dl);
}
