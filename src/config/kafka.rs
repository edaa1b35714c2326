//! `[kafka]`: the cluster, consumer group, topics and librdkafka properties.

use super::{Dur, Librdkafka};
use crate::ts::SECOND;
use serde::Deserialize;

/// `[kafka]`: the cluster, consumer group and topics of `cxstream run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from, default `localhost:9092`.
    pub bootstrap_servers: String,
    /// Consumer group: instances sharing it split the input partitions, default `cxstream`.
    pub group_id: String,
    /// Topics holding input events (recommended key: the customer id), default `["cx.events"]`.
    pub input_topics: Vec<String>,
    /// Where `kpi.window`, `sla.breached`, `churn.risk` and `recovery.*` records go, default
    /// `cx.kpi`.
    pub output_topic: String,
    /// Where invalid, orphan and `ticket exists` events go with their source position,
    /// default `cx.deadletter`.
    pub deadletter_topic: String,
    /// How often each partition's state is checkpointed to the state topic (SPEC §7; also on
    /// revoke and shutdown), default 10s. Group offsets are committed with each checkpoint.
    /// (`commit_interval`, its old name, is accepted.)
    #[serde(alias = "commit_interval")]
    pub checkpoint_interval: Dur,
    /// How long a graceful stop (SIGTERM, Ctrl-C) may take in all, default 25s: the final
    /// checkpoints, the outputs' acknowledgements, the merge step's marks and leaving the
    /// consumer groups. What is not done by then is left as a crash would leave it (the input
    /// after the last checkpoint is processed again); keep it below the grace period of the
    /// container runtime (Kubernetes: 30 s; docker-compose.yml sets 30 s).
    pub shutdown_timeout: Dur,
    /// The compacted state topic holding the checkpoints (created with the input's partition
    /// count if missing), default `<group_id>.state`.
    pub state_topic: String,
    /// The topic through which instances send window parts and watermarks to the merge step
    /// (SPEC §7; created with the input's partition count if missing), default
    /// `<output_topic>.parts`.
    pub parts_topic: String,
    /// Any librdkafka property, passed through unchanged to consumer and producer
    /// (e.g. `"security.protocol" = "SASL_SSL"`); `"<property>.file" = path` reads a value
    /// from a file. Secret values are masked in `Debug` ([`secrets`]).
    pub librdkafka: Librdkafka,
}

impl KafkaConfig {
    /// The state topic: `state_topic`, or `<group_id>.state`.
    pub fn state_topic(&self) -> String {
        if self.state_topic.is_empty() {
            format!("{}.state", self.group_id)
        } else {
            self.state_topic.clone()
        }
    }

    /// The parts topic: `parts_topic`, or `<output_topic>.parts`.
    pub fn parts_topic(&self) -> String {
        if self.parts_topic.is_empty() {
            format!("{}.parts", self.output_topic)
        } else {
            self.parts_topic.clone()
        }
    }

    /// The merge step's consumer group: `<group_id>.merge`.
    pub fn merge_group_id(&self) -> String {
        format!("{}.merge", self.group_id)
    }

    /// librdkafka's base client configuration: bootstrap servers and every pass-through
    /// property. Create clients from it with [`CreateClient`](super::CreateClient), whose errors never show a
    /// secret.
    pub fn client_config(&self) -> rdkafka::config::ClientConfig {
        let mut cc = rdkafka::config::ClientConfig::new();
        cc.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, v) in &self.librdkafka {
            cc.set(key, v);
        }
        cc
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "localhost:9092".into(),
            group_id: "cxstream".into(),
            input_topics: vec!["cx.events".into()],
            output_topic: "cx.kpi".into(),
            deadletter_topic: "cx.deadletter".into(),
            checkpoint_interval: Dur(10 * SECOND),
            shutdown_timeout: Dur(25 * SECOND),
            state_topic: String::new(),
            parts_topic: String::new(),
            librdkafka: Librdkafka::default(),
        }
    }
}
