//! The "bare consumer" of issue 10: the least a Kafka consumer can do with cxstream's input —
//! read every partition of a topic up to given end offsets with one rdkafka `BaseConsumer`
//! and parse each value with serde_json into a typed struct — so that `cxstream run` on the
//! same backlog, from the same broker, in the same session, can be reported as a ratio of it.
//! `scripts/load.py` runs it beside `cxstream run`; see docs/benchmarks.md.
//!
//! ```sh
//! cargo build --release --example bare_consumer
//! target/release/examples/bare_consumer --bootstrap 127.0.0.1:9092 \
//!     --until-offsets cx.events:0=333000,cx.events:1=334000,cx.events:2=333000
//! ```
//!
//! It joins a consumer group (a fresh one unless `--group` is given; `--assign` skips the
//! group join and assigns the partitions directly) with the same librdkafka defaults as
//! `cxstream run` (plus the session settings `scripts/load.py` gives both), starts from the
//! beginning, and stops when every partition has reached its end offset. Prints one JSON
//! object on stdout:
//!
//! `{"events", "bytes", "parse_errors", "wall_s", "span_s", "events_per_s", "span_events_per_s", "checksum"}`
//!
//! `wall_s` is from process start to the last message (client creation and group join
//! included: comparable with a `cxstream run` process's wall time); `span_s` from the first
//! message to the last. Exit status 1 on an error (broker unreachable, no progress for
//! `--timeout` seconds).
//!
//! **Live reference** (`--live TOPIC --duration S`): the same consumer, assigned every
//! partition of TOPIC from its end, reads and parses for S seconds, and for each load probe
//! (`{"load_probe": <ms>, …}`, written by `scripts/load.py live`) keeps the moment it got it
//! minus the probe's send time: what this broker and machine take to hand an event to a
//! consumer that does nothing with it, beside cxstream's probe → effect latency. Prints one
//! line `[sent_ms, latency_ms]` per probe as it comes (so the run can be stopped at any
//! time), and `{"events", "parse_errors"}` at the end of the duration.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Deserialize;

#[derive(Parser, Debug)]
#[command(about = "Read and parse a topic up to given offsets (the bare consumer of issue 10)")]
struct Args {
    /// Bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Where to stop: topic:partition=offset,... (the next offset after the last message,
    /// as `cxstream run --until-offsets` takes it). Every partition of the topic must be
    /// listed.
    #[arg(long, required_unless_present = "live")]
    until_offsets: Option<String>,
    /// Live reference instead: read this topic from its end for --duration seconds and
    /// time the load probes in it.
    #[arg(long, requires = "duration", conflicts_with_all = ["until_offsets", "assign"])]
    live: Option<String>,
    /// Seconds to read with --live.
    #[arg(long)]
    duration: Option<f64>,
    /// Consumer group (default: a fresh one, so it starts from the beginning).
    #[arg(long)]
    group: Option<String>,
    /// Assign the partitions directly instead of joining a group.
    #[arg(long)]
    assign: bool,
    /// Extra librdkafka properties, name=value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Give up after this many seconds without a message.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

/// An input event as SPEC §1 defines it (every field any type has; absent ones `None`).
#[allow(dead_code)]
#[derive(Deserialize, Debug)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    time: String,
    customer: String,
    ticket: Option<String>,
    channel: Option<String>,
    priority: Option<String>,
    team: Option<String>,
    category: Option<String>,
    author: Option<String>,
    agent: Option<String>,
    public: Option<bool>,
    handle_seconds: Option<f64>,
    score: Option<i64>,
    order: Option<String>,
    amount: Option<f64>,
    reason: Option<String>,
    product: Option<String>,
}

fn parse_until(s: &str) -> Result<BTreeMap<(String, i32), i64>> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = (|| {
            let (tp, off) = item.split_once('=')?;
            let (t, p) = tp.rsplit_once(':')?;
            Some(((t.to_string(), p.parse().ok()?), off.parse().ok()?))
        })();
        let Some((k, v)) = parsed else {
            bail!("--until-offsets: \"{item}\" is not topic:partition=offset");
        };
        out.insert(k, v);
    }
    if out.is_empty() {
        bail!("--until-offsets lists no partition");
    }
    Ok(out)
}

fn main() -> Result<()> {
    let started = Instant::now();
    let args = Args::parse();
    let consumer = consumer(&args)?;
    if let (Some(topic), Some(secs)) = (&args.live, args.duration) {
        return live(&consumer, topic, Duration::from_secs_f64(secs));
    }
    let ends = parse_until(args.until_offsets.as_deref().unwrap_or_default())?;
    if args.assign {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in ends.keys() {
            tpl.add_partition_offset(t, *p, Offset::Beginning)
                .context("assignment")?;
        }
        consumer.assign(&tpl).context("cannot assign")?;
    } else {
        let mut topics: Vec<&str> = ends.keys().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        consumer.subscribe(&topics).context("cannot subscribe")?;
    }

    // Partitions still to finish, with the next offset wanted.
    let mut left: BTreeMap<(String, i32), i64> = ends
        .iter()
        .filter(|(_, e)| **e > 0)
        .map(|(k, e)| (k.clone(), *e))
        .collect();
    let (mut events, mut bytes, mut errors, mut checksum) = (0u64, 0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let idle = Duration::from_secs_f64(args.timeout);
    while !left.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if last.elapsed() > idle {
                    bail!(
                        "no message for {} s with {events} read; still to read: {left:?}",
                        args.timeout
                    );
                }
            }
            Some(Err(e)) => eprintln!("bare_consumer: {e} (transient; continuing)"),
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                let key = (m.topic().to_string(), m.partition());
                let Some(end) = left.get(&key).copied() else {
                    continue; // a partition already finished (or not listed)
                };
                if m.offset() >= end {
                    left.remove(&key);
                    continue;
                }
                events += 1;
                let v = m.payload().unwrap_or_default();
                bytes += v.len() as u64;
                match serde_json::from_slice::<Event>(v) {
                    Ok(e) => checksum = checksum.wrapping_add(black_box(&e).id.len() as u64),
                    Err(_) => errors += 1,
                }
                if m.offset() + 1 >= end {
                    left.remove(&key);
                }
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let span = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    let per = |s: f64| if s > 0.0 { events as f64 / s } else { 0.0 };
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "bytes": bytes,
            "parse_errors": errors,
            "wall_s": wall,
            "span_s": span,
            "events_per_s": per(wall),
            "span_events_per_s": per(span),
            "checksum": checksum,
        })
    );
    Ok(())
}

/// The consumer both modes use: a fresh group unless `--group`, no commits, from the
/// beginning where it has no offset, plus the `--set` properties.
fn consumer(args: &Args) -> Result<BaseConsumer> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("bare-consumer-{}-{}", std::process::id(), now_ms()));
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--set {kv}: expected name=value");
        };
        cc.set(k, v);
    }
    cc.create().context("cannot create the consumer")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `--live`: every partition of `topic` from its end, for `dur`; each event parsed, each
/// load probe timed from its send time (in its value) to the poll that returned it.
fn live(consumer: &BaseConsumer, topic: &str, dur: Duration) -> Result<()> {
    #[derive(Deserialize)]
    struct Probe {
        load_probe: i64,
    }
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("cannot read the topic's metadata")?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::End)
                .context("assignment")?;
        }
    }
    if tpl.count() == 0 {
        bail!("topic {topic} has no partitions (does it exist?)");
    }
    consumer.assign(&tpl).context("cannot assign")?;
    let until = Instant::now() + dur;
    let (mut events, mut errors) = (0u64, 0u64);
    while Instant::now() < until {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => eprintln!("bare_consumer: {e} (transient; continuing)"),
            Some(Ok(m)) => {
                let got = now_ms();
                let v = m.payload().unwrap_or_default();
                events += 1;
                if v.starts_with(br#"{"load_probe""#) {
                    match serde_json::from_slice::<Probe>(v) {
                        Ok(p) => println!("[{}, {}]", p.load_probe, got - p.load_probe),
                        Err(_) => errors += 1,
                    }
                } else if serde_json::from_slice::<Event>(v).is_err() {
                    errors += 1;
                }
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"events": events, "parse_errors": errors})
    );
    Ok(())
}
