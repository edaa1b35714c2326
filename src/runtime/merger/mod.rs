//! The merge step of `run` (SPEC §7 "Several instances"): complete `kpi.window` records from
//! the parts topic, whatever the number of instances.
//!
//! Every instance runs one, on its own thread, as a member of consumer group
//! `<group_id>.merge` subscribed to the parts topic; the group spreads the parts-topic
//! partitions over the instances. For each parts-topic partition it owns, it folds the log
//! into a [`PartsLog`] and sends each window the log completes to the output topic (the same
//! bytes one instance or `replay` writes).
//!
//! # Restarts
//!
//! Every `kafka.checkpoint_interval`, once every record it emitted is acknowledged, the owner
//! writes a [`Mark`] (merged-through point, watermarks, oldest pending part) into the
//! partition itself and, once the mark is acknowledged, commits the position the mark was
//! taken at. A new owner (after a crash, a rebalance or a restart) reads from the committed
//! offset to the first mark, seeds its fold from it and reads the log again from the oldest
//! pending part, completing nothing until it is back at the mark's position (the mark's
//! watermarks cover every record before it, its pending parts come back only as they are read
//! again): what it emits again is byte-identical, and nothing emitted before the mark is
//! emitted again. A revoke and the stop complete what was folded before their final marks.
//! Without a committed offset it folds the partition from its beginning. Marks: [`mark`].
//!
//! A SIGKILL at any instant: records emitted after the last mark are emitted again by the next
//! owner (same bytes; consumers keep the last record per key); a mark not yet acknowledged is
//! ignored (the one before it is used); nothing is lost as long as the parts topic keeps the
//! parts (its retention must exceed the longest window plus the allowed lateness plus the
//! longest outage).
//!
//! # End of a bounded run
//!
//! `run --until-end` ends like replay: partial windows are emitted. The input side sends an
//! end marker with its run id to every parts-topic partition after its last parts and hands
//! the parts the end of the input sealed to this thread ([`Merger::flush`]); once every
//! partition's marker is read, the pending windows and those parts are emitted, without
//! touching the merge state (the end of a finite input is never part of it, SPEC §2).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::marks::{committed, find_mark};
use crate::config::Config;
use crate::engine::parts::{PartMsg, PartOut, PartsLog};
use crate::logs::LogLimiter;
use crate::metrics::Metrics;
use crate::output::Record;
use crate::shutdown::Shutdown;
use crate::sink::kafka::Sink;
use crate::source::kafka::{lock, Rebalance, SourceContext};

mod mark;

/// The merge step's consumer.
pub(super) type Consumer = BaseConsumer<SourceContext<Merge>>;

/// How long a poll waits for parts.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Budget for the final marks at shutdown and on revoke.
const MARK_BUDGET: Duration = Duration::from_secs(15);

/// A running merge step (see the module docs).
pub struct Merger {
    thread: Option<JoinHandle<()>>,
    tx: Sender<Flush>,
    stop: Arc<AtomicBool>,
}

/// The end of a bounded run, handed to the merge step.
struct Flush {
    run: String,
    finals: Vec<PartOut>,
    deadline: Instant,
    done: Sender<bool>,
}

impl Merger {
    /// Joins the merge group and starts the merge step's thread. `inputs` is the input
    /// topics' partition count (the partitions a window waits for), `partitions` the parts
    /// topic's.
    pub fn spawn(
        cfg: Arc<Config>,
        metrics: Option<Arc<Metrics>>,
        inputs: i32,
        partitions: i32,
        shutdown: Shutdown,
    ) -> Result<Merger> {
        let mut sink = Sink::new(cfg.kafka.client_config(), shutdown)?;
        sink.set_backpressure(true);
        let topic = cfg.kafka.parts_topic();
        // Complete windows go to the output topic, marks to the parts topic.
        sink.learn_topics(&[cfg.kafka.output_topic.clone(), topic.clone()]);
        let merge = Arc::new(Mutex::new(Merge {
            fingerprint: cfg.fingerprint(),
            cfg: Arc::clone(&cfg),
            topic: topic.clone(),
            inputs,
            partitions,
            sink,
            metrics: metrics.clone(),
            owned: BTreeMap::new(),
            warn: LogLimiter::default(),
            last_mark: Instant::now(),
            flush: None,
            stopping: false,
        }));
        let consumer = crate::source::kafka::consumer_of(
            &cfg,
            &cfg.kafka.merge_group_id(),
            std::slice::from_ref(&topic),
            Arc::clone(&merge),
            None,
        )?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cxstream-merge".into())
            .spawn(move || run(consumer, merge, rx, stop2))
            .context("cannot start the merge thread")?;
        Ok(Merger {
            thread: Some(thread),
            tx,
            stop,
        })
    }

    /// The end of a bounded run `run` (its end markers are sent): emits every pending window
    /// with `finals`, partial ones flagged. `true` once they are acknowledged within `budget`.
    pub fn flush(&self, run: String, finals: Vec<PartOut>, budget: Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        let f = Flush {
            run,
            finals,
            deadline: Instant::now() + budget,
            done,
        };
        if self.tx.send(f).is_err() {
            return false;
        }
        wait.recv_timeout(budget + MARK_BUDGET).unwrap_or(false)
    }

    /// Writes the final marks, commits, leaves the group and waits for the thread at most
    /// `budget` (a group coordinator that holds the commit or the leave cannot hold the
    /// shutdown longer: the next owner then starts from the previous marks).
    pub fn stop_within(mut self, budget: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(t) = self.thread.take() else {
            return;
        };
        if !crate::shutdown::join_within(t, budget) {
            tracing::warn!(
                "merge step: not stopped within kafka.shutdown_timeout (final marks, commit, \
                 leaving the group); exiting anyway: the next owner starts from the previous marks"
            );
        }
    }
}

impl Drop for Merger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One owned parts-topic partition.
struct Owned {
    /// The fold; `None` until its starting point is found.
    log: Option<PartsLog>,
    /// The next offset to read.
    next: i64,
    /// The last record emitted from it (sink sequence number).
    emitted: u64,
    /// The position of the last mark written (or found).
    marked: i64,
    /// A mark sent and not acknowledged yet: its sequence number and position.
    inflight: Option<(u64, i64)>,
    /// End markers read (bounded runs).
    ended: BTreeSet<String>,
    /// Seeks left to try again while the first record read after locating is past the offset
    /// sought: librdkafka may revert a seek made right after an assignment to the committed
    /// offset (confluentinc/librdkafka#2256), and the parts between them would be missed.
    seek_checks: u8,
    /// A seek to `next` is due ([`Merge::locate`]); records are ignored until it is made.
    reseek: bool,
    /// Parts dropped already added to the metric.
    dropped_reported: u64,
}

/// The merge step's state, shared with the consumer's rebalance callbacks.
pub(super) struct Merge {
    cfg: Arc<Config>,
    fingerprint: u64,
    topic: String,
    inputs: i32,
    partitions: i32,
    sink: Sink,
    metrics: Option<Arc<Metrics>>,
    owned: BTreeMap<i32, Owned>,
    warn: LogLimiter,
    last_mark: Instant,
    flush: Option<Flush>,
    /// Stopping: the final commits are not waited for.
    stopping: bool,
}

fn run(consumer: Consumer, merge: Arc<Mutex<Merge>>, rx: Receiver<Flush>, stop: Arc<AtomicBool>) {
    let warn = LogLimiter::default();
    loop {
        if let Ok(f) = rx.try_recv() {
            lock(&merge).flush = Some(f);
        }
        if stop.load(Ordering::Relaxed) && lock(&merge).flush.is_none() {
            break;
        }
        let mut wait = POLL_WAIT;
        for _ in 0..1024 {
            let Some(item) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match item {
                Ok(msg) => lock(&merge).message(&msg),
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    if let Some(n) = warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            "merge consumer: {e} (transient; continuing)"
                        );
                    }
                    break;
                }
            }
        }
        let mut m = lock(&merge);
        m.locate(&consumer);
        m.complete();
        m.maybe_mark(&consumer, false);
        m.maybe_flush();
        m.sync_metrics();
    }
    {
        let mut m = lock(&merge);
        // From here on (and in the close's revoke) commits do not wait for an answer.
        m.stopping = true;
        let qs: Vec<i32> = m.owned.keys().copied().collect();
        // The loop stops at the top of a round: the last round completed what it folded.
        m.final_marks(&consumer, &qs);
    }
    consumer.unsubscribe();
    drop(consumer);
}

impl Merge {
    /// One parts-topic record.
    fn message(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) {
        let q = msg.partition();
        let Some(o) = self.owned.get_mut(&q) else {
            return;
        };
        let Some(log) = o.log.as_mut() else {
            return; // still locating: read again once found
        };
        if o.reseek || msg.offset() < o.next {
            // A seek is due, or a record folded already (fetched before a seek).
            return;
        }
        if msg.offset() > o.next && o.seek_checks > 0 {
            o.seek_checks -= 1;
            o.reseek = true;
            tracing::warn!(
                partition = q,
                expected = o.next,
                offset = msg.offset(),
                "merge step: the first parts-topic record after locating is past the offset \
                 sought (a seek reverted by the consumer); seeking again"
            );
            return;
        }
        // Reading from where it was sought: later gaps are the log's own.
        o.seek_checks = 0;
        if msg.offset() > o.next {
            if let Some(n) = self.warn.allow() {
                tracing::warn!(
                    suppressed = n,
                    partition = q,
                    expected = o.next,
                    offset = msg.offset(),
                    "merge step: parts-topic records skipped (deleted by retention before they \
                     were read, or a seek not honoured): windows may be merged without them"
                );
            }
        }
        o.next = msg.offset() + 1;
        match PartMsg::decode(msg.payload().unwrap_or_default(), self.fingerprint) {
            Ok(PartMsg::End(run)) => {
                tracing::debug!(
                    partition = q,
                    offset = msg.offset(),
                    run,
                    "merge step: end marker read"
                );
                o.ended.insert(run);
            }
            Ok(m) => {
                if let PartMsg::Mark(k) = &m {
                    tracing::debug!(
                        partition = q,
                        offset = msg.offset(),
                        position = k.position,
                        merged_through = %crate::ts::format_ms(k.merged_through),
                        "merge step: mark read"
                    );
                }
                let dropped = log.dropped;
                log.apply(msg.offset(), m);
                if log.dropped > dropped {
                    // A repeat after a restart, or a part late for its window (which then went
                    // out without it): the offset finds the record.
                    tracing::debug!(
                        partition = q,
                        offset = msg.offset(),
                        "merge step: a part for a window already emitted"
                    );
                }
            }
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        partition = q,
                        offset = msg.offset(),
                        "parts topic {}: skipping a record: {} (an instance with another \
                         configuration shares the group? every instance needs the same windows, \
                         groups and lateness)",
                        self.topic,
                        e.0
                    );
                }
            }
        }
    }

    /// Finds where newly assigned partitions start (their latest mark) and resumes them; makes
    /// the seeks that are due again.
    fn locate(&mut self, consumer: &Consumer) {
        for (q, o) in self.owned.iter_mut().filter(|(_, o)| o.reseek) {
            match consumer.seek(
                &self.topic,
                *q,
                Offset::Offset(o.next),
                Duration::from_secs(10),
            ) {
                Ok(()) => o.reseek = false,
                Err(e) => tracing::warn!(partition = q, "merge step: cannot seek again: {e}"),
            }
        }
        let todo: Vec<i32> = self
            .owned
            .iter()
            .filter(|(_, o)| o.log.is_none())
            .map(|(q, _)| *q)
            .collect();
        for q in todo {
            let found = committed(consumer, &self.topic, q).and_then(|c| match c {
                Some(k) => find_mark(&self.cfg, &self.topic, q, k, self.fingerprint),
                None => Ok(None),
            });
            let (log, start) = match found {
                Ok(Some(mark)) => {
                    tracing::info!(
                        partition = q,
                        from = mark.oldest,
                        merged_through = %crate::ts::format_ms(mark.merged_through),
                        "merge step: resuming from its mark"
                    );
                    (PartsLog::from_mark(self.inputs, &mark), mark.oldest)
                }
                Ok(None) => {
                    tracing::info!(partition = q, "merge step: starting from the beginning");
                    (PartsLog::new(self.inputs), -1)
                }
                Err(e) => {
                    if let Some(n) = self.warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            partition = q,
                            "merge step: {e:#} (trying again)"
                        );
                    }
                    continue;
                }
            };
            let off = if start < 0 {
                Offset::Beginning
            } else {
                Offset::Offset(start)
            };
            if let Err(e) = consumer.seek(&self.topic, q, off, Duration::from_secs(10)) {
                tracing::warn!(partition = q, "merge step: cannot seek to {off:?}: {e}");
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, q);
            if let Err(e) = consumer.resume(&tpl) {
                tracing::warn!(partition = q, "merge step: cannot resume: {e}");
            }
            if let Some(o) = self.owned.get_mut(&q) {
                o.marked = start;
                o.next = start.max(0);
                o.log = Some(log);
                // From the beginning, the log may start past 0 (retention).
                o.seek_checks = if start < 0 { 0 } else { 3 };
            }
        }
    }

    /// Emits what the owned partitions complete.
    fn complete(&mut self) {
        let mut out = Vec::new();
        let qs: Vec<i32> = self.owned.keys().copied().collect();
        for q in qs {
            let Some(log) = self.owned.get_mut(&q).and_then(|o| o.log.as_mut()) else {
                continue;
            };
            log.complete(&mut out);
            if !out.is_empty() {
                tracing::debug!(
                    partition = q,
                    records = out.len(),
                    merged_through = %crate::ts::format_ms(log.merged_through()),
                    "merge step: windows complete"
                );
                let seq = self.emit(&mut out);
                if let Some(o) = self.owned.get_mut(&q) {
                    o.emitted = seq;
                }
            }
        }
        self.sink.pump();
        self.sink.resend_failed();
    }

    /// Sends merged records to the output topic; returns the last sequence number.
    fn emit(&mut self, out: &mut Vec<Record>) -> u64 {
        for r in out.drain(..) {
            if let Some(m) = &self.metrics {
                m.record(&r);
            }
            self.sink.send_record(&self.cfg.kafka.output_topic, &r);
        }
        self.sink.last_seq()
    }

    /// The end of a bounded run, once every parts-topic partition's end marker is read.
    fn maybe_flush(&mut self) {
        let Some(f) = &self.flush else {
            return;
        };
        let all = (0..self.partitions).all(|q| {
            self.owned
                .get(&q)
                .is_some_and(|o| o.log.is_some() && o.ended.contains(&f.run))
        });
        let late = Instant::now() > f.deadline;
        if !all && !late {
            return;
        }
        let Some(f) = self.flush.take() else {
            return;
        };
        if !all {
            let missing: Vec<i32> = (0..self.partitions)
                .filter(|q| !self.owned.get(q).is_some_and(|o| o.ended.contains(&f.run)))
                .collect();
            tracing::warn!(
                partitions = ?missing,
                "end of the bounded run: these parts-topic partitions were not read to the end \
                 (owned by another instance?): their partial windows are not emitted"
            );
        }
        let mut by_q: BTreeMap<i32, Vec<PartOut>> = BTreeMap::new();
        for p in f.finals {
            by_q.entry(p.route(self.partitions)).or_default().push(p);
        }
        let mut out = Vec::new();
        for (q, o) in &self.owned {
            if let Some(log) = &o.log {
                log.flush(by_q.remove(q).unwrap_or_default(), &mut out);
            }
        }
        self.emit(&mut out);
        let ok = self.sink.flush(MARK_BUDGET) && all;
        let _ = f.done.send(ok);
    }

    fn sync_metrics(&mut self) {
        let Some(m) = &self.metrics else {
            return;
        };
        let mut pending = 0;
        for o in self.owned.values_mut() {
            if let Some(log) = &o.log {
                pending += log.pending_windows();
                m.add_merge_dropped(log.dropped - o.dropped_reported);
                o.dropped_reported = log.dropped;
            }
        }
        m.set_merge_pending(pending);
        m.set_merge_partitions(self.owned.len());
    }

    /// The window sizes whose `{}` series parts-topic partition `q` merges.
    fn window_labels_of(&self, q: i32) -> Vec<String> {
        self.cfg
            .engine
            .windows
            .iter()
            .filter(|d| crate::engine::parts::route(d.0, &[], self.partitions) == q)
            .map(|d| crate::ts::duration_label(d.0))
            .collect()
    }
}

impl Rebalance for Merge {
    fn assigned(&mut self, tpl: &mut TopicPartitionList) {
        for e in tpl.elements() {
            self.owned.entry(e.partition()).or_insert(Owned {
                log: None,
                next: 0,
                emitted: 0,
                marked: -1,
                inflight: None,
                ended: BTreeSet::new(),
                dropped_reported: 0,
                seek_checks: 0,
                reseek: false,
            });
        }
        tracing::info!(
            partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(),
            "merge step: parts-topic partitions assigned"
        );
    }

    fn after_assign(&mut self, consumer: &Consumer, tpl: &TopicPartitionList) {
        // Nothing is read before the starting point is found.
        if let Err(e) = consumer.pause(tpl) {
            tracing::warn!("merge step: cannot pause new partitions: {e}");
        }
    }

    fn revoked(&mut self, consumer: &Consumer, tpl: &TopicPartitionList, _cooperative: bool) {
        let qs: Vec<i32> = tpl
            .elements()
            .iter()
            .map(|e| e.partition())
            .filter(|q| self.owned.contains_key(q))
            .collect();
        if qs.is_empty() {
            return;
        }
        if !consumer.assignment_lost() {
            // What the records folded since the last round complete goes out first: a mark
            // says that every window up to its watermarks is emitted or pending in it.
            self.complete();
            self.final_marks(consumer, &qs);
        }
        for q in &qs {
            self.owned.remove(q);
            if let Some(m) = &self.metrics {
                for label in self.window_labels_of(*q) {
                    m.remove_window(&label);
                }
            }
        }
        tracing::info!(partitions = ?qs, "merge step: parts-topic partitions revoked");
    }
}
