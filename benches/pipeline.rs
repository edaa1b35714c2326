//! Criterion benchmarks of the hot path: decode, engine (replay), window aggregation, and the
//! `hdr` encoding of window summaries.
//!
//! cargo bench --bench pipeline

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use cxstream::config::Config;
use cxstream::engine::Engine;
use cxstream::event::{decode, SourcePos};
use cxstream::generate::{GenerateOptions, Generator};
use cxstream::kpi::Kpi;
use cxstream::window::hdr::encode_hdr;
use cxstream::window::{Aggregate, DurationAgg};

fn lines(n: u64) -> Vec<String> {
    Generator::new(GenerateOptions {
        events: n,
        seed: 3,
        ..GenerateOptions::default()
    })
    .map(|g| g.line)
    .collect()
}

fn bench_decode(c: &mut Criterion) {
    let input = lines(20_000);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("decode 20k generated events", |b| {
        b.iter(|| {
            let mut ok = 0;
            for l in &input {
                ok += decode(l.as_bytes()).is_ok() as u32;
            }
            ok
        })
    });
    // The physical limit of this work: parsing the same JSON without validation.
    g.bench_function("serde_json::Value parse only (reference)", |b| {
        b.iter(|| {
            let mut n = 0;
            for l in &input {
                n += serde_json::from_str::<serde_json::Value>(l).is_ok() as u32;
            }
            n
        })
    });
    g.finish();
}

fn bench_engine(c: &mut Criterion) {
    let input = lines(100_000);
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(input.len() as u64));
    for (name, windows, groups) in [
        ("replay 100k, default windows and groups", None, None),
        (
            "replay 100k, 1h window, {} group only",
            Some("[\"1h\"]"),
            Some("[[]]"),
        ),
    ] {
        let mut text = String::new();
        if let Some(w) = windows {
            text += &format!("[engine]\nwindows = {w}\n");
            if let Some(gr) = groups {
                text += &format!("group_by = {gr}\n");
            }
        }
        let cfg = Arc::new(Config::from_toml_with_env(&text, &[]).expect("config"));
        g.bench_function(name, |b| {
            b.iter_batched(
                || Engine::new(cfg.clone()),
                |mut e| {
                    for (i, l) in input.iter().enumerate() {
                        cxstream::source::feed(&mut e, 0, l.as_bytes(), || SourcePos::File {
                            file: "b".into(),
                            line: i as u64,
                        });
                        e.drain().for_each(drop);
                    }
                    e.finish();
                    e.drain().map(|r| r.to_line().len()).sum::<usize>()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn bench_aggregate(c: &mut Criterion) {
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("aggregate 10k measurements", |b| {
        b.iter(|| {
            let mut a = Aggregate::default();
            for i in 0..10_000i64 {
                a.apply(&Kpi::FirstResponse(i * 37 % 86_400_000), 0);
                a.apply(&Kpi::Csat((i % 5 + 1) as u8), 0);
            }
            a.tickets.created
        })
    });
    let mut d = DurationAgg::default();
    for i in 0..200i64 {
        d.record_ms(i * 1_234_567 % 259_200_000);
    }
    g.bench_function(
        "duration summary to JSON with hdr (200 values up to 72 h)",
        |b| b.iter(|| cxstream::window::summary_json(&d)),
    );
    g.bench_function("hdr encode only", |b| {
        b.iter(|| encode_hdr(&d.histogram().expect("hist")))
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_engine, bench_aggregate);
criterion_main!(benches);
