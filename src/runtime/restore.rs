//! Restoring a partition when it is assigned (SPEC §7), off the polling thread so that a
//! large state never keeps the consumer from polling past `max.poll.interval.ms`.
//!
//! A restore writes a *sentinel* record to the partition's state-topic partition and learns
//! its offset from the delivery report, then reads the partition from the beginning up to
//! it — so it knows it has read everything, without trusting the high watermark (which some
//! brokers get wrong, GUIDE §5). It keeps the last record per key after the last reset marker
//! ([`state::LogImage`]), picks the latest complete checkpoint ([`state::restore`]), checks
//! that it was written by this format, configuration and partition count, and rebuilds the
//! partition. The polling thread then installs it, writes the cleanup records, seeks the
//! input to the checkpoint's position and resumes the partition.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::{Config, CreateClient as _};
use crate::engine::{Observer, RestoredPartition};
use crate::state::{self, Key, LogImage, Restored};

/// How long a restore may take to read its state partition before it gives up.
const READ_BUDGET: Duration = Duration::from_secs(600);

/// What a restore found.
pub enum Found {
    /// A checkpoint, rebuilt.
    Checkpoint {
        /// The partition, ready to install.
        built: Box<RestoredPartition>,
        /// The checkpoint (manifest, advances, cleanup; its bulky parts emptied).
        restored: Box<Restored>,
    },
    /// No checkpoint: the partition starts empty.
    Empty {
        /// Whether the state was reset on purpose (`cxstream state reset`).
        reset: bool,
        /// The group's committed offsets of the partition's input topics, if any.
        committed: Vec<(String, i64)>,
        /// What earlier runs left: cleanup records, idle advances to replay, generations.
        leftovers: state::Leftovers,
    },
}

/// The result of one restore, sent to the polling thread.
pub struct Done {
    /// The input partition.
    pub partition: i32,
    /// Which assignment of the partition it was for (a stale result is ignored).
    pub epoch: u64,
    /// What it found, or why it failed.
    pub result: Result<Found>,
    /// How long it took.
    pub elapsed: Duration,
    /// Bytes read from the state topic.
    pub bytes: u64,
}

/// What a restore needs to know.
pub struct Job {
    /// The configuration.
    pub cfg: Arc<Config>,
    /// The input partition.
    pub partition: i32,
    /// Its assignment epoch.
    pub epoch: u64,
    /// The input topics' partition count now.
    pub input_partitions: i32,
    /// The observer fork for the rebuilt partition.
    pub observer: Option<Box<dyn Observer>>,
}

/// Starts a restore in its own thread; the result goes to `tx`.
pub fn spawn(job: Job, tx: Sender<Done>) {
    let name = format!("cxstream-restore-{}", job.partition);
    let (partition, epoch) = (job.partition, job.epoch);
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name(name).spawn({
        let tx = tx.clone();
        move || {
            let mut bytes = 0;
            let result = run(job, &mut bytes);
            let _ = tx.send(Done {
                partition,
                epoch,
                result,
                elapsed: started.elapsed(),
                bytes,
            });
        }
    });
    if let Err(e) = spawned {
        let _ = tx.send(Done {
            partition,
            epoch,
            result: Err(anyhow!("cannot start a restore thread: {e}")),
            elapsed: started.elapsed(),
            bytes: 0,
        });
    }
}

fn run(job: Job, bytes: &mut u64) -> Result<Found> {
    let cfg = &job.cfg;
    let topic = cfg.kafka.state_topic();
    let p = job.partition;
    let image = read_partition(cfg, &topic, p)?;
    *bytes = image.bytes;
    let restored = state::restore(&image)
        .with_context(|| format!("the checkpoint of partition {p} in {topic} cannot be read"))?;
    let Some(mut r) = restored else {
        return Ok(Found::Empty {
            reset: image.reset,
            committed: committed_offsets(cfg, p)?,
            leftovers: state::leftovers(&image)
                .with_context(|| format!("partition {p} of {topic} cannot be read"))?,
        });
    };
    let m = &r.manifest;
    if m.format != state::FORMAT_VERSION {
        bail!(
            "the checkpoint of partition {p} in {topic} has format version {}, this cxstream reads {}: \
             run the version that wrote it, or `cxstream state reset` to start the group from scratch",
            m.format,
            state::FORMAT_VERSION
        );
    }
    if m.input_partitions != job.input_partitions {
        bail!(
            "the checkpoint of partition {p} was written when the input had {} partitions; it has {} now, \
             so customers hash to other partitions: run `cxstream state reset` to start the group from scratch \
             (or restore the old partition count)",
            m.input_partitions,
            job.input_partitions
        );
    }
    if m.fingerprint != cfg.fingerprint() {
        bail!(
            "the checkpoint of partition {p} was written with another configuration of windows, groups, \
             lateness, retention, SLA targets, signals or input bounds: restore that configuration, or run \
             `cxstream state reset` to start the group from scratch with this one"
        );
    }
    let built = RestoredPartition::build(Arc::clone(cfg), p, job.observer, &r)
        .with_context(|| format!("cannot rebuild partition {p} from its checkpoint"))?;
    // The bulk has been used; keep the manifest, advances and cleanup.
    r.core = Vec::new();
    r.entities = Vec::new();
    r.dedup = Vec::new();
    Ok(Found::Checkpoint {
        built: Box::new(built),
        restored: Box::new(r),
    })
}

/// Reads partition `p` of the state topic up to a sentinel written now.
pub fn read_partition(cfg: &Config, topic: &str, p: i32) -> Result<LogImage> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()) << 32;
    let key = Key::Sentinel(nonce).bytes();
    write_sentinel(cfg, topic, p, &key)?;
    let mut cc = cfg.kafka.client_config();
    cc.set("group.id", format!("{}.restore", cfg.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest");
    crate::source::kafka::short_fetch_wait(&mut cc);
    let consumer: BaseConsumer = cc
        .create_masked()
        .context("cannot create a consumer for the restore")?;
    let mut tpl = TopicPartitionList::new();
    // The log's start as an offset, not `Offset::Beginning`: librdkafka resolves a logical
    // offset with a ListOffsets request, and a consumer this new has no leader for the
    // partition yet, so it tried again after a fixed 500 ms (`rd_kafka_toppar_offset_request`):
    // 0.5 of the 0.6 s a restore of an empty partition took. Asking for the watermarks takes
    // one round trip. (Should the start move before the fetch, `auto.offset.reset=earliest`
    // takes the new one; should the question fail, the logical offset serves as before.)
    let start = match consumer.fetch_watermarks(topic, p, Duration::from_secs(10)) {
        Ok((low, _)) => Offset::Offset(low),
        Err(e) => {
            tracing::debug!(
                partition = p,
                "restore: no watermarks ({e}); reading from the beginning"
            );
            Offset::Beginning
        }
    };
    tpl.add_partition_offset(topic, p, start)
        .context("restore assignment")?;
    consumer
        .assign(&tpl)
        .context("cannot read the state topic")?;
    let mut image = LogImage::default();
    let deadline = Instant::now() + READ_BUDGET;
    loop {
        if Instant::now() > deadline {
            bail!("reading partition {p} of the state topic {topic} did not reach its end within {} s", READ_BUDGET.as_secs());
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(e)) => tracing::debug!("restore of partition {p}: {e} (retrying)"),
            Some(Ok(m)) => {
                let k = m.key().unwrap_or_default();
                if k == key.as_slice() {
                    return Ok(image);
                }
                image.apply(k, m.payload());
            }
        }
    }
}

/// Delivery reports of the sentinel producer.
struct Reports(std::sync::Mutex<Vec<Result<(), String>>>);
impl rdkafka::ClientContext for Reports {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        crate::logs::log_librdkafka(
            "restore",
            &crate::logs::LogLimiter::default(),
            level,
            fac,
            msg,
        );
    }
}
impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Ok(mut v) = self.0.lock() {
            v.push(r.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string()));
        }
    }
}

/// Writes the sentinel, again until it is acknowledged (brokers fail writes for a while in
/// an outage) or two minutes have passed.
fn write_sentinel(cfg: &Config, topic: &str, p: i32, key: &[u8]) -> Result<()> {
    let producer: BaseProducer<Reports> = cfg
        .kafka
        .client_config()
        .set("acks", "all")
        .create_masked_with(Reports(std::sync::Mutex::new(Vec::new())))
        .context("cannot create a producer for the restore")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < deadline {
        // A non-empty value: some brokers never return records with an empty one (GUIDE §5).
        let sent = producer.send(
            BaseRecord::<[u8], [u8]>::to(topic)
                .partition(p)
                .key(key)
                .payload(b"sentinel"),
        );
        if let Err((e, _)) = sent {
            last = e.to_string();
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        crate::sink::wait_acknowledged(&[&producer], Duration::from_secs(60));
        let reports = std::mem::take(
            &mut *producer
                .context()
                .0
                .lock()
                .map_err(|_| anyhow!("poisoned"))?,
        );
        match reports.last() {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => last = e.clone(),
            None => last = "no delivery report".into(),
        }
        tracing::warn!(
            partition = p,
            "restore: writing to the state topic failed ({last}); retrying"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("cannot write to the state topic {topic} partition {p} for two minutes: {last}")
}

/// The group's committed offsets of partition `p` of the input topics (those set).
fn committed_offsets(cfg: &Config, p: i32) -> Result<Vec<(String, i64)>> {
    let consumer: BaseConsumer = cfg
        .kafka
        .client_config()
        .set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .create_masked()
        .context("cannot create a consumer to read the committed offsets")?;
    let mut tpl = TopicPartitionList::new();
    for t in &cfg.kafka.input_topics {
        tpl.add_partition(t, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .context("cannot read the group's committed offsets")?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((e.topic().to_string(), o)),
            _ => None,
        })
        .collect())
}
