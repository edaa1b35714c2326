//! The Kafka sink: an idempotent producer (acks=all) that never drops a record silently.
//!
//! - A full local queue (`QueueFull`, or a broker down for long) never blocks `run`: the record
//!   waits in the sink's own queue, in order, and [`Sink::congested`] tells the pipeline to
//!   pause its input partitions (backpressure) while it keeps polling the consumer, so the
//!   group membership survives any outage; [`Sink::pump`] hands the waiting records over as
//!   room frees up. Other users (`generate --kafka`, the demo) block with a growing backoff.
//! - A record whose delivery fails (librdkafka already retried it until `message.timeout.ms`,
//!   e.g. during a long broker outage) comes back through the delivery report and is queued
//!   again by [`Sink::resend_failed`] (so it may land after records produced later).
//! - A fatal producer error (idempotence state lost) replaces the producer; the records the old
//!   one still held come back through their (purged) delivery reports and are sent again.
//! - Order where it matters survives both: a record sent with [`Sink::send_after_parts`] (a
//!   watermark) is held until every record sent before it with [`Sink::send_part`] to the
//!   same topic partition is acknowledged ([`super::lanes`]), then goes through a producer of
//!   its own ([`super::producers`]).
//! - Only a record the broker can never take (larger than the topic allows, or refused as
//!   invalid) is dropped: counted by record type and reason ([`Sink::errors`], exported as
//!   `cxstream_output_errors_total{type,reason}`) and logged with its key (for a dead letter,
//!   the key is its source position), never silently.
//!
//! [`Sink::flush`] returns `true` only when every record handed to it has been acknowledged;
//! the commit protocol commits offsets only after such a flush.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::BaseRecord;

use crate::shutdown::Shutdown;

use super::delivery::{opaque, record_bytes, Occupancy, Shared};
pub use super::delivery::{Room, SinkContext, QUEUE_KBYTES};
pub use super::kinds::KINDS;
use super::kinds::{classify, kind_index, reason, Action, Owned};
use super::lanes::Lanes;
use super::producers::{Producers, Which};

/// The output producer with retry-until-acknowledged semantics.
pub struct Sink {
    producers: Producers,
    /// The producer queue's capacity, read from `config` once: records
    /// (`queue.buffering.max.messages`) and key + value bytes (`.max.kbytes`).
    cap: (usize, u64),
    shared: Arc<Shared>,
    /// Records sent again after a failed delivery.
    resent: u64,
    /// Records given up on (the broker can never take them), each logged as an error.
    dropped: u64,
    /// Records given up on, by (type, reason).
    errors: BTreeMap<(&'static str, &'static str), u64>,
    /// Records that found the producer's queue full and waited in `waiting`, by type.
    waited: BTreeMap<&'static str, u64>,
    /// Records waiting for room in the producer's queue, in order (backpressure mode).
    waiting: VecDeque<Owned>,
    /// A state-topic record the broker refused (checkpoints cannot complete).
    state_refused: Option<String>,
    /// Backpressure mode: a full queue parks records in `waiting` instead of blocking.
    backpressure: bool,
    /// Records not handed to the producer because shutdown came while its queue was full.
    unsent: u64,
    /// Shutdown: retry loops stop waiting for a broker that does not come back.
    shutdown: Shutdown,
    /// The last sequence number handed out.
    seq: u64,
    /// Where [`Sink::with_scratch`] encodes a value: kept, so that no record allocates and
    /// grows a buffer of its own (issue 10: 12 % of the merge step's CPU was that growth).
    scratch: Vec<u8>,
    /// Records held until the parts before them in their topic partition are acknowledged.
    lanes: Lanes,
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
    /// What it is: one of [`KINDS`].
    pub kind: &'static str,
}

/// How long a send waits for queue space once shutdown has started.
const SHUTDOWN_SEND_BUDGET: Duration = Duration::from_secs(30);

impl Sink {
    /// An idempotent producer: `enable.idempotence=true` and `acks=all` are enforced over the
    /// pass-through properties in `config`.
    pub fn new(mut config: ClientConfig, shutdown: Shutdown) -> Result<Sink> {
        config.set("enable.idempotence", "true");
        config.set("acks", "all");
        if config.get("linger.ms").is_none() {
            config.set("linger.ms", "5");
        }
        if config.get("queue.buffering.max.kbytes").is_none() {
            config.set("queue.buffering.max.kbytes", QUEUE_KBYTES.to_string());
        }
        let get = |k: &str, default: u64| {
            config
                .get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let cap = (
            get("queue.buffering.max.messages", 100_000).max(2) as usize,
            get("queue.buffering.max.kbytes", QUEUE_KBYTES).max(2) * 1024,
        );
        let shared = Arc::new(Shared::default());
        Ok(Sink {
            producers: Producers::new(config, Arc::clone(&shared))?,
            cap,
            shared,
            resent: 0,
            dropped: 0,
            errors: BTreeMap::new(),
            waited: BTreeMap::new(),
            waiting: VecDeque::new(),
            state_refused: None,
            backpressure: false,
            unsent: 0,
            shutdown,
            seq: 0,
            scratch: Vec::new(),
            lanes: Lanes::default(),
        })
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

    /// Records whose delivery failed, waiting to be sent again by [`Sink::resend_failed`].
    pub fn failed(&self) -> usize {
        self.shared.failed.lock().map_or(0, |v| v.len())
    }

    /// Records not sent because shutdown came while the producer's queue stayed full.
    pub fn unsent(&self) -> u64 {
        self.unsent
    }

    /// Records not acknowledged yet (in librdkafka's queues, or failed and waiting to be sent
    /// again).
    pub fn pending(&self) -> usize {
        self.producers.in_flight() + self.failed() + self.waiting.len() + self.lanes.held()
    }

    /// Records are held until the parts before them are acknowledged ([`Sink::pump`] sends
    /// them then): come back soon.
    pub fn holding(&self) -> bool {
        self.lanes.held() > 0
    }

    /// Why a state-topic record was refused, if one was: checkpoints cannot complete.
    pub fn state_refused(&self) -> Option<&str> {
        self.state_refused.as_deref()
    }

    /// Records given up on, by (record type, reason).
    pub fn errors(&self) -> &BTreeMap<(&'static str, &'static str), u64> {
        &self.errors
    }

    /// Records that found the producer's queue full and waited in the sink's own queue, by
    /// record type ([`KINDS`]).
    pub fn waited(&self) -> &BTreeMap<&'static str, u64> {
        &self.waited
    }

    /// Backpressure mode (`run`): a send never blocks; a record that finds the producer's
    /// queue full waits in the sink's own queue (see [`Sink::congested`], [`Sink::pump`]).
    pub fn set_backpressure(&mut self, on: bool) {
        self.backpressure = on;
    }

    /// Records other than state records take more than half of the producer's queue (in
    /// records or in bytes): while a checkpoint is being sent, the input pauses until they
    /// take less (each gets its half, so an output stream the broker cannot keep up with does
    /// not starve checkpoints).
    pub fn outputs_over_half(&self) -> bool {
        !self.waiting.is_empty() || self.occupancy().outputs_over_half()
    }

    /// The producer's queue: its capacity (`queue.buffering.max.messages` and
    /// `.max.kbytes`), the records in it (queued, in flight or awaiting their delivery report)
    /// and their bytes, and how much of that is state records.
    fn occupancy(&self) -> Occupancy {
        let d = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Occupancy {
            cap: self.cap.0,
            used: self.producers.in_flight(),
            state: d(&self.shared.state_in_flight) as usize,
            cap_bytes: self.cap.1,
            bytes: d(&self.shared.bytes_in_flight),
            state_bytes: d(&self.shared.state_bytes_in_flight),
        }
    }

    /// How many more state records (checkpoints), and bytes of them, may be handed to the
    /// producer now: state records get half of its local queue (half of
    /// `queue.buffering.max.messages` and half of `.max.kbytes`) to themselves, whatever the
    /// outputs take of the other half — so neither a checkpoint fills the queue and pauses the
    /// input, nor a steady stream of outputs (a broker slow to acknowledge) starves the
    /// checkpoints — and never more than the queue has room for: a state record sent this way
    /// never waits in the sink's own queue. None while records wait there.
    pub fn room(&self) -> Room {
        if !self.waiting.is_empty() {
            return Room::NONE;
        }
        self.occupancy().room_for_state()
    }

    /// Records in the producer's queue (handed over, no delivery report yet).
    pub fn queued_records(&self) -> usize {
        self.producers.in_flight()
    }

    /// Key + value bytes of the records in the producer's queue (the memory it holds for
    /// them, besides librdkafka's per-record overhead).
    pub fn queued_bytes(&self) -> u64 {
        self.shared.bytes_in_flight.load(Ordering::Relaxed)
    }

    /// Records are waiting for room in the producer's queue: stop reading input until
    /// [`Sink::pump`] has handed them all over.
    pub fn congested(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// [`Sink::pump`], serving delivery reports for up to `budget` while records still wait.
    pub fn pump_for(&mut self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        loop {
            if self.pump() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.producers.poll(left.min(Duration::from_millis(5)));
        }
    }

    /// Hands waiting records to the producer, in order, as long as it takes them; serves
    /// delivery reports first, then sends the held records whose parts are all acknowledged
    /// now. `true` when none is left waiting (held records are not waiting for room).
    pub fn pump(&mut self) -> bool {
        self.producers.poll(Duration::ZERO);
        let released = match self.shared.outstanding.lock() {
            Ok(o) => self.lanes.release(&|s| !o.contains(&s)),
            Err(_) => Vec::new(),
        };
        for rec in released {
            self.send_inner(rec.seq, rec.out(), rec.after);
        }
        while let Some(rec) = self.waiting.pop_front() {
            if !self.try_send(rec.seq, rec.out(), rec.after) {
                self.waiting.push_front(rec);
                return false;
            }
        }
        true
    }

    /// Serves delivery reports for up to `d` (frees room in the producer's queue).
    pub fn serve(&self, d: Duration) {
        self.producers.poll(d);
    }

    /// Serves delivery reports without blocking.
    pub fn poll(&self) {
        self.producers.poll(Duration::ZERO);
    }

    /// Hands one record of kind `kind` ([`KINDS`]) to the producer — waiting (with backoff)
    /// while its queue is full, or, in backpressure mode, parking it in the sink's queue.
    /// Never drops a record, except one the broker can never take.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        kind: &'static str,
    ) -> u64 {
        self.send_to(Out {
            topic,
            partition: None,
            key,
            payload: Some(payload),
            kind,
        })
    }

    /// Calls `f` with the sink and an empty buffer to encode a value into and send (the
    /// producer copies it); the buffer is kept for the next call.
    pub fn with_scratch<R>(&mut self, f: impl FnOnce(&mut Sink, &mut Vec<u8>) -> R) -> R {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let r = f(self, &mut buf);
        self.scratch = buf;
        r
    }

    /// [`Sink::send`] of an output record to `topic`: its key, its JSON line, its type.
    pub fn send_record(&mut self, topic: &str, r: &crate::output::Record) -> u64 {
        self.with_scratch(|sink, buf| {
            r.write_line(buf);
            let n = buf.len();
            r.push_key(buf);
            let (line, key) = buf.split_at(n);
            sink.send(topic, Some(key), line, r.type_name())
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
        self.send_inner(seq, out, false);
        seq
    }

    /// [`Sink::send_to`] of a part: a record that those sent later with
    /// [`Sink::send_after_parts`] to the same topic partition wait for. `out.partition` must be
    /// explicit.
    pub fn send_part(&mut self, out: Out<'_>) -> u64 {
        let seq = self.send_to(out);
        self.lanes.part(out.topic, out.partition.unwrap_or(-1), seq);
        seq
    }

    /// [`Sink::send_to`] of a record that must land after every part sent before it to the
    /// same topic partition, even one whose delivery failed and is sent again: handed to the
    /// producer at once if they are all acknowledged, else held (it has its sequence number
    /// already, so [`Sink::acked_through`] stays below it) and sent by [`Sink::pump`].
    pub fn send_after_parts(&mut self, out: Out<'_>) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        let rec = Owned::of(seq, out, true);
        let ready = match self.shared.outstanding.lock() {
            Ok(mut o) => {
                o.insert(seq);
                self.lanes.after(rec, &|s| !o.contains(&s))
            }
            Err(_) => Some(rec),
        };
        if let Some(rec) = ready {
            self.send_inner(seq, rec.out(), true);
        }
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

    fn send_inner(&mut self, seq: u64, out: Out<'_>, after: bool) {
        if self.backpressure {
            // In order: behind the records already waiting.
            if !self.waiting.is_empty() || !self.try_send(seq, out, after) {
                *self.waited.entry(out.kind).or_default() += 1;
                self.waiting.push_back(Owned::of(seq, out, after));
            }
            return;
        }
        let mut backoff = Duration::from_millis(5);
        let mut given_up_at = None;
        while !self.try_send(seq, out, after) {
            if self.shutdown.is_triggered() {
                // Shutting down: wait a bounded time, then leave the record to the next run
                // (its input offsets are not committed without it).
                let since = *given_up_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= SHUTDOWN_SEND_BUDGET {
                    self.unsent += 1;
                    self.forget(seq);
                    tracing::warn!(
                        topic = out.topic,
                        "shutting down with the producer queue still full: record left for the next run"
                    );
                    return;
                }
            }
            // Serves delivery reports (freeing queue space) while waiting.
            self.producers.poll(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// One attempt to hand a record to the producer: `true` when it is handed over (or given
    /// up on: the broker can never take it), `false` when the queue has no room now.
    /// `after`: a record sent after its parts, through the second producer.
    fn try_send(&mut self, seq: u64, out: Out<'_>, after: bool) -> bool {
        loop {
            let mut rec: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(out.topic, opaque(seq, kind_index(out.kind), after));
            if let Some(p) = out.payload {
                rec = rec.payload(p);
            }
            if let Some(k) = out.key {
                rec = rec.key(k);
            }
            if let Some(p) = out.partition {
                rec = rec.partition(p);
            }
            let which = if after { Which::After } else { Which::Main };
            let err = match self.producers.get(which).send(rec) {
                Ok(()) => {
                    self.shared
                        .handed(kind_index(out.kind), record_bytes(out.key, out.payload));
                    return true;
                }
                Err((e, _)) => e,
            };
            match classify(&err) {
                Action::Drop => {
                    self.give_up(seq, &out, &err, "cannot take it");
                    return true;
                }
                Action::Replace => self.producers.replace(which, &err, &self.shutdown),
                Action::Backoff => {
                    if let Some(n) = self.shared.warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            "kafka producer: cannot queue a record to {} ({err}); {}",
                            out.topic,
                            if self.backpressure {
                                "input paused until it can"
                            } else {
                                "retrying"
                            }
                        );
                    }
                    return false;
                }
            }
        }
    }

    /// A record the broker can never take: counted by type and reason, logged, forgotten (so
    /// it does not hold back the acknowledgement of what follows).
    fn give_up(&mut self, seq: u64, out: &Out<'_>, err: &KafkaError, what: &str) {
        self.dropped += 1;
        *self.errors.entry((out.kind, reason(err))).or_default() += 1;
        if out.kind == "state" {
            // A checkpoint missing a record must never complete: its sequence number stays
            // unacknowledged (so its manifest is never written) and the run stops.
            self.state_refused
                .get_or_insert_with(|| format!("{} refused a state record: {err}", out.topic));
        } else {
            self.forget(seq);
        }
        tracing::error!(
            topic = out.topic,
            record_type = out.kind,
            reason = reason(err),
            key = %String::from_utf8_lossy(out.key.unwrap_or_default()),
            bytes = out.payload.map_or(0, <[u8]>::len),
            "output record dropped: the broker {what}: {err} (raise message.max.bytes on the producer and the topic's max.message.bytes to keep such records)"
        );
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
                self.give_up(f.rec.seq, &f.rec.out(), &f.error, "refused it");
                continue;
            }
            self.resent += 1;
            self.send_inner(f.rec.seq, f.rec.out(), f.rec.after);
        }
        n
    }

    /// Learns the metadata of the topics it will write, now and in a producer that replaces
    /// one later ([`Producers::learn_topics`]).
    pub fn learn_topics(&mut self, topics: &[String]) {
        self.producers.learn_topics(topics);
    }

    /// Waits until every record handed over so far is acknowledged, sending failed ones again,
    /// for at most `budget`. `true` when nothing is left unacknowledged.
    pub fn flush(&mut self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        loop {
            self.resend_failed();
            let all_handed = self.pump();
            if let Some(w) = self.producers.fatal() {
                let err = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
                self.producers.replace(w, &err, &self.shutdown);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let step = left.min(Duration::from_millis(500));
            let flushed = self.producers.flush(step);
            let failed = self.failed();
            if flushed && failed == 0 && all_handed && !self.holding() {
                return true;
            }
            if Instant::now() >= deadline {
                if let Some(n) = self.shared.warn.allow() {
                    let (main, after) = self.producers.in_flight_each();
                    tracing::warn!(
                        suppressed = n,
                        in_flight = main + after,
                        in_flight_main = main,
                        in_flight_watermarks = after,
                        holding = self.holding(),
                        failed,
                        "kafka producer: outputs not acknowledged yet; offsets are not committed until they are"
                    );
                }
                return false;
            }
        }
    }
}
