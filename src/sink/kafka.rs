//! The Kafka sink: an idempotent producer (acks=all) that never drops a record silently.
//!
//! - A full local queue (`QueueFull`) blocks the caller with a growing backoff while delivery
//!   reports are served, then the record is sent again.
//! - A record whose delivery fails (librdkafka already retried it until `message.timeout.ms`,
//!   e.g. during a long broker outage) comes back through the delivery report and is queued
//!   again by [`Sink::resend_failed`] (so it may land after records produced later).
//! - A fatal producer error (idempotence state lost) replaces the producer; the records the old
//!   one still held come back through their (purged) delivery reports and are sent again.
//! - Only a record the broker can never take (larger than the topic allows) is dropped: with
//!   an error log and the `dropped` count, never silently.
//!
//! [`Sink::flush`] returns `true` only when every record handed to it has been acknowledged;
//! the commit protocol commits offsets only after such a flush.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::ClientContext;

use crate::config::CreateClient as _;
use crate::logs::LogLimiter;
use crate::shutdown::Shutdown;

/// A record to send again.
struct Failed {
    /// Its sequence number (kept across resends).
    seq: u64,
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    payload: Option<Vec<u8>>,
    error: KafkaError,
}

/// State shared by the producer's delivery callbacks (they run inside `poll`/`flush`) and the
/// sink, across producer replacements.
#[derive(Default)]
struct Shared {
    failed: Mutex<Vec<Failed>>,
    /// Sequence numbers handed to the producer and not acknowledged yet.
    outstanding: Mutex<BTreeSet<u64>>,
    acked: AtomicU64,
    delivery_errors: AtomicU64,
    warn: LogLimiter,
}

/// The producer's context: counts acknowledgements and keeps failed records.
pub struct SinkContext {
    shared: Arc<Shared>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        crate::logs::log_librdkafka("producer", &self.shared.warn, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(n) = self.shared.warn.allow() {
            tracing::warn!(suppressed = n, "kafka producer: {error}: {reason}");
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        match result {
            Ok(_) => {
                self.shared.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut o) = self.shared.outstanding.lock() {
                    o.remove(&(seq as u64));
                }
            }
            Err((error, msg)) => {
                self.shared.delivery_errors.fetch_add(1, Ordering::Relaxed);
                let f = Failed {
                    seq: seq as u64,
                    topic: msg.topic().to_string(),
                    partition: (msg.partition() >= 0).then_some(msg.partition()),
                    key: msg.key().map(<[u8]>::to_vec),
                    payload: msg.payload().map(<[u8]>::to_vec),
                    error: error.clone(),
                };
                if let Ok(mut v) = self.shared.failed.lock() {
                    v.push(f);
                }
            }
        }
    }
}

/// The output producer with retry-until-acknowledged semantics.
pub struct Sink {
    producer: BaseProducer<SinkContext>,
    config: ClientConfig,
    shared: Arc<Shared>,
    /// Records sent again after a failed delivery.
    resent: u64,
    /// Records given up on (the broker can never take them), each logged as an error.
    dropped: u64,
    /// Records not handed to the producer because shutdown came while its queue was full.
    unsent: u64,
    /// Shutdown: retry loops stop waiting for a broker that does not come back.
    shutdown: Shutdown,
    /// The last sequence number handed out.
    seq: u64,
}

/// A record to send: where, and what.
#[derive(Debug, Clone, Copy)]
pub struct Out<'a> {
    /// The topic.
    pub topic: &'a str,
    /// An explicit partition (state topic), or `None` for the key's partition.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a tombstone.
    pub payload: Option<&'a [u8]>,
}

/// How long a send waits for queue space once shutdown has started.
const SHUTDOWN_SEND_BUDGET: Duration = Duration::from_secs(30);

/// How a send error is handled.
enum Action {
    Backoff,
    Replace,
    Drop,
}

fn classify(e: &KafkaError) -> Action {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Fatal) => Action::Replace,
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
        | Some(RDKafkaErrorCode::InvalidArgument)
        | Some(RDKafkaErrorCode::InvalidMessage)
        | Some(RDKafkaErrorCode::InvalidMessageSize) => Action::Drop,
        _ => Action::Backoff,
    }
}

impl Sink {
    /// An idempotent producer: `enable.idempotence=true` and `acks=all` are enforced over the
    /// pass-through properties in `config`.
    pub fn new(mut config: ClientConfig, shutdown: Shutdown) -> Result<Sink> {
        config.set("enable.idempotence", "true");
        config.set("acks", "all");
        if config.get("linger.ms").is_none() {
            config.set("linger.ms", "5");
        }
        let shared = Arc::new(Shared::default());
        let producer = Self::create(&config, &shared)?;
        Ok(Sink {
            producer,
            config,
            shared,
            resent: 0,
            dropped: 0,
            unsent: 0,
            shutdown,
            seq: 0,
        })
    }

    fn create(config: &ClientConfig, shared: &Arc<Shared>) -> Result<BaseProducer<SinkContext>> {
        config
            .create_masked_with(SinkContext {
                shared: Arc::clone(shared),
            })
            .context("cannot create the Kafka producer (check kafka.librdkafka settings)")
    }

    /// Records acknowledged by the broker so far.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Records sent again after a failed delivery (or a producer replacement).
    pub fn resent(&self) -> u64 {
        self.resent
    }

    /// Records given up on because the broker can never take them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records not sent because shutdown came while the producer's queue stayed full.
    pub fn unsent(&self) -> u64 {
        self.unsent
    }

    /// Records not acknowledged yet (in librdkafka's queues, or failed and waiting to be sent
    /// again).
    pub fn pending(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize
            + self.shared.failed.lock().map_or(0, |v| v.len())
    }

    /// Serves delivery reports without blocking.
    pub fn poll(&self) {
        self.producer.poll(Duration::ZERO);
    }

    /// Hands one record to the producer, waiting (with backoff) while its queue is full or the
    /// producer is being replaced. Never drops a record, except one the broker can never take.
    pub fn send(&mut self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> u64 {
        self.send_to(Out {
            topic,
            partition: None,
            key,
            payload: Some(payload),
        })
    }

    /// [`Sink::send`] of any record; returns its sequence number: once
    /// [`Sink::acked_through`] reaches it, it and everything sent before are acknowledged.
    pub fn send_to(&mut self, out: Out<'_>) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        if let Ok(mut o) = self.shared.outstanding.lock() {
            o.insert(seq);
        }
        self.send_inner(seq, out);
        seq
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// Every record with a sequence number up to this is acknowledged (or given up on).
    pub fn acked_through(&self) -> u64 {
        match self.shared.outstanding.lock() {
            Ok(o) => o.first().map_or(self.seq, |f| f - 1),
            Err(_) => 0,
        }
    }

    fn forget(&self, seq: u64) {
        if let Ok(mut o) = self.shared.outstanding.lock() {
            o.remove(&seq);
        }
    }

    fn send_inner(&mut self, seq: u64, out: Out<'_>) {
        let Out {
            topic,
            partition,
            key,
            payload,
        } = out;
        let mut backoff = Duration::from_millis(5);
        let mut given_up_at = None;
        loop {
            let mut rec: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, seq as usize);
            if let Some(p) = payload {
                rec = rec.payload(p);
            }
            if let Some(k) = key {
                rec = rec.key(k);
            }
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            let err = match self.producer.send(rec) {
                Ok(()) => return,
                Err((e, _)) => e,
            };
            match classify(&err) {
                Action::Drop => {
                    self.dropped += 1;
                    self.forget(seq);
                    tracing::error!(
                        topic,
                        key = %String::from_utf8_lossy(key.unwrap_or_default()),
                        bytes = payload.map_or(0, <[u8]>::len),
                        "output record dropped: the broker cannot take it: {err}"
                    );
                    return;
                }
                Action::Replace => self.replace(&err),
                Action::Backoff => {
                    if self.shutdown.is_triggered() {
                        // Shutting down: wait a bounded time, then leave the record to the
                        // next run (its input offsets are not committed without it).
                        let since = *given_up_at.get_or_insert_with(Instant::now);
                        if since.elapsed() >= SHUTDOWN_SEND_BUDGET {
                            self.unsent += 1;
                            self.forget(seq);
                            tracing::warn!(
                                topic,
                                "shutting down with the producer queue still full: record left for the next run"
                            );
                            return;
                        }
                    }
                    if let Some(n) = self.shared.warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            "kafka producer: cannot queue a record to {topic} ({err}); retrying"
                        );
                    }
                    // Serves delivery reports (freeing queue space) while waiting.
                    self.producer.poll(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// Replaces a producer that hit a fatal error. Its unacknowledged records come back as
    /// failed deliveries (purged) and are sent again by [`Sink::resend_failed`].
    fn replace(&mut self, err: &KafkaError) {
        let reason = self
            .producer
            .client()
            .fatal_error()
            .map_or_else(|| err.to_string(), |(c, s)| format!("{c}: {s}"));
        tracing::error!("kafka producer: fatal error ({reason}); replacing the producer");
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let _ = self.producer.flush(Duration::from_secs(1));
        loop {
            match Self::create(&self.config, &self.shared) {
                Ok(p) => {
                    // The old producer's drop serves what is left of its delivery reports.
                    self.producer = p;
                    return;
                }
                Err(e) => {
                    tracing::error!("kafka producer: cannot create a new producer: {e:#}");
                    if self.shutdown.sleep(Duration::from_secs(1)) {
                        // Keep the failed producer: nothing more is acknowledged, so nothing
                        // more is committed; the next run takes over.
                        return;
                    }
                }
            }
        }
    }

    /// Sends again every record whose delivery failed. Returns how many.
    pub fn resend_failed(&mut self) -> usize {
        let failed = match self.shared.failed.lock() {
            Ok(mut v) if !v.is_empty() => std::mem::take(&mut *v),
            _ => return 0,
        };
        let n = failed.len();
        let mut by_error: BTreeMap<String, usize> = BTreeMap::new();
        for f in &failed {
            *by_error.entry(f.error.to_string()).or_default() += 1;
        }
        if let Some(s) = self.shared.warn.allow() {
            tracing::warn!(
                suppressed = s,
                "kafka producer: {n} deliveries failed ({by_error:?}); sending them again"
            );
        }
        for f in failed {
            if let Action::Drop = classify(&f.error) {
                self.dropped += 1;
                self.forget(f.seq);
                tracing::error!(
                    topic = f.topic,
                    bytes = f.payload.as_ref().map_or(0, Vec::len),
                    "output record dropped: the broker refused it: {}",
                    f.error
                );
                continue;
            }
            self.resent += 1;
            let out = Out {
                topic: &f.topic,
                partition: f.partition,
                key: f.key.as_deref(),
                payload: f.payload.as_deref(),
            };
            self.send_inner(f.seq, out);
        }
        n
    }

    /// Waits until every record handed over so far is acknowledged, sending failed ones again,
    /// for at most `budget`. `true` when nothing is left unacknowledged.
    pub fn flush(&mut self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        loop {
            self.resend_failed();
            if self.producer.client().fatal_error().is_some() {
                self.replace(&KafkaError::MessageProduction(RDKafkaErrorCode::Fatal));
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_millis(500));
            let flushed = self.producer.flush(step).is_ok();
            let failed = self.shared.failed.lock().map_or(0, |v| v.len());
            if flushed && failed == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                if let Some(n) = self.shared.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        in_flight = self.producer.in_flight_count(),
                        failed,
                        "kafka producer: outputs not acknowledged yet; offsets are not committed until they are"
                    );
                }
                return false;
            }
        }
    }
}

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
        sink.send(topic, key, line.as_bytes());
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
