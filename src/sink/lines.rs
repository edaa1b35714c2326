//! Producing lines of text to a topic (`generate --kafka`, the demo's load): the Kafka sink
//! in its blocking mode, paced at a rate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::config::ClientConfig;

use super::kafka::Sink;
use crate::shutdown::Shutdown;

/// Produces `(key, line)` pairs to `topic` with an idempotent producer (acks=all), at most
/// `rate_per_sec` lines per second if given; `extra` is passed through to librdkafka. Waits
/// until every line is acknowledged and returns how many were produced. An empty key sends
/// the message without a key.
pub fn produce_lines(
    bootstrap: &str,
    topic: &str,
    lines: impl Iterator<Item = (String, String)>,
    rate_per_sec: Option<f64>,
    extra: &BTreeMap<String, String>,
) -> Result<u64> {
    produce_lines_until(
        bootstrap,
        topic,
        lines,
        rate_per_sec,
        extra,
        &Shutdown::never(),
    )
}

/// [`produce_lines`] that also stops early when `shutdown` starts (the lines sent so far are
/// still flushed).
pub fn produce_lines_until(
    bootstrap: &str,
    topic: &str,
    lines: impl Iterator<Item = (String, String)>,
    rate_per_sec: Option<f64>,
    extra: &BTreeMap<String, String>,
    shutdown: &Shutdown,
) -> Result<u64> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        cc.set(k, v);
    }
    let mut sink = Sink::new(cc, shutdown.clone())?;
    let started = Instant::now();
    let rate = rate_per_sec.filter(|r| r.is_finite() && *r > 0.0);
    let mut n: u64 = 0;
    for (key, line) in lines {
        if shutdown.is_triggered() {
            break;
        }
        if let Some(r) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / r);
            let now = Instant::now();
            if due > now {
                // Serve delivery reports while pacing.
                sink.poll();
                shutdown.sleep(due - now);
            }
        }
        let key = (!key.is_empty()).then_some(key.as_bytes());
        sink.send(topic, key, line.as_bytes(), "input");
        n += 1;
        if n.is_multiple_of(1024) {
            sink.poll();
            sink.resend_failed();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !sink.flush(Duration::from_secs(10)) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{} of {n} records to {topic} not acknowledged after 5 minutes (is the broker at {bootstrap} up?)",
                sink.pending()
            );
        }
    }
    Ok(n)
}
