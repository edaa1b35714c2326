//! `state_size --soak-shape`: `scripts/soak.py`'s stream through the engine as `run` would
//! drive it (6 partitions, the Prometheus observer, a checkpoint of every partition every 10 s
//! of input), without Kafka, sampled every 10 s of input.

use std::sync::Arc;

use cxstream::config::Config;
use cxstream::engine::{CheckpointMeta, Engine};
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

/// soak.py's stream through 6 partitions, with metrics and checkpoints; a CSV sample every
/// 10 s of input; `trim_every` seconds of input between two `malloc_trim(0)` (0: never).
pub fn soak_shape(seconds: usize, rate: usize, cfg_text: &str, trim_every: usize) {
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
    println!("t_s,events,tickets,customers,aftersales_customers,scheduled,aggregates,dense_summaries,merge_pending,event_ids,heap_mb,rss_mb,ck_records,ck_key_bytes,ck_value_bytes,ck_heap_mb,ck_largest_heap_mb,ck_largest_entities,heap_mid_mb,rss_mid_mb");
    // Heap and RSS half-way between two checkpoints (what changed since the last one is
    // logged until the next: a sample of `run` at a random moment holds half of it).
    let mut mid = (0.0f64, 0.0f64);
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
        source::feed_routed(
            &mut e,
            route,
            &line,
            || SourcePos::File {
                file: "soak".into(),
                line: i as u64,
            },
            &adm,
        );
        if i % 512 == 511 {
            for r in e.drain() {
                metrics.record(&r);
            }
            metrics.sync_engine(&e);
        }
        // `--trim S`: malloc_trim every S seconds of input, as `run` does every 10 s of wall
        // time (0: never, as before).
        if trim_every > 0 && (i + 1) % (trim_every * rate) == 0 {
            mem::trim();
        }
        if (i + 1) % every == every / 2 {
            mid = (
                mem::heap().unwrap_or(0) as f64 / 1048576.0,
                mem::rss() as f64 / 1048576.0,
            );
        }
        if (i + 1) % every == 0 {
            // A checkpoint of every partition, one at a time (as `run` takes them: the next
            // one's image once the previous one's records are all with the producer): the
            // records, their bytes, and the heap the largest image takes while held.
            let (mut recs, mut keys, mut values) = (0usize, 0usize, 0usize);
            let (mut ck_heap, mut largest, mut largest_entities) = (0.0f64, 0.0f64, 0usize);
            for p in 0..parts {
                let entities = e.partition_entities(p);
                let h0 = mem::heap().unwrap_or(0) as f64;
                let meta = CheckpointMeta {
                    gen: gen_no,
                    fingerprint: 1,
                    input_partitions: parts,
                    positions: vec![("soak.events".into(), i as i64)],
                    advance_seq: 0,
                    written_at: 0,
                };
                let Some(mut ck) = e.begin_checkpoint(p, &meta) else {
                    continue;
                };
                let held = mem::heap().unwrap_or(0) as f64 - h0;
                ck_heap += held;
                if held > largest {
                    (largest, largest_entities) = (held, entities);
                }
                for r in &ck.take_records() {
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
            let ck_line = format!(
                ",{recs},{keys},{values},{:.2},{:.2},{largest_entities},{:.1},{:.1}",
                ck_heap / 1048576.0,
                largest / 1048576.0,
                mid.0,
                mid.1
            );
            gen_no += 1;
            println!(
                "{},{},{},{},{},{},{},{},{},{},{:.1},{:.1}{ck_line}",
                (i + 1) / rate,
                i + 1,
                e.tickets_held(),
                e.customers_held(),
                e.aftersales_customers_held(),
                e.scheduled_items(),
                e.open_window_aggregates(),
                e.dense_summaries(),
                e.merge_pending_windows(),
                e.event_ids_held(),
                mem::heap().unwrap_or(0) as f64 / 1048576.0,
                mem::rss() as f64 / 1048576.0
            );
        }
    }
}
