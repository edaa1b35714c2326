//! `cxstream demo`: the whole product on one machine with nothing to install — librdkafka's
//! in-process mock cluster (real Kafka protocol on loopback), a generator producing realistic
//! events into the input topic, the same [`run_pipeline`](super::run_pipeline) as `run`, and
//! the metrics endpoint. Prints what to open, then a status line every few seconds.
//!
//! **Event time.** Generated events start at the current time and their event time runs
//! [`SPEEDUP`] times faster than the wall clock (one minute of support-desk time per second),
//! so 1-minute windows close every second and SLA breaches show up within seconds. Event time
//! is therefore always ahead of the wall clock, and the live idle advance (never past wall
//! clock − allowed lateness) never moves the watermark: no event becomes late because of it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _, Result};
use rdkafka::mocking::MockCluster;

use super::{run_pipeline_with, Progress, RunOptions};
use crate::config::Config;
use crate::generate::{GenerateOptions, Generator};
use crate::metrics::{self, Metrics};
use crate::shutdown::{self, Shutdown};
use crate::sink::lines::produce_lines_until;
use crate::ts;

/// Event time runs this many times faster than the wall clock in the demo.
pub const SPEEDUP: f64 = 60.0;
/// Seconds between two status lines.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What `cxstream demo` runs: generator rate, duration, metrics address, partitions.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Events produced per second (wall clock).
    pub rate: f64,
    /// Stop after this long (default: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Address of the /metrics, /healthz, /readyz endpoint.
    pub metrics_listen: SocketAddr,
    /// Partitions of the input topic.
    pub partitions: i32,
}

/// Runs the demo until `shutdown` starts (`main` fires it on Ctrl-C / SIGTERM) or
/// `opts.duration` has passed.
pub fn demo(cfg: Arc<Config>, opts: DemoOptions, shutdown: Shutdown) -> Result<()> {
    run(cfg, opts, shutdown)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Ticket arrival rate giving `SPEEDUP`× event time at `rate` lines per second: measured on a
/// sample, since the generator's events per ticket are its own business.
fn tickets_per_hour_for(rate: f64, start_ms: i64, seed: u64) -> f64 {
    const T0: f64 = 600.0;
    let n = 10_000;
    let times: Vec<i64> = Generator::new(GenerateOptions {
        events: n,
        seed,
        start_ms,
        tickets_per_hour: T0,
        ..GenerateOptions::default()
    })
    .map(|l| l.time_ms)
    .collect();
    let span = times.iter().max().copied().unwrap_or(0) - times.iter().min().copied().unwrap_or(0);
    let ms_per_line_t0 = (span as f64 / n as f64).max(1.0);
    let wanted_ms_per_line = SPEEDUP * 1000.0 / rate;
    (T0 * ms_per_line_t0 / wanted_ms_per_line).max(1.0)
}

fn run(cfg: Arc<Config>, opts: DemoOptions, outer: Shutdown) -> Result<()> {
    if !(opts.rate.is_finite() && opts.rate > 0.0) {
        return Err(anyhow!(
            "--rate must be a positive number of events per second"
        ));
    }
    if opts.partitions < 1 {
        return Err(anyhow!("--partitions must be at least 1"));
    }
    // The metrics port first: fail early, with a clear message, if it is taken.
    std::net::TcpListener::bind(opts.metrics_listen).with_context(|| {
        format!(
            "cannot listen on {} for metrics (choose another address)",
            opts.metrics_listen
        )
    })?;

    let cluster = MockCluster::new(1).context("cannot start the embedded Kafka cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    let k = &cfg.kafka;
    let input = k
        .input_topics
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("kafka.input_topics is empty"))?;
    for topic in &k.input_topics {
        cluster.create_topic(topic, opts.partitions, 1)?;
    }
    cluster.create_topic(&k.output_topic, opts.partitions, 1)?;
    cluster.create_topic(&k.deadletter_topic, 1, 1)?;
    cluster.create_topic(&k.state_topic(), opts.partitions, 1)?;
    cluster.create_topic(&k.parts_topic(), opts.partitions, 1)?;

    let mut c = (*cfg).clone();
    c.kafka.bootstrap_servers = bootstrap.clone();
    for (key, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
    ] {
        c.kafka
            .librdkafka
            .entry(key.into())
            .or_insert_with(|| v.into());
    }
    // Event time runs ahead of the wall clock here, by design: nothing is "from the future".
    c.input.max_future = crate::config::Dur(3650 * crate::ts::DAY);
    let cfg = Arc::new(c);
    let metrics = Metrics::new(&cfg);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The demo stops its parts itself: on the caller's shutdown, after `opts.duration`, or
    // when the pipeline or the generator ends.
    let (stop, shutdown) = shutdown::channel();
    {
        let (addr, m, s) = (opts.metrics_listen, Arc::clone(&metrics), shutdown.clone());
        rt.spawn(async move {
            if let Err(e) = metrics::serve(addr, m, async move { s.wait().await }).await {
                tracing::error!("metrics endpoint stopped: {e:#}");
            }
        });
    }

    let progress = Progress::new();
    let pipeline = {
        let (cfg, m, s, p) = (
            Arc::clone(&cfg),
            Arc::clone(&metrics),
            shutdown.clone(),
            Arc::clone(&progress),
        );
        std::thread::Builder::new()
            .name("cxstream-pipeline".into())
            .spawn(move || run_pipeline_with(cfg, Some(m), s, p, RunOptions::default()))?
    };

    let start_ms = now_ms();
    let seed = start_ms as u64;
    let tph = tickets_per_hour_for(opts.rate, start_ms, seed);
    let produced = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let generator = {
        let (bootstrap, topic, stopped, produced) = (
            bootstrap.clone(),
            input.clone(),
            shutdown.clone(),
            Arc::clone(&produced),
        );
        let extra = cfg.kafka.librdkafka.clone();
        let rate = opts.rate;
        std::thread::Builder::new()
            .name("cxstream-demo-generator".into())
            .spawn(move || {
                let lines = Generator::new(GenerateOptions {
                    events: u64::MAX,
                    seed,
                    start_ms,
                    customers: 200_000,
                    tickets_per_hour: tph,
                    invalid_ratio: 0.002,
                    duplicate_ratio: 0.002,
                    orphan_ratio: 0.001,
                })
                .map(|l| {
                    produced.fetch_add(1, Ordering::Relaxed);
                    (l.key, l.line)
                });
                produce_lines_until(&bootstrap, &topic, lines, Some(rate), &extra, &stopped)
            })?
    };

    println!(
        "cxstream demo: an embedded Kafka cluster, generated support events, the live pipeline"
    );
    println!("  Kafka (mock, in process):  {bootstrap}");
    println!(
        "  topics:                    {input} ({} partitions) -> {} / {}",
        opts.partitions, cfg.kafka.output_topic, cfg.kafka.deadletter_topic
    );
    println!(
        "  events:                    {} per second; event time runs {SPEEDUP}x the wall clock from now",
        opts.rate
    );
    println!(
        "  metrics:                   http://{}/metrics",
        opts.metrics_listen
    );
    println!(
        "  health:                    http://{}/healthz  http://{}/readyz",
        opts.metrics_listen, opts.metrics_listen
    );
    println!("  stop:                      Ctrl-C");

    let began = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut next_status = Instant::now() + STATUS_EVERY;
    loop {
        if outer.is_triggered()
            || opts.duration.is_some_and(|d| began.elapsed() >= d)
            || pipeline.is_finished()
            || generator.is_finished()
        {
            stop.fire();
            break;
        }
        if Instant::now() >= next_status {
            let events = progress.events.load(Ordering::Relaxed);
            let per_s = (events - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
            last = (Instant::now(), events);
            println!(
                "[{:>4}s] events {events} ({per_s:.0}/s, {} produced) | watermark {} | windows closed {} | SLA breaches {} | other alerts {} | dead letters {} | commits {}",
                began.elapsed().as_secs(),
                produced.load(Ordering::Relaxed),
                progress.watermark().map_or("-".into(), ts::format_ms),
                progress.windows.load(Ordering::Relaxed),
                progress.breaches.load(Ordering::Relaxed),
                progress.alerts.load(Ordering::Relaxed),
                progress.deadletters.load(Ordering::Relaxed),
                progress.commits.load(Ordering::Relaxed),
            );
            next_status += STATUS_EVERY;
        }
        outer.sleep(Duration::from_millis(100));
    }
    println!("stopping…");
    let gen_result = generator
        .join()
        .map_err(|_| anyhow!("the generator thread panicked"))?;
    let summary = pipeline
        .join()
        .map_err(|_| anyhow!("the pipeline thread panicked"))??;
    let produced = gen_result.context("producing demo events failed")?;
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(cluster);
    println!(
        "demo done: {produced} events produced, {} processed, {} records produced, {} commits",
        summary.events, summary.records_produced, summary.commits
    );
    Ok(())
}
