//! The Kafka source of `run`: one `BaseConsumer` in group `kafka.group_id`, subscribed to
//! `kafka.input_topics`, with its configuration, its callbacks (librdkafka logs, statistics
//! for consumer lag, rebalances) and the step from a message to the engine.
//!
//! The consumer gets every `kafka.librdkafka` property, then `group.id`,
//! `enable.auto.commit=false`, `enable.auto.offset.store=false` and `enable.partition.eof=true`
//! (the commit protocol of [`crate::runtime`] needs them), and `auto.offset.reset=earliest`
//! and `fetch.wait.max.ms=20` ([`FETCH_WAIT_MAX_MS`]) unless set. Rebalance callbacks run inside `poll`, on the polling thread; they hand the
//! assignment to a [`Rebalance`] handler (the runtime's pipeline) behind a mutex that the poll
//! loop never holds while it polls, so it is never contended.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use super::{feed_routed, Admission, Fed, Route};
use crate::config::{Config, CreateClient as _};
use crate::engine::Engine;
use crate::event::SourcePos;
use crate::logs::{log_librdkafka, LogLimiter};
use crate::metrics::Metrics;

/// What the consumer tells the pipeline about its assignment.
pub trait Rebalance: Send + Sized + 'static {
    /// Partitions were assigned; the handler may set their start offsets in `tpl`.
    fn assigned(&mut self, tpl: &mut TopicPartitionList);
    /// The assignment took effect (e.g. to pause partitions until their state is restored).
    fn after_assign(
        &mut self,
        _consumer: &BaseConsumer<SourceContext<Self>>,
        _tpl: &TopicPartitionList,
    ) {
    }
    /// Partitions are about to be released (or were lost).
    fn revoked(
        &mut self,
        consumer: &BaseConsumer<SourceContext<Self>>,
        tpl: &TopicPartitionList,
        cooperative: bool,
    );
}

/// The consumer's context: rebalance callbacks, librdkafka logs and statistics.
pub struct SourceContext<H> {
    /// The pipeline the assignment is reported to.
    handler: Arc<Mutex<H>>,
    /// Consumer lag goes here (from librdkafka's statistics).
    metrics: Option<Arc<Metrics>>,
    /// Rate limit for warnings.
    warn: LogLimiter,
}

/// Locks a mutex, taking over a poisoned one (its data is still consistent: every update of
/// the pipeline completes before anything can panic).
pub fn lock<H>(m: &Mutex<H>) -> MutexGuard<'_, H> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<H: Rebalance> ClientContext for SourceContext<H> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_librdkafka("consumer", &self.warn, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let KafkaError::Global(RDKafkaErrorCode::PartitionEOF) = error {
            return; // also delivered by poll: the normal "caught up" signal
        }
        if let Some(n) = self.warn.allow() {
            tracing::warn!(suppressed = n, "kafka consumer: {error}: {reason}");
        }
    }

    fn stats(&self, stats: Statistics) {
        let Some(m) = &self.metrics else {
            return;
        };
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                if *id < 0 || !p.desired || p.app_offset < 0 || p.hi_offset < 0 {
                    continue;
                }
                m.set_consumer_lag(name, *id, (p.hi_offset - p.app_offset).max(0));
            }
        }
    }
}

impl<H: Rebalance> ConsumerContext for SourceContext<H> {
    /// The answer to an offset commit. librdkafka answers only commits made with a callback
    /// or a reply queue; cxstream's are asynchronous without either (never waited for), so a
    /// failed one shows as librdkafka's own `COMMITFAIL` warning instead, and is made good by
    /// the next checkpoint interval, which commits idle partitions again
    /// (`Pipeline::maybe_checkpoint`).
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                if let Some(n) = self.warn.allow() {
                    tracing::warn!(
                        suppressed = n,
                        "offset commit failed ({e}); the next checkpoint commits again"
                    );
                }
            }
        }
    }

    /// Replaces rdkafka's default so that an assignment can start partitions at this
    /// instance's own positions (state kept across an eager rebalance).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut h = lock(&self.handler);
                h.assigned(tpl);
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if r.is_ok() {
                    h.after_assign(consumer, tpl);
                }
                r
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                lock(&self.handler).revoked(consumer, tpl, cooperative);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(
                    "rebalance error: {:?}; releasing the assignment",
                    RDKafkaErrorCode::from(other)
                );
                let all = consumer.assignment().unwrap_or_default();
                lock(&self.handler).revoked(consumer, &all, false);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!("cannot apply the rebalance: {e}");
        }
    }
}

/// `fetch.wait.max.ms` of cxstream's consumers unless `kafka.librdkafka` sets it.
pub const FETCH_WAIT_MAX_MS: &str = "20";

/// Sets `fetch.wait.max.ms` to [`FETCH_WAIT_MAX_MS`] unless `kafka.librdkafka` sets it: every
/// consumer of cxstream's (input, merge step, restore, marks).
///
/// Latency (issue 10): a broker that does not answer a fetch as soon as data arrives
/// (librdkafka's mock cluster, Tansu) holds a fetch for the whole fetch.wait.max.ms
/// (librdkafka's default 500 ms: p50 291 ms, max 501 ms from produce to consume on the mock
/// cluster; 11 / 21 ms at 20 ms; a restore of an empty state partition on Tansu took 0.6 s,
/// 0.5 s of it one fetch of its sentinel). Kafka answers early anyway, so a short wait only
/// costs idle fetch requests.
pub fn short_fetch_wait(cc: &mut rdkafka::ClientConfig) {
    if cc.get("fetch.wait.max.ms").is_none() {
        cc.set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS);
    }
}

/// Creates the consumer (see the module docs for the properties it gets) and subscribes it to
/// the input topics; assignments go to `handler`.
pub fn consumer<H: Rebalance>(
    cfg: &Config,
    handler: Arc<Mutex<H>>,
    metrics: Option<Arc<Metrics>>,
) -> Result<BaseConsumer<SourceContext<H>>> {
    let k = &cfg.kafka;
    consumer_of(cfg, &k.group_id, &k.input_topics, handler, metrics)
}

/// A consumer like [`consumer`] in group `group`, subscribed to `topics`.
pub fn consumer_of<H: Rebalance>(
    cfg: &Config,
    group: &str,
    topics: &[String],
    handler: Arc<Mutex<H>>,
    metrics: Option<Arc<Metrics>>,
) -> Result<BaseConsumer<SourceContext<H>>> {
    let k = &cfg.kafka;
    let mut cc = k.client_config();
    cc.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    if cc.get("auto.offset.reset").is_none() {
        cc.set("auto.offset.reset", "earliest");
    }
    short_fetch_wait(&mut cc);
    if metrics.is_some() && cc.get("statistics.interval.ms").is_none() {
        cc.set("statistics.interval.ms", "5000");
    }
    let consumer: BaseConsumer<SourceContext<H>> = cc
        .create_masked_with(SourceContext {
            handler,
            metrics,
            warn: LogLimiter::default(),
        })
        .context("cannot create the Kafka consumer (check kafka.librdkafka settings)")?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("cannot subscribe to {topics:?}"))?;
    tracing::info!(
        bootstrap = %k.bootstrap_servers,
        group,
        ?topics,
        "consuming"
    );
    Ok(consumer)
}

/// Closes `consumer` (its last revoke, leaving the group) on a thread of its own and waits
/// for it at most `budget`: `true` if it closed in time. A group coordinator that holds a
/// commit or the leave (during a rebalance, or unreachable) cannot hold the caller longer;
/// the close goes on in the background until the process exits.
pub fn close_within<T: Send + 'static>(what: &str, consumer: T, budget: Duration) -> bool {
    match std::thread::Builder::new()
        .name(format!("close-{what}"))
        .spawn(move || drop(consumer))
    {
        Ok(t) => crate::shutdown::join_within(t, budget),
        // Could not spawn: the closure (and the consumer) were dropped right here.
        Err(_) => true,
    }
}

/// One input message into the engine, through the one decode path. The engine state of a
/// message is its partition number; a message without a value is an empty payload (and is
/// dead-lettered like any invalid input). Time from the future is judged against the
/// message's own timestamp (SPEC §1), so a re-read decides the same.
pub fn feed_message(engine: &mut Engine, msg: &BorrowedMessage<'_>, adm: &Admission) -> Fed {
    let partition = msg.partition();
    let adm = adm.at(msg.timestamp().to_millis());
    let pos = || SourcePos::Kafka {
        topic: msg.topic().to_string(),
        partition,
        offset: msg.offset(),
    };
    feed_routed(
        engine,
        Route::Fixed(partition),
        msg.payload().unwrap_or_default(),
        pos,
        &adm,
    )
}
