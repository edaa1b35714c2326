//! Where a merge step starts (SPEC §7, [`super::merger`]): the merge group's committed offset
//! of a parts-topic partition, and the first mark at or after it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::merger::Consumer;
use crate::config::{Config, CreateClient as _};
use crate::engine::parts::{Mark, PartMsg};

/// How long finding a mark may take before it is tried again.
const LOCATE_BUDGET: Duration = Duration::from_secs(30);

/// The merge group's committed offset of parts-topic partition `q`, if any.
pub(super) fn committed(consumer: &Consumer, topic: &str, q: i32) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, q);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .context("cannot read the merge group's committed offsets")?;
    Ok(got.elements().iter().find_map(|e| match e.offset() {
        Offset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }))
}

/// The first mark at or after offset `from` of parts-topic partition `q` (`None` if there is
/// none up to the end).
pub(super) fn find_mark(
    cfg: &Config,
    topic: &str,
    q: i32,
    from: i64,
    fingerprint: u64,
) -> Result<Option<Mark>> {
    let mut cc = cfg.kafka.client_config();
    cc.set("group.id", cfg.kafka.merge_group_id())
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    crate::source::kafka::short_fetch_wait(&mut cc);
    let consumer: BaseConsumer = cc
        .create_masked()
        .context("cannot create a consumer to find the merge step's mark")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, q, Offset::Offset(from))
        .context("mark assignment")?;
    consumer
        .assign(&tpl)
        .context("cannot read the parts topic")?;
    let deadline = Instant::now() + LOCATE_BUDGET;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
            Some(Err(e)) => tracing::debug!("finding the mark of parts partition {q}: {e}"),
            Some(Ok(m)) => {
                if m.key() != Some(b"mark".as_slice()) {
                    continue;
                }
                if let Ok(PartMsg::Mark(mark)) =
                    PartMsg::decode(m.payload().unwrap_or_default(), fingerprint)
                {
                    return Ok(Some(mark));
                }
            }
        }
    }
    anyhow::bail!(
        "no mark found in parts topic {topic} partition {q} after offset {from} within {} s",
        LOCATE_BUDGET.as_secs()
    )
}
