//! `state_size --soak-shape`: `scripts/soak.py`'s stream through the engine as `run` would
//! drive it (6 partitions, the Prometheus observer, a checkpoint of every partition every 10 s
//! of input), without Kafka, sampled every 10 s of input.

use std::sync::Arc;

use cxstream::config::Config;
use cxstream::engine::{CheckpointMeta, Disposition, Engine};
use cxstream::event::SourcePos;
use cxstream::metrics::Metrics;
use cxstream::source::{self, Admission, Partitioner, Route};

use crate::mem;

/// The engine part of the configuration `scripts/soak.py` writes (keep in step with it).
pub const SOAK_CONFIG: &str = r#"
[engine]
windows = ["1m", "5m"]
allowed_lateness = "30s"
dedup_horizon = "2m"
ticket_retention_solved = "5m"
ticket_retention_open = "10m"
customer_retention = "10m"
[sla.first_response]
urgent = "1m"
high = "2m"
normal = "5m"
low = "10m"
[sla.resolution]
urgent = "5m"
high = "10m"
normal = "15m"
low = "20m"
[signals]
half_life = "5m"
cooldown = "5m"
repeat_contact_window = "5m"
effectiveness_horizon = "10m"
recovery_due = "5m"
repurchase_horizon = "10m"
[input]
max_future = "3650d"
"#;

/// The `customer` field of a generated line (the generator writes it as `"customer":"…"`).
fn customer_of(line: &[u8]) -> Option<&[u8]> {
    const FIELD: &[u8] = b"\"customer\":\"";
    let at = line.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = line[at..].iter().position(|&b| b == b'"')?;
    Some(&line[at..at + len])
}

/// Event ids in the engine's dedup memory, counted per partition and second of event time.
struct Dedup {
    horizon: i64,
    by_second: Vec<std::collections::BTreeMap<i64, u64>>,
    next_sweep: Vec<i64>,
    len: u64,
}

impl Dedup {
    fn new(parts: usize, horizon: i64) -> Dedup {
        Dedup {
            horizon,
            by_second: vec![Default::default(); parts],
            next_sweep: vec![i64::MIN; parts],
            len: 0,
        }
    }

    /// One more id in partition `p` at event time `t`; the partition's sweep (retention) when
    /// its watermark reached the next one, as `Partition::advance` does.
    fn applied(&mut self, e: &Engine, p: i32, t: i64) {
        let p = p as usize;
        *self.by_second[p].entry(t.div_euclid(1000)).or_default() += 1;
        self.len += 1;
        let w = e
            .partition_watermarks()
            .into_iter()
            .find(|(q, _)| *q as usize == p)
            .map(|(_, w)| w);
        if let Some(w) = w.filter(|&w| w >= self.next_sweep[p]) {
            let keep = self.by_second[p].split_off(&(w - self.horizon).div_euclid(1000));
            self.len -= self.by_second[p].values().sum::<u64>();
            self.by_second[p] = keep;
            self.next_sweep[p] = w.saturating_add(3_600_000);
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// soak.py's stream through 6 partitions, with metrics and checkpoints; a CSV sample every
/// 10 s of input.
pub fn soak_shape(seconds: usize, rate: usize, cfg_text: &str) {
    let cfg = Arc::new(Config::from_toml_with_env(cfg_text, &[]).expect("the soak configuration"));
    let metrics = Metrics::new(&cfg);
    let mut e = Engine::new(Arc::clone(&cfg));
    e.set_observer(metrics.observer());
    let parts = 6;
    for p in 0..parts {
        e.assign(p);
        e.track_changes(p);
    }
    let route = Route::ByCustomer(Partitioner::Crc32, parts);
    let adm = Admission::unbounded();
    let every = rate * 10;
    println!("t_s,events,tickets,customers,scheduled,aggregates,merge_pending,event_ids,heap_mb,rss_mb,ck_records,ck_key_bytes,ck_value_bytes,ck_heap_mb");
    // The dedup memory, followed from outside: each partition's applied event times (per
    // second of event time), swept as the engine sweeps it (once per hour of event time).
    let mut ids = Dedup::new(parts as usize, cfg.engine.dedup_horizon.0);
    let mut gen_no = 1;
    let stdin = std::io::stdin().lock();
    let mut lines = std::io::BufRead::split(stdin, b'\n');
    for i in 0..seconds * rate {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                eprintln!("standard input: {e}");
                std::process::exit(1)
            }
            None => break,
        };
        let fed = source::feed_routed(
            &mut e,
            route,
            &line,
            || SourcePos::File {
                file: "soak".into(),
                line: i as u64,
            },
            &adm,
        );
        if let (Disposition::Applied, Some(t)) = (fed.disposition, fed.time) {
            let p = customer_of(&line).map_or(0, |c| Partitioner::Crc32.partition(c, parts));
            ids.applied(&e, p, t);
        }
        if i % 512 == 511 {
            for r in e.drain() {
                metrics.record(&r);
            }
            metrics.sync_engine(&e);
        }
        if (i + 1) % every == 0 {
            // A checkpoint of every partition, held at once (as `run` holds them until the
            // producer has them): its records, their bytes and the heap they take.
            let h0 = mem::heap().unwrap_or(0) as f64;
            let mut held = Vec::new();
            for p in 0..parts {
                let meta = CheckpointMeta {
                    gen: gen_no,
                    fingerprint: 1,
                    input_partitions: parts,
                    positions: vec![("soak.events".into(), i as i64)],
                    advance_seq: 0,
                    written_at: 0,
                };
                held.extend(e.begin_checkpoint(p, &meta));
            }
            let ck_heap = mem::heap().unwrap_or(0) as f64 - h0;
            let (mut recs, mut keys, mut values) = (0usize, 0usize, 0usize);
            for ck in held {
                for r in &ck.records {
                    recs += 1;
                    keys += r.key.len();
                    values += r.value.as_ref().map_or(0, Vec::len);
                }
                for r in e.complete_checkpoint(ck) {
                    recs += 1;
                    keys += r.key.len();
                    values += r.value.as_ref().map_or(0, Vec::len);
                }
            }
            let ck_line = format!(",{recs},{keys},{values},{:.2}", ck_heap / 1048576.0);
            gen_no += 1;
            println!(
                "{},{},{},{},{},{},{},{},{:.1},{:.1}{ck_line}",
                (i + 1) / rate,
                i + 1,
                e.tickets_held(),
                e.customers_held(),
                e.scheduled_items(),
                e.open_window_aggregates(),
                e.merge_pending_windows(),
                ids.len(),
                mem::heap().unwrap_or(0) as f64 / 1048576.0,
                mem::rss() as f64 / 1048576.0
            );
        }
    }
}
