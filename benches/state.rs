//! Criterion benchmarks of checkpoints and restores (SPEC §7) without Kafka: one partition
//! holding 100k open tickets and 100k customers (one `ticket.created` per new customer, the
//! shape of issue 9's restore benchmark), so the per-entity cost can be extrapolated to the
//! 1M + 1M restore that `scripts/load.py restore` measures against a broker.
//!
//! ```sh
//! cargo bench --bench state
//! CXSTREAM_BENCH_ENTITIES=1000000 cargo bench --bench state   # another size
//! ```
//!
//! - `checkpoint/encode`: `Engine::begin_checkpoint` of the whole partition (every ticket,
//!   customer and window part changed, plus the dedup segment of its event ids) and every
//!   record taken, abandoned after each iteration so the next one encodes everything again.
//! - `checkpoint/cut`: `Engine::begin_checkpoint` alone — the consistent cut (entities
//!   copied, the rest encoded) that holds `run`'s poll loop; the entities are encoded later,
//!   in slices, as their records are taken.
//! - `restore/image`: applying the checkpoint's records to a `LogImage` (what a restore does
//!   with each record it reads from the state topic; no network).
//! - `restore/assemble`: `state::restore` — the latest complete checkpoint out of the image.
//! - `restore/rebuild`: `Engine::rebuild` — decoding every entity, the dedup memory and the
//!   timers into a partition.
//! - `restore/total`: the three together, from records to an installed partition.
//!
//! Throughput is in entities (tickets + customers), so criterion's time per element is the
//! cost per entity. The checkpoint's size (records and bytes per ticket and per customer) is
//! printed on stderr before the benchmarks run.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use cxstream::config::Config;
use cxstream::engine::{CheckpointMeta, Engine};
use cxstream::event::SourcePos;
use cxstream::state::{self, kind, Key, LogImage, StateRecord};

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
const TEAMS: [&str; 8] = [
    "billing",
    "tech",
    "returns",
    "sales",
    "logistics",
    "warranty",
    "vip",
    "general",
];

fn entities() -> usize {
    std::env::var("CXSTREAM_BENCH_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// `n` ticket.created events, each by a new customer, within 5 minutes (no SLA is due).
fn lines(n: usize) -> Vec<String> {
    let start: i64 = 1_795_852_800_000; // 2026-11-22T08:00:00Z
    (0..n)
        .map(|i| {
            let t = start + (i as i64) * 300_000 / n as i64;
            format!(
                "{{\"id\":\"r{i:09}\",\"type\":\"ticket.created\",\"time\":\"{}\",\"customer\":\"k{i:09}\",\"ticket\":\"q{i:09}\",\"channel\":\"{}\",\"priority\":\"{}\",\"team\":\"{}\",\"category\":\"question\"}}",
                cxstream::ts::format_ms(t),
                CHANNELS[i % 7],
                PRIORITIES[i % 4],
                TEAMS[i % 8],
            )
        })
        .collect()
}

fn meta(gen: u64) -> CheckpointMeta {
    CheckpointMeta {
        gen,
        fingerprint: 1,
        input_partitions: 1,
        positions: vec![("in".into(), 0)],
        advance_seq: 0,
        written_at: 0,
    }
}

/// A partition 0 holding `n` open tickets and `n` customers, changes tracked.
fn engine(cfg: &Arc<Config>, n: usize) -> Engine {
    let mut e = Engine::new(Arc::clone(cfg));
    e.track_changes(0);
    for (i, l) in lines(n).iter().enumerate() {
        cxstream::source::feed(&mut e, 0, l.as_bytes(), || SourcePos::Kafka {
            topic: "in".into(),
            partition: 0,
            offset: i as i64,
        });
    }
    e.drain().for_each(drop);
    assert_eq!(e.tickets_held(), n, "every ticket open");
    assert_eq!(e.customers_held(), n, "every customer held");
    e
}

/// The records of one complete checkpoint (manifest last), as the state topic holds them.
fn checkpoint_records(e: &mut Engine) -> Vec<StateRecord> {
    let mut ck = e.begin_checkpoint(0, &meta(1)).expect("changes to write");
    let mut records = ck.take_records();
    records.push(StateRecord {
        key: Key::Manifest.bytes(),
        value: Some(ck.manifest.encode()),
    });
    let tombs = e.complete_checkpoint(ck);
    records.extend(tombs);
    records
}

fn size_report(records: &[StateRecord], n: usize) {
    let mut by = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for r in records {
        let what = match Key::parse(&r.key) {
            Some(Key::Entity { kind: k, .. }) if k == kind::TICKET => "ticket",
            Some(Key::Entity { kind: k, .. }) if k == kind::CUSTOMER => "customer",
            Some(Key::Entity { .. }) => "window part",
            Some(Key::Dedup { .. }) => "dedup",
            Some(Key::Core { .. }) => "core",
            Some(Key::Manifest) => "manifest",
            _ => "other",
        };
        let e = by.entry(what.into()).or_default();
        e.0 += 1;
        e.1 += r.key.len() + r.value.as_ref().map_or(0, Vec::len);
    }
    let total: usize = by.values().map(|v| v.1).sum();
    eprintln!(
        "checkpoint of {n} tickets + {n} customers: {} records, {total} bytes ({:.1} per ticket+customer pair)",
        records.len(),
        total as f64 / n as f64
    );
    for (what, (count, bytes)) in &by {
        eprintln!(
            "  {what:<12} {count:>9} records {bytes:>11} bytes ({:.1} bytes per record)",
            *bytes as f64 / *count as f64
        );
    }
}

fn image(records: &[StateRecord]) -> LogImage {
    let mut img = LogImage::default();
    for r in records {
        img.apply(&r.key, r.value.as_deref());
    }
    img
}

fn bench_state(c: &mut Criterion) {
    let n = entities();
    let cfg = Arc::new(Config::default());
    let mut e = engine(&cfg, n);
    let records = checkpoint_records(&mut e);
    size_report(&records, n);
    let elements = Throughput::Elements(2 * n as u64);

    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10);
    g.throughput(elements.clone());
    // Every entity touched again, then encoded: abandoning re-marks what was written.
    let mut fresh = engine(&cfg, n);
    g.bench_function(format!("encode {n} tickets + {n} customers"), |b| {
        b.iter_with_large_drop(|| {
            let mut ck = fresh.begin_checkpoint(0, &meta(1)).expect("changes");
            let records = ck.take_records();
            fresh.abandon_checkpoint(ck);
            records
        })
    });
    // Only the cut: what holds the poll loop (the entities' encoding follows in slices).
    g.bench_function(format!("cut {n} tickets + {n} customers"), |b| {
        b.iter_with_large_drop(|| {
            let ck = fresh.begin_checkpoint(0, &meta(1)).expect("changes");
            let left = ck.records_left();
            fresh.abandon_checkpoint(ck);
            left
        })
    });
    g.finish();

    let img = image(&records);
    let restored = state::restore(&img)
        .expect("restorable")
        .expect("a checkpoint");
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    g.throughput(elements);
    g.bench_function(format!("image {n} tickets + {n} customers"), |b| {
        b.iter_with_large_drop(|| image(&records))
    });
    g.bench_function(format!("assemble {n} tickets + {n} customers"), |b| {
        b.iter_with_large_drop(|| state::restore(&img).expect("restorable"))
    });
    let target = Engine::new(Arc::clone(&cfg));
    g.bench_function(format!("rebuild {n} tickets + {n} customers"), |b| {
        b.iter_with_large_drop(|| target.rebuild(0, &restored).expect("rebuilt"))
    });
    g.bench_function(format!("total {n} tickets + {n} customers"), |b| {
        b.iter_batched(
            || Engine::new(Arc::clone(&cfg)),
            |mut e| {
                let img = image(&records);
                let r = state::restore(&img).expect("restorable").expect("found");
                e.restore_partition(0, &r).expect("restored");
                assert_eq!(e.tickets_held(), n);
                e
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
