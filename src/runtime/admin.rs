//! Operator commands on a group's state (SPEC §7): `cxstream state inspect` shows each
//! partition's latest checkpoint; `cxstream state reset` starts the group from scratch on
//! purpose, like Kafka Streams' reset tool.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::restore::read_partition;
use super::topics;
use crate::config::{Config, CreateClient as _};
use crate::engine::parts::PartMsg;
use crate::state::{self, Key};
use crate::ts;

/// `cxstream state inspect`: one line per state partition.
pub fn inspect(cfg: &Config) -> Result<String> {
    let topic = cfg.kafka.state_topic();
    let probe: BaseConsumer = cfg
        .kafka
        .client_config()
        .create_masked()
        .context("cannot create a Kafka client")?;
    let Some(n) = topics::partition_count(&probe, &topic)? else {
        bail!(
            "the state topic {topic} does not exist: group {} never checkpointed",
            cfg.kafka.group_id
        );
    };
    let now = crate::replay::wall_clock_ms();
    let mut out = format!(
        "state topic {topic} (group {}), {n} partitions\n{:<9} {:>5} {:<28} {:>10} {:<24} {:>9} {:>9} {:>8} {:>10} {:>10}\n",
        cfg.kafka.group_id,
        "partition", "gen", "position", "age", "watermark", "tickets", "customers", "parts", "ckpt bytes", "topic bytes"
    );
    for p in 0..n {
        let image = read_partition(cfg, &topic, p)?;
        match state::restore(&image) {
            Ok(Some(r)) => {
                let m = &r.manifest;
                let pos: Vec<String> = m
                    .positions
                    .iter()
                    .map(|(t, o)| format!("{t}:{o}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{p:<9} {:>5} {:<28} {:>9}s {:<24} {:>9} {:>9} {:>8} {:>10} {:>10}{}",
                    m.gen,
                    pos.join(","),
                    (now - m.written_at) / 1000,
                    m.watermark.map_or("-".into(), ts::format_ms),
                    m.tickets,
                    m.customers,
                    m.window_parts,
                    m.bytes,
                    image.bytes,
                    if m.fingerprint != cfg.fingerprint() {
                        "  (written with another configuration)"
                    } else {
                        ""
                    }
                );
            }
            Ok(None) => {
                let _ = writeln!(
                    out,
                    "{p:<9} {:>5} {:<28}{}",
                    "-",
                    "no checkpoint",
                    if image.reset { " (reset)" } else { "" }
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{p:<9} unreadable: {e}");
            }
        }
    }
    Ok(out)
}

/// `cxstream state reset`: every state partition gets a reset marker (restores ignore what
/// precedes it) and tombstones for what it held; the group's committed offsets of the input
/// partitions go back to the earliest offset, so the next run reprocesses the input from the
/// beginning with empty state; the parts topic gets a reset marker in every partition, from
/// which the merge step starts afresh. Every instance of the group must be stopped.
pub fn reset(cfg: &Config) -> Result<String> {
    let topic = cfg.kafka.state_topic();
    let probe: BaseConsumer = cfg
        .kafka
        .client_config()
        .create_masked()
        .context("cannot create a Kafka client")?;
    let inputs = topics::input_partitions(&probe, cfg)?;
    let mut out = String::new();
    // The group's offsets first: committing fails while instances are members of the group.
    let group: BaseConsumer = cfg
        .kafka
        .client_config()
        .set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .create_masked()
        .context("cannot create a consumer for the group")?;
    let mut tpl = TopicPartitionList::new();
    for t in &cfg.kafka.input_topics {
        for p in 0..inputs {
            let (low, _) = group
                .fetch_watermarks(t, p, topics::METADATA_TIMEOUT)
                .with_context(|| format!("cannot read the start offset of {t}/{p}"))?;
            tpl.add_partition_offset(t, p, Offset::Offset(low))
                .context("offsets")?;
        }
    }
    // Join the group: alone in it, the consumer is assigned every input partition, and its
    // commit counts as the group's (brokers refuse commits from outside a group that has
    // members; a member that just left may count until its session times out).
    let topics: Vec<&str> = cfg.kafka.input_topics.iter().map(String::as_str).collect();
    group.subscribe(&topics).context("cannot join the group")?;
    let want = tpl.count();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = group.poll(Duration::from_millis(200));
        let owned = group.assignment().map(|a| a.count()).unwrap_or(0);
        if owned == want {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "group {} has other members (this reset owns {owned} of {want} input partitions): \
                 stop every instance of the group first",
                cfg.kafka.group_id
            );
        }
    }
    group.commit(&tpl, CommitMode::Sync).with_context(|| {
        format!(
            "cannot reset the committed offsets of group {}: stop every instance of the group first",
            cfg.kafka.group_id
        )
    })?;
    group.unsubscribe();
    let _ = writeln!(
        out,
        "group {}: committed offsets set to the earliest of {} input partition(s)",
        cfg.kafka.group_id,
        tpl.count()
    );
    let producer: BaseProducer = cfg
        .kafka
        .client_config()
        .set("acks", "all")
        .create_masked()
        .context("cannot create a producer")?;
    // The merge step forgets what it merged: the input is processed again from the start.
    let parts = cfg.kafka.parts_topic();
    if let Some(n) = topics::partition_count(&probe, &parts)? {
        let value = PartMsg::Reset.encode(cfg.fingerprint());
        for q in 0..n {
            send(
                &producer,
                &parts,
                q,
                PartMsg::Reset.key().as_bytes(),
                Some(&value),
            )?;
        }
        if !crate::sink::wait_acknowledged(&[&producer], Duration::from_secs(60)) {
            bail!("the parts topic did not acknowledge the reset within 60 s");
        }
        let _ = writeln!(
            out,
            "parts topic {parts}: reset marker written to {n} partition(s) (the merge step starts afresh)"
        );
    }
    let Some(n) = topics::partition_count(&probe, &topic)? else {
        let _ = writeln!(
            out,
            "state topic {topic} does not exist: nothing else to reset"
        );
        return Ok(out);
    };
    let now = crate::replay::wall_clock_ms().to_string();
    for p in 0..n {
        let image = read_partition(cfg, &topic, p)?;
        let keys: Vec<Vec<u8>> = image.keys().cloned().collect();
        // The marker first: a restore reading a partly applied reset still starts empty.
        send(
            &producer,
            &topic,
            p,
            &Key::Reset.bytes(),
            Some(now.as_bytes()),
        )?;
        for k in &keys {
            send(&producer, &topic, p, k, None)?;
        }
        let _ = writeln!(
            out,
            "state partition {p}: reset marker written, {} key(s) tombstoned",
            keys.len()
        );
    }
    if !crate::sink::wait_acknowledged(&[&producer], Duration::from_secs(60)) {
        bail!("the state topic did not acknowledge the reset within 60 s");
    }
    Ok(out)
}

fn send(
    producer: &BaseProducer,
    topic: &str,
    p: i32,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    let mut rec = BaseRecord::<[u8], [u8]>::to(topic).partition(p).key(key);
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    let mut rec = rec;
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((e, back)) => {
                if e.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                    bail!("cannot write to {topic}/{p}: {e}");
                }
                producer.poll(Duration::from_millis(50));
                rec = back;
            }
        }
    }
}
