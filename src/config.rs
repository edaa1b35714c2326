//! Typed configuration: TOML file + `CXSTREAM_*` environment overrides, validated, with every
//! default taken from SPEC. `config/cxstream.toml` documents each option.
//!
//! Environment overrides name a path with `__` between levels, e.g.
//! `CXSTREAM_ENGINE__ALLOWED_LATENESS=10s` or `CXSTREAM_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`.
//! The value is read as a TOML value when it parses as one (`5`, `true`, `["1m","1h"]`) and as
//! a string otherwise.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Deserializer};

use crate::event::Priority;
use crate::ts::{self, Millis, DAY, HOUR, MINUTE, SECOND};

/// A duration written as text: `250ms`, `30s`, `15m`, `4h`, `30d`, `1w`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Millis);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ts::duration_label(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ts::parse_duration(&s).map(Dur).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a duration: write a whole number and a unit, e.g. 250ms, 30s, 15m, 4h, 30d"
            ))
        })
    }
}

/// A dimension a window group can be keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Dim {
    Team,
    Channel,
    Priority,
    Category,
}

impl Dim {
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Team => "team",
            Dim::Channel => "channel",
            Dim::Priority => "priority",
            Dim::Category => "category",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub engine: EngineConfig,
    pub sla: SlaConfig,
    pub signals: SignalsConfig,
    pub kafka: KafkaConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Tumbling window sizes (SPEC §2), default 1m and 1h.
    pub windows: Vec<Dur>,
    /// Allowed lateness: watermark = max event time − this (SPEC §2), default 30s.
    pub allowed_lateness: Dur,
    /// Group-by sets of `kpi.window` (SPEC §4).
    pub group_by: Vec<Vec<Dim>>,
    /// Duplicate ids are recognised over this much event time (SPEC §1), default 24h.
    pub dedup_horizon: Dur,
    /// Ticket state kept this long after the last event once solved, default 30d.
    pub ticket_retention_solved: Dur,
    /// Ticket state kept this long after the last event while open, default 90d.
    pub ticket_retention_open: Dur,
    /// Customer state kept this long after the last event, default 90d.
    pub customer_retention: Dur,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            windows: vec![Dur(MINUTE), Dur(HOUR)],
            allowed_lateness: Dur(30 * SECOND),
            group_by: vec![
                vec![],
                vec![Dim::Team],
                vec![Dim::Channel],
                vec![Dim::Priority],
            ],
            dedup_horizon: Dur(DAY),
            ticket_retention_solved: Dur(30 * DAY),
            ticket_retention_open: Dur(90 * DAY),
            customer_retention: Dur(90 * DAY),
        }
    }
}

/// SLA targets per priority (SPEC §3).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub urgent: Dur,
    pub high: Dur,
    pub normal: Dur,
    pub low: Dur,
}

impl Targets {
    pub fn get(&self, p: Priority) -> Millis {
        match p {
            Priority::Urgent => self.urgent.0,
            Priority::High => self.high.0,
            Priority::Normal => self.normal.0,
            Priority::Low => self.low.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    pub first_response: Targets,
    pub resolution: Targets,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            first_response: Targets {
                urgent: Dur(15 * MINUTE),
                high: Dur(HOUR),
                normal: Dur(4 * HOUR),
                low: Dur(24 * HOUR),
            },
            resolution: Targets {
                urgent: Dur(4 * HOUR),
                high: Dur(8 * HOUR),
                normal: Dur(24 * HOUR),
                low: Dur(72 * HOUR),
            },
        }
    }
}

/// Churn-risk signal weights (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub csat_negative: f64,
    pub nps_detractor: f64,
    pub ces_high_effort: f64,
    pub reopen: f64,
    pub sla_breach: f64,
    pub repeat_contact: f64,
    #[serde(rename = "return")]
    pub return_: f64,
    pub escalation: f64,
    pub warranty_claim: f64,
    pub positive: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            csat_negative: 3.0,
            nps_detractor: 3.0,
            ces_high_effort: 2.0,
            reopen: 2.0,
            sla_breach: 2.0,
            repeat_contact: 2.0,
            return_: 2.0,
            escalation: 1.0,
            warranty_claim: 1.0,
            positive: -3.0 / 12.0,
        }
    }
}

/// After-sales signals (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    pub half_life: Dur,
    pub threshold: f64,
    pub cooldown: Dur,
    pub weights: Weights,
    /// `repeat_contact`: a ticket created when the customer created at least this many other
    /// tickets in the preceding `repeat_contact_window`.
    pub repeat_contact_window: Dur,
    pub repeat_contact_min_others: u32,
    /// Horizon of churn-signal effectiveness (recall and precision), default 90d.
    pub effectiveness_horizon: Dur,
    /// A service-recovery case is due this long after its trigger, default 24h.
    pub recovery_due: Dur,
    /// Repurchase-after-service horizon, default 30d.
    pub repurchase_horizon: Dur,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            half_life: Dur(14 * DAY),
            threshold: 5.0,
            cooldown: Dur(7 * DAY),
            weights: Weights::default(),
            repeat_contact_window: Dur(7 * DAY),
            repeat_contact_min_others: 2,
            effectiveness_horizon: Dur(90 * DAY),
            recovery_due: Dur(DAY),
            repurchase_horizon: Dur(30 * DAY),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub deadletter_topic: String,
    /// How often the consumer commits the offsets that are safe to commit.
    pub commit_interval: Dur,
    /// Any librdkafka property, passed through unchanged to consumer and producer
    /// (e.g. `"security.protocol" = "SASL_SSL"`).
    pub librdkafka: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// librdkafka's base client configuration: bootstrap servers and every pass-through
    /// property.
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
            commit_interval: Dur(5 * SECOND),
            librdkafka: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the /metrics, /healthz, /readyz endpoint. Empty disables it.
    pub listen: String,
    /// Distinct values kept per label before folding into `__other__`.
    pub label_limit: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9464".into(),
            label_limit: 200,
        }
    }
}

impl Config {
    /// Loads a config file (if given) and applies the environment's `CXSTREAM_*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?,
            None => String::new(),
        };
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("CXSTREAM_") && k.contains("__"))
            .collect();
        Self::from_toml_with_env(&text, &env).with_context(|| match path {
            Some(p) => format!("invalid configuration in {}", p.display()),
            None => "invalid configuration".to_string(),
        })
    }

    /// Parses TOML text, applies `(CXSTREAM_A__B, value)` overrides, and validates.
    pub fn from_toml_with_env(text: &str, env: &[(String, String)]) -> Result<Config> {
        let mut root: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{e}"))?;
        for (key, value) in env {
            let Some(path) = key.strip_prefix("CXSTREAM_") else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            set_path(&mut root, &parts, parsed)
                .with_context(|| format!("environment override {key}"))?;
        }
        let cfg: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{}", e.message()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what types alone cannot, with messages that say what to do.
    pub fn validate(&self) -> Result<()> {
        let e = &self.engine;
        if e.windows.is_empty() {
            bail!("engine.windows is empty: configure at least one window size, e.g. [\"1m\", \"1h\"]");
        }
        for w in &e.windows {
            if w.0 < SECOND || w.0 % SECOND != 0 {
                bail!("engine.windows: {w:?} must be a whole number of seconds, at least 1s");
            }
        }
        let mut sizes: Vec<_> = e.windows.iter().map(|w| w.0).collect();
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.len() != e.windows.len() {
            bail!("engine.windows lists a size twice");
        }
        if e.group_by.is_empty() {
            bail!("engine.group_by is empty: keep at least [] (the all-tickets group)");
        }
        for g in &e.group_by {
            let mut d = g.clone();
            d.sort();
            d.dedup();
            if d.len() != g.len() {
                bail!("engine.group_by: {g:?} names a dimension twice");
            }
        }
        if e.group_by.len() > 64 {
            bail!("engine.group_by: at most 64 groups");
        }
        for (name, d) in [
            ("engine.allowed_lateness", e.allowed_lateness),
            ("engine.dedup_horizon", e.dedup_horizon),
            ("engine.ticket_retention_solved", e.ticket_retention_solved),
            ("engine.ticket_retention_open", e.ticket_retention_open),
            ("engine.customer_retention", e.customer_retention),
        ] {
            if d.0 < 0 {
                bail!("{name} must not be negative");
            }
        }
        for (name, t) in [
            ("sla.first_response", &self.sla.first_response),
            ("sla.resolution", &self.sla.resolution),
        ] {
            for p in Priority::ALL {
                if t.get(*p) <= 0 {
                    bail!("{name}.{p} must be a positive duration");
                }
            }
        }
        let s = &self.signals;
        if s.half_life.0 <= 0 {
            bail!("signals.half_life must be positive, e.g. \"14d\"");
        }
        if !(s.threshold.is_finite() && s.threshold > 0.0) {
            bail!("signals.threshold must be a positive number, e.g. 5");
        }
        if s.recovery_due.0 <= 0 || s.repurchase_horizon.0 <= 0 || s.effectiveness_horizon.0 <= 0 {
            bail!("signals.recovery_due, repurchase_horizon and effectiveness_horizon must be positive");
        }
        if self.metrics.label_limit == 0 {
            bail!("metrics.label_limit must be at least 1");
        }
        if self.kafka.input_topics.is_empty() {
            bail!("kafka.input_topics is empty: name the topic(s) holding the events");
        }
        Ok(())
    }
}

fn set_path(root: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<()> {
    let (last, prefix) = parts.split_last().ok_or_else(|| anyhow!("empty key"))?;
    let mut table = root;
    for p in prefix {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("{p} is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spec() {
        let c = Config::from_toml_with_env("", &[]).unwrap();
        assert_eq!(c.engine.windows, vec![Dur(MINUTE), Dur(HOUR)]);
        assert_eq!(c.engine.allowed_lateness, Dur(30 * SECOND));
        assert_eq!(c.sla.first_response.get(Priority::Urgent), 15 * MINUTE);
        assert_eq!(c.sla.resolution.get(Priority::Low), 72 * HOUR);
        assert_eq!(c.signals.weights.positive, -0.25);
        assert_eq!(c.engine.group_by.len(), 4);
    }

    #[test]
    fn env_overrides_apply() {
        let env = vec![
            (
                "CXSTREAM_ENGINE__ALLOWED_LATENESS".to_string(),
                "10s".to_string(),
            ),
            (
                "CXSTREAM_ENGINE__WINDOWS".to_string(),
                "[\"5m\"]".to_string(),
            ),
            (
                "CXSTREAM_KAFKA__BOOTSTRAP_SERVERS".to_string(),
                "kafka:9092".to_string(),
            ),
            ("CXSTREAM_SIGNALS__THRESHOLD".to_string(), "7".to_string()),
        ];
        let c = Config::from_toml_with_env("[engine]\nallowed_lateness = \"1m\"\n", &env).unwrap();
        assert_eq!(c.engine.allowed_lateness, Dur(10 * SECOND));
        assert_eq!(c.engine.windows, vec![Dur(5 * MINUTE)]);
        assert_eq!(c.kafka.bootstrap_servers, "kafka:9092");
        assert_eq!(c.signals.threshold, 7.0);
    }

    #[test]
    fn errors_explain_themselves() {
        let e =
            Config::from_toml_with_env("[engine]\nallowed_latenes = \"1m\"\n", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("allowed_latenes"), "{e:#}");
        let e =
            Config::from_toml_with_env("[engine]\nwindows = [\"1 minute\"]\n", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("not a duration"), "{e:#}");
        let e = Config::from_toml_with_env("[engine]\nwindows = []\n", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("at least one window"), "{e:#}");
    }

    #[test]
    fn shipped_config_file_is_valid_and_matches_defaults() {
        let text = include_str!("../config/cxstream.toml");
        let c = Config::from_toml_with_env(text, &[]).unwrap();
        let d = Config::default();
        assert_eq!(c.engine.windows, d.engine.windows);
        assert_eq!(c.engine.group_by, d.engine.group_by);
        assert_eq!(c.sla.first_response, d.sla.first_response);
        assert_eq!(c.sla.resolution, d.sla.resolution);
        assert_eq!(c.signals.threshold, d.signals.threshold);
    }
}
