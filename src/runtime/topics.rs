//! Topic metadata the runtime needs: the partition count of the input topics (the partitions a
//! window waits for, SPEC §2), the state topic, created if missing with the input's
//! partition count and `cleanup.policy=compact`, and the parts topic (SPEC §7).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::config::{Config, CreateClient as _};

/// Timeout of a metadata request.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The partition count of `topic`, if it exists.
pub fn partition_count<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Option<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .filter(|n| *n > 0))
}

/// The partition count of the input topics; they must all have the same (co-partitioned by
/// customer).
pub fn input_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &Config,
) -> Result<i32> {
    let mut n = None;
    for t in &cfg.kafka.input_topics {
        let Some(c) = partition_count(consumer, t)? else {
            bail!("input topic {t} does not exist (create it, keyed by customer id)");
        };
        match n {
            Some(m) if m != c => bail!(
                "input topics must have the same partition count (co-partitioned by customer): {t} has {c}, another has {m}"
            ),
            _ => n = Some(c),
        }
    }
    n.context("kafka.input_topics is empty")
}

/// The high watermark of every input partition (where a bounded run stops).
pub fn end_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &Config,
    partitions: i32,
) -> Result<std::collections::BTreeMap<(String, i32), i64>> {
    let mut out = std::collections::BTreeMap::new();
    for t in &cfg.kafka.input_topics {
        for p in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(t, p, METADATA_TIMEOUT)
                .with_context(|| format!("cannot read the end offset of {t}/{p}"))?;
            out.insert((t.clone(), p), high);
        }
    }
    Ok(out)
}

/// Warns when an existing state topic is not compacted: with `cleanup.policy=delete` the
/// broker deletes checkpoints by age, and a restore then finds them incomplete (SPEC §7). A
/// broker that cannot describe topic configurations is not an error.
fn check_cleanup_policy(cfg: &Config, topic: &str) {
    let policy = (|| -> Result<Option<String>> {
        let admin: AdminClient<DefaultClientContext> = cfg.kafka.client_config().create_masked()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let res = rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(15),
                admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts),
            )
            .await
        })??;
        Ok(res
            .into_iter()
            .flatten()
            .next()
            .and_then(|r| r.get("cleanup.policy").and_then(|e| e.value.clone())))
    })();
    match policy {
        Ok(Some(p)) if !p.contains("compact") => tracing::warn!(
            topic,
            policy = %p,
            "the state topic is not compacted: the broker will delete checkpoints by age and \
             restores will fail; set cleanup.policy=compact on it (kafka-configs --alter \
             --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact)"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(topic, "cannot read the state topic's cleanup.policy: {e:#}"),
    }
}

/// Makes sure the state topic exists with `partitions` partitions (SPEC §7): created if
/// missing (compacted); an existing one with another count is an error that says what to do.
pub fn ensure_state_topic<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &Config,
    partitions: i32,
) -> Result<()> {
    let topic = cfg.kafka.state_topic();
    match partition_count(consumer, &topic)? {
        Some(n) if n == partitions => {
            // In the background: a broker that does not answer DescribeConfigs (librdkafka's
            // mock cluster) must not delay the start by the request timeout.
            let (cfg, topic) = (cfg.clone(), topic.clone());
            std::thread::spawn(move || check_cleanup_policy(&cfg, &topic));
            return Ok(());
        }
        Some(n) => bail!(
            "the state topic {topic} has {n} partitions but the input has {partitions}: \
             the input's partition count changed (customers now hash to other partitions); \
             run `cxstream state reset` to start the group from scratch, or restore the old partition count"
        ),
        None => {}
    }
    create_topic(consumer, cfg, &topic, "state", partitions, Some("compact"))
}

/// Makes sure the parts topic (SPEC §7 several instances) exists: created if missing with
/// the input's partition count and the broker's default (`delete`) cleanup policy. Returns
/// its partition count (an existing topic keeps its own).
pub fn ensure_parts_topic<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &Config,
    partitions: i32,
) -> Result<i32> {
    let topic = cfg.kafka.parts_topic();
    if let Some(n) = partition_count(consumer, &topic)? {
        return Ok(n);
    }
    create_topic(consumer, cfg, &topic, "parts", partitions, None)?;
    Ok(partitions)
}

/// Creates `topic` (the `what` topic) with `partitions` partitions and, if given, a cleanup
/// policy; an existing one is not an error. Waits until the metadata shows it.
fn create_topic<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &Config,
    topic: &str,
    what: &str,
    partitions: i32,
    cleanup: Option<&str>,
) -> Result<()> {
    let policy = cleanup.map_or(String::new(), |c| format!(" and cleanup.policy={c}"));
    tracing::info!(topic, partitions, cleanup, "creating the {what} topic");
    let admin: AdminClient<DefaultClientContext> = cfg
        .kafka
        .client_config()
        .create_masked()
        .context("cannot create a Kafka admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime for the admin client")?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    if let Some(c) = cleanup {
        new = new.set("cleanup.policy", c);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(15), admin.create_topics([&new], &opts)).await
    });
    match res {
        Ok(Ok(results)) => {
            for r in results {
                if let Err((t, e)) = r {
                    if e != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                        bail!("cannot create the {what} topic {t}: {e} (create it with {partitions} partitions{policy})");
                    }
                }
            }
        }
        Ok(Err(e)) => bail!(
            "cannot create the {what} topic {topic}: {e} (create it with {partitions} partitions{policy})"
        ),
        Err(_) => bail!(
            "creating the {what} topic {topic} timed out (create it with {partitions} partitions{policy})"
        ),
    }
    // Wait until the metadata shows it.
    for _ in 0..50 {
        if partition_count(consumer, topic)?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the {what} topic {topic} was created but does not show in the metadata")
}
