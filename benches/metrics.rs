//! `/metrics` with about 20,000 series (issue 10: served in ≤ 50 ms).
//!
//! The series come from real events through the engine and the Prometheus observer: one
//! ticket per (team, channel, priority), answered and solved, so every per-ticket counter and
//! both duration histograms have a series per combination (a histogram series is each of its
//! `_bucket` lines, `_sum` and `_count`, as Prometheus counts them). Measured: the text
//! encoding alone, and a whole `GET /metrics` over TCP from the same axum server `run` uses
//! (request, encoding, response read to the end).
//!
//! cargo bench --bench metrics

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use cxstream::config::Config;
use cxstream::engine::Engine;
use cxstream::event::SourcePos;
use cxstream::metrics::Metrics;

const CHANNELS: [&str; 4] = ["email", "chat", "phone", "messenger"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// A metrics registry filled by `teams` × 4 channels × 4 priorities tickets.
fn filled(teams: usize) -> Arc<Metrics> {
    let cfg = Arc::new(Config::default());
    let metrics = Metrics::new(&cfg);
    let mut e = Engine::new(cfg);
    e.set_observer(metrics.observer());
    let mut lines = Vec::new();
    let mut n = 0u64;
    for t in 0..teams {
        for ch in CHANNELS {
            for pr in PRIORITIES {
                n += 1;
                let c = format!("c{n}");
                let k = format!("t{n}");
                let at = |s: u64| {
                    format!(
                        "2026-11-22T{:02}:{:02}:{:02}.000Z",
                        s / 3600,
                        s / 60 % 60,
                        s % 60
                    )
                };
                let s0 = n % 600;
                lines.push(format!(
                    r#"{{"id":"a{n}","type":"ticket.created","time":"{}","customer":"{c}","ticket":"{k}","channel":"{ch}","priority":"{pr}","team":"team-{t:03}"}}"#,
                    at(s0)
                ));
                lines.push(format!(
                    r#"{{"id":"b{n}","type":"ticket.message","time":"{}","customer":"{c}","ticket":"{k}","author":"agent","public":true}}"#,
                    at(s0 + 300 + n % 1000)
                ));
                lines.push(format!(
                    r#"{{"id":"d{n}","type":"ticket.solved","time":"{}","customer":"{c}","ticket":"{k}"}}"#,
                    at(s0 + 3000 + n % 5000)
                ));
            }
        }
    }
    lines.sort_by(|a, b| a[a.find("time").unwrap_or(0)..].cmp(&b[b.find("time").unwrap_or(0)..]));
    for (i, l) in lines.iter().enumerate() {
        cxstream::source::feed(&mut e, 0, l.as_bytes(), || SourcePos::File {
            file: "m".into(),
            line: i as u64,
        });
        e.drain().for_each(drop);
    }
    metrics.sync_engine(&e);
    metrics
}

fn series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

fn bench_metrics(c: &mut Criterion) {
    let metrics = filled(29);
    let n = series(&metrics.encode());
    let mut g = c.benchmark_group("metrics");
    g.bench_function(format!("encode {n} series"), |b| {
        b.iter(|| metrics.encode().len())
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let m = Arc::clone(&metrics);
    rt.spawn(async move {
        let _ = cxstream::metrics::http::serve_listener(listener, m, std::future::pending()).await;
    });
    let get = || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut body = Vec::new();
        s.read_to_end(&mut body).expect("response");
        body
    };
    let body = get();
    assert!(
        body.starts_with(b"HTTP/1.1 200") && series(&String::from_utf8_lossy(&body)) >= n,
        "GET /metrics answered with every series"
    );
    g.bench_function(format!("GET /metrics, {n} series, over TCP"), |b| {
        b.iter(|| get().len())
    });
    g.finish();
}

criterion_group!(benches, bench_metrics);
criterion_main!(benches);
