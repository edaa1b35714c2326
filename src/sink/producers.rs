//! The sink's librdkafka producers: one for every record, and — created on the first record
//! sent after its parts ([`super::lanes`]: parts-topic watermarks and end markers) — one of
//! their own for those.
//!
//! Why two: a watermark waits for the parts before it to be acknowledged, then goes out. On
//! the one producer it was queued behind whatever else was in flight on that broker
//! connection — batches of alerts, checkpoint slices of a few MB — and windows completed
//! about 60 ms later at the median (live run at 20k events/s). On a connection of their own,
//! watermarks are small requests answered at once. Their parts are already acknowledged when
//! they go, so the order holds across the two producers. The parts themselves stay on the main
//! producer: a producer of their own cost a third more CPU and 1.7× the time on a backlog
//! (many small requests to the broker, its queue full three times as often).
//!
//! Both share the delivery callbacks' [`Shared`] (sequence numbers, failures, queue
//! occupancy), so the sink's acknowledgement and resend logic sees one stream of records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext, PurgeConfig};

use super::delivery::{Shared, SinkContext};
use crate::config::CreateClient as _;
use crate::shutdown::Shutdown;

/// How long [`wait_acknowledged`] polls before it looks again.
const FLUSH_POLL: Duration = Duration::from_millis(2);

/// Waits up to `budget` for `producers` to have nothing in flight, serving their delivery
/// reports (the first one's for up to [`FLUSH_POLL`] at a time, the others' without
/// waiting): `true` when they are all empty. Not rust-rdkafka's `flush`: that one waits in
/// polls of 100 ms, and its `poll` returns at its deadline, not at the first report, so an
/// acknowledgement that came 5 ms in was seen 100 ms in (a restore's one-record write took
/// 100 ms on Tansu, 5 ms with short polls). Every wait of cxstream's for its producers goes
/// through here: the sink's, the restore's sentinel, `state reset`, a replaced producer.
pub fn wait_acknowledged<C: ProducerContext>(
    producers: &[&BaseProducer<C>],
    budget: Duration,
) -> bool {
    let deadline = Instant::now() + budget;
    loop {
        if producers.iter().all(|p| p.in_flight_count() <= 0) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        for (i, p) in producers.iter().enumerate() {
            p.poll(if i == 0 {
                left.min(FLUSH_POLL)
            } else {
                Duration::ZERO
            });
        }
    }
}

/// Which producer a record goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// Every record but those below.
    Main,
    /// Records sent after their parts: parts-topic watermarks and end markers.
    After,
}

/// The producers of one sink.
pub(super) struct Producers {
    main: BaseProducer<SinkContext>,
    after: Option<BaseProducer<SinkContext>>,
    config: ClientConfig,
    shared: Arc<Shared>,
    /// The topics it writes, whose metadata the main producer and a replacement fetch.
    topics: Vec<String>,
}

impl Producers {
    /// The main producer (the other comes with the first record sent after its parts).
    pub(super) fn new(config: ClientConfig, shared: Arc<Shared>) -> Result<Producers> {
        Ok(Producers {
            main: create(&config, &shared, &[])?,
            after: None,
            config,
            shared,
            topics: Vec::new(),
        })
    }

    /// Fetches the metadata of `topics` (the ones the sink will write) into the main producer
    /// now, and into one that replaces a producer later: a first record to a topic then never
    /// waits for a metadata request, which librdkafka sends to any broker — if that is the one
    /// not answering (a group coordinator stuck in a rebalance), the first state-topic write
    /// of a final checkpoint waited for it past `kafka.shutdown_timeout`. The second producer
    /// is not given them: it is created for its first record, whose metadata it asks for then
    /// anyway, and its creation (in the poll loop) must not wait for the others'.
    pub(super) fn learn_topics(&mut self, topics: &[String]) {
        self.topics = topics.to_vec();
        learn(&self.main, &self.topics);
    }

    /// The producer for `w`. If the second producer cannot be created, the main one serves
    /// (order is kept either way; only latency differs).
    pub(super) fn get(&mut self, w: Which) -> &BaseProducer<SinkContext> {
        if w == Which::After && self.after.is_none() {
            match create(&self.config, &self.shared, &[]) {
                Ok(p) => self.after = Some(p),
                Err(e) => {
                    if let Some(n) = self.shared.warn.allow() {
                        tracing::warn!(
                            suppressed = n,
                            "{e:#}; watermarks share the output producer"
                        );
                    }
                }
            }
        }
        self.of(w)
    }

    /// The producer serving `w` now (the main one while there is no second).
    fn of(&self, w: Which) -> &BaseProducer<SinkContext> {
        match (w, &self.after) {
            (Which::After, Some(p)) => p,
            _ => &self.main,
        }
    }

    /// Serves delivery reports: the second producer's without waiting, the main one's for up
    /// to `d`.
    pub(super) fn poll(&self, d: Duration) {
        if let Some(p) = &self.after {
            p.poll(Duration::ZERO);
        }
        self.main.poll(d);
    }

    /// Records handed over and not reported yet, in both producers.
    pub(super) fn in_flight(&self) -> usize {
        let (main, after) = self.in_flight_each();
        main + after
    }

    /// Records in flight in each: the main producer's, the second one's (for the warning
    /// that names which one a stop waited for).
    pub(super) fn in_flight_each(&self) -> (usize, usize) {
        let n = |p: &BaseProducer<SinkContext>| p.in_flight_count().max(0) as usize;
        (n(&self.main), self.after.as_ref().map_or(0, n))
    }

    /// Waits up to `step` for both to have nothing in flight, serving their delivery reports:
    /// `true` when both are empty ([`wait_acknowledged`]).
    pub(super) fn flush(&self, step: Duration) -> bool {
        match &self.after {
            Some(after) => wait_acknowledged(&[&self.main, after], step),
            None => wait_acknowledged(&[&self.main], step),
        }
    }

    /// A producer that hit a fatal error, if one did.
    pub(super) fn fatal(&self) -> Option<Which> {
        if self.main.client().fatal_error().is_some() {
            return Some(Which::Main);
        }
        let p = self.after.as_ref()?;
        p.client().fatal_error().is_some().then_some(Which::After)
    }

    /// Replaces producer `w` after a fatal error. Its unacknowledged records come back as
    /// failed deliveries (purged) and are sent again by the sink.
    pub(super) fn replace(&mut self, w: Which, err: &KafkaError, shutdown: &Shutdown) {
        let old = self.of(w);
        let reason = old
            .client()
            .fatal_error()
            .map_or_else(|| err.to_string(), |(c, s)| format!("{c}: {s}"));
        tracing::error!("kafka producer: fatal error ({reason}); replacing the producer");
        old.purge(PurgeConfig::default().queue().inflight());
        wait_acknowledged(&[old], Duration::from_secs(1));
        loop {
            match create(&self.config, &self.shared, &self.topics) {
                Ok(p) => {
                    // The old producer's drop serves what is left of its delivery reports.
                    match w {
                        Which::After if self.after.is_some() => self.after = Some(p),
                        _ => self.main = p,
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!("kafka producer: cannot create a new producer: {e:#}");
                    if shutdown.sleep(Duration::from_secs(1)) {
                        // Keep the failed producer: nothing more is acknowledged, so nothing
                        // more is committed; the next run takes over.
                        return;
                    }
                }
            }
        }
    }
}

fn create(
    config: &ClientConfig,
    shared: &Arc<Shared>,
    topics: &[String],
) -> Result<BaseProducer<SinkContext>> {
    let p = config
        .create_masked_with(SinkContext {
            shared: Arc::clone(shared),
        })
        .context("cannot create the Kafka producer (check kafka.librdkafka settings)")?;
    learn(&p, topics);
    Ok(p)
}

/// How long a producer waits for its topics' metadata in all ([`Producers::learn_topics`]).
const METADATA_WAIT: Duration = Duration::from_secs(10);

/// Fetches the metadata of `topics` into producer `p`'s cache, for [`METADATA_WAIT`] at
/// most; a failure is only a warning (the first record to that topic asks again).
fn learn(p: &BaseProducer<SinkContext>, topics: &[String]) {
    let deadline = Instant::now() + METADATA_WAIT;
    for t in topics {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = p.client().fetch_metadata(Some(t), left) {
            tracing::warn!(
                topic = %t,
                "kafka producer: cannot fetch the topic's metadata ({e}); its first record will ask again"
            );
        }
    }
}
