//! Typed configuration: TOML file + `CXSTREAM_*` environment overrides, validated, with every
//! default taken from SPEC. `config/cxstream.toml` documents each option.
//!
//! Environment overrides name a path with `__` between levels, e.g.
//! `CXSTREAM_ENGINE__ALLOWED_LATENESS=10s` or `CXSTREAM_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`.
//! The value is read as a TOML value when it parses as one (`5`, `true`, `["1m","1h"]`) and as
//! a string otherwise. librdkafka properties follow Confluent's image convention instead:
//! `CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD` sets `sasl.password` ([`env`]).
//!
//! Secrets ([`secrets`]): `[kafka.librdkafka]` properties can be read from files
//! (`"sasl.password.file" = "/run/secrets/kafka_password"`), and secret values are masked in
//! the configuration's `Debug`, in client-creation errors and in logs.

mod check;
pub mod env;
mod kafka;
pub mod secrets;
pub mod security;
mod validate;

pub use check::Check;
pub use kafka::KafkaConfig;

use std::fmt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Deserializer};

use crate::event::Priority;
use crate::ts::{self, Millis, DAY, HOUR, MINUTE, SECOND};
pub use secrets::{CreateClient, Librdkafka, MASK};

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
    /// The ticket's team (default `unassigned`).
    Team,
    /// The ticket's channel, or a handled contact's own.
    Channel,
    /// The ticket's priority.
    Priority,
    /// The ticket's category.
    Category,
}

impl Dim {
    /// The dimension's name in `engine.group_by` and in a record's `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Team => "team",
            Dim::Channel => "channel",
            Dim::Priority => "priority",
            Dim::Category => "category",
        }
    }
}

/// The whole configuration (`config/cxstream.toml`); every section and option is optional
/// and defaults to the SPEC's value. Unknown options are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[engine]`: windows, lateness, groups, dedup and retention.
    pub engine: EngineConfig,
    /// `[sla]`: SLA targets per priority.
    pub sla: SlaConfig,
    /// `[signals]`: the after-sales signals of SPEC §5.
    pub signals: SignalsConfig,
    /// `[kafka]`: brokers, group, topics and librdkafka pass-through (`run`, `demo`).
    pub kafka: KafkaConfig,
    /// `[metrics]`: the Prometheus endpoint and label cap.
    pub metrics: MetricsConfig,
    /// `[input]`: what an input may be before it is invalid (SPEC §1).
    pub input: InputConfig,
}

/// `[input]`: bounds on inputs beyond their fields (SPEC §1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// An event whose `time` is more than this ahead of the reference clock is invalid
    /// (`bad_timestamp`), default 1h. The reference clock is the Kafka message's timestamp
    /// in `run` and `--now` in `replay`.
    pub max_future: Dur,
    /// A message or line larger than this many bytes is invalid (`bad_length`), default
    /// 1048576 (1 MiB).
    pub max_event_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            max_future: Dur(HOUR),
            max_event_bytes: 1 << 20,
        }
    }
}

/// `[engine]`: event-time windows, watermark, groups, dedup and state retention (SPEC §1–§2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Tumbling window sizes (SPEC §2), default 1m and 1h.
    pub windows: Vec<Dur>,
    /// Allowed lateness: watermark = max event time − this (SPEC §2), default 30s.
    pub allowed_lateness: Dur,
    /// Group-by sets of `kpi.window` (SPEC §4); `[]` is the all-tickets group, the only one
    /// with measurements without ticket dimensions and the §5 blocks. Default `[[], ["team"],
    /// ["channel"], ["priority"]]`.
    pub group_by: Vec<Vec<Dim>>,
    /// Duplicate ids are recognised over this much event time (SPEC §1), default 24h.
    pub dedup_horizon: Dur,
    /// Ticket state kept this long after the last event once solved, so reopens work
    /// (SPEC §1), default 30d.
    pub ticket_retention_solved: Dur,
    /// Ticket state kept this long after the last event while open, default 90d. Later
    /// events for an evicted ticket are dead-lettered as `unknown ticket`.
    pub ticket_retention_open: Dur,
    /// Customer (after-sales) state kept this long after the last event, default 90d.
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

/// SLA targets per priority (SPEC §3): due = `ticket.created` time + target. A section that
/// is present must name all four priorities.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Target for `urgent` tickets.
    pub urgent: Dur,
    /// Target for `high` tickets.
    pub high: Dur,
    /// Target for `normal` tickets.
    pub normal: Dur,
    /// Target for `low` tickets.
    pub low: Dur,
}

impl Targets {
    /// The target of priority `p`, in ms.
    pub fn get(&self, p: Priority) -> Millis {
        match p {
            Priority::Urgent => self.urgent.0,
            Priority::High => self.high.0,
            Priority::Normal => self.normal.0,
            Priority::Low => self.low.0,
        }
    }
}

/// `[sla]`: the targets of the two SLA clocks (SPEC §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// `[sla.first_response]`: default urgent 15m, high 1h, normal 4h, low 24h.
    pub first_response: Targets,
    /// `[sla.resolution]`: default urgent 4h, high 8h, normal 24h, low 72h.
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

/// `[signals.weights]`: churn-risk signal weights w (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// `survey.csat` score ≤ 2, default 3.
    pub csat_negative: f64,
    /// `survey.nps` score ≤ 6, default 3.
    pub nps_detractor: f64,
    /// `survey.ces` score ≤ 3, default 2.
    pub ces_high_effort: f64,
    /// `ticket.reopened`, default 2.
    pub reopen: f64,
    /// Each SLA breach of the customer's ticket (at its due), default 2.
    pub sla_breach: f64,
    /// A ticket created after `repeat_contact_min_others` others within
    /// `repeat_contact_window`, default 2.
    pub repeat_contact: f64,
    /// `order.returned` (option `return`), default 2.
    #[serde(rename = "return")]
    pub return_: f64,
    /// `ticket.escalated`, default 1.
    pub escalation: f64,
    /// `warranty.claimed`, default 1.
    pub warranty_claim: f64,
    /// `survey.csat` 5 or `survey.nps` ≥ 9, default −0.25: "12 positive experiences make up
    /// for one negative" (−3/12).
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

/// `[signals]`: after-sales signals (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// Half-life of the churn-risk score's decay: S ← max(0, S · 2^(−(t−τ)/half_life) + w),
    /// default 14d.
    pub half_life: Dur,
    /// A `churn.risk` record is emitted when S reaches this after a signal of positive
    /// weight, default 5.
    pub threshold: f64,
    /// No new `churn.risk` record while the customer had one within this long before,
    /// default 7d.
    pub cooldown: Dur,
    /// `[signals.weights]`: the weight of each signal.
    pub weights: Weights,
    /// How far back `repeat_contact` looks for the customer's other tickets, default 7d.
    pub repeat_contact_window: Dur,
    /// `repeat_contact`: a ticket created when the customer created at least this many other
    /// tickets in the preceding `repeat_contact_window`, default 2.
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

/// `[metrics]`: the Prometheus endpoint (SPEC §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the /metrics, /healthz, /readyz endpoint, default `127.0.0.1:9464`
    /// (loopback; use `0.0.0.0:9464` in a container). Empty disables it.
    pub listen: String,
    /// Distinct values kept per label (team, agent...) before folding into `__other__`,
    /// default 200.
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
    /// A fingerprint of everything that shapes results (windows, groups, lateness, dedup and
    /// retention, SLA targets, signal settings, input bounds): a checkpoint taken under
    /// another fingerprint is not restored silently (SPEC §7).
    pub fn fingerprint(&self) -> u64 {
        let shaping = format!(
            "{:?}|{:?}|{:?}|{:?}",
            self.engine, self.sla, self.signals, self.input
        );
        xxhash_rust::xxh3::xxh3_64(shaping.as_bytes())
    }

    /// Loads a config file (if given) and applies the environment's `CXSTREAM_*` overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?,
            None => String::new(),
        };
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(env::PREFIX) && k.contains("__"))
            .collect();
        Self::from_toml_with_env(&text, &env).with_context(|| match path {
            Some(p) => format!("invalid configuration in {}", p.display()),
            None => "invalid configuration".to_string(),
        })
    }

    /// Parses TOML text, applies `(CXSTREAM_A__B, value)` overrides, reads the
    /// `[kafka.librdkafka]` properties held in files, registers the secret values for
    /// [`secrets::scrub`], and validates.
    pub fn from_toml_with_env(text: &str, vars: &[(String, String)]) -> Result<Config> {
        let mut root: toml::Table =
            toml::from_str(text).map_err(|e| secrets::toml_syntax_error(&e, text))?;
        env::apply(&mut root, vars)?;
        let mut cfg: Config =
            toml::Value::Table(root)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    anyhow!("{}{}", e.message(), env::hint(e.message(), vars))
                })?;
        cfg.kafka.librdkafka.resolve_files()?;
        secrets::register(cfg.kafka.librdkafka.secret_values());
        cfg.validate()?;
        Ok(cfg)
    }
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
    fn a_producer_limit_below_a_state_chunk_is_refused() {
        let toml = |v: &str| format!("[kafka.librdkafka]\n\"message.max.bytes\" = \"{v}\"\n");
        let e = Config::from_toml_with_env(&toml("100000"), &[])
            .and_then(|c| c.validate())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("message.max.bytes") && e.contains("raise it"),
            "{e}"
        );
        let c = Config::from_toml_with_env(&toml("1000000"), &[]).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn a_producer_queue_smaller_than_the_largest_record_is_refused() {
        let toml = |kb: &str, max: &str| {
            format!("[kafka.librdkafka]\n\"queue.buffering.max.kbytes\" = \"{kb}\"\n{max}")
        };
        let check = |t: String| Config::from_toml_with_env(&t, &[]).and_then(|c| c.validate());
        let e = check(toml("64", "")).unwrap_err().to_string();
        assert!(
            e.contains("queue.buffering.max.kbytes") && e.contains("977"),
            "{e}"
        );
        check(toml("977", "")).unwrap();
        let small = "\"message.max.bytes\" = \"300000\"\n";
        check(toml("293", small)).unwrap();
        assert!(check(toml("292", small)).is_err());
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

    fn var(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn librdkafka_properties_from_the_environment() {
        let env = vec![
            var("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD", "12345"),
            var("CXSTREAM_KAFKA__LIBRDKAFKA__SSL_KEY_PASSWORD", "k3y-pass"),
            var("CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL", "SASL_SSL"),
            var("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_MECHANISMS", "PLAIN"),
            var("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_USERNAME", "cx"),
            var("CXSTREAM_KAFKA__LIBRDKAFKA__LINGER_MS", "7"),
        ];
        let c =
            Config::from_toml_with_env("[kafka.librdkafka]\n\"linger.ms\" = 5\n", &env).unwrap();
        let l = &c.kafka.librdkafka;
        assert_eq!(l["sasl.password"], "12345", "a numeric password stays text");
        assert_eq!(l["ssl.key.password"], "k3y-pass");
        assert_eq!(l["security.protocol"], "SASL_SSL");
        assert_eq!(l["linger.ms"], "7", "the environment wins over the file");
        assert!(!l.contains_key("sasl_password"));
        let cc = c.kafka.client_config();
        assert_eq!(cc.get("sasl.password"), Some("12345"));
        cc.check_properties().unwrap();
        let shown = format!("{c:?}{c:#?}");
        assert!(
            !shown.contains("12345") && !shown.contains("k3y-pass"),
            "{shown}"
        );
        assert!(
            shown.contains("SASL_SSL") && shown.contains("\"cx\""),
            "{shown}"
        );
    }

    #[test]
    fn librdkafka_properties_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("kafka_password");
        std::fs::write(&pw, "from-the-file\r\n").unwrap();
        let text = format!(
            "[kafka.librdkafka]\n\"sasl.password.file\" = \"{}\"\n",
            pw.display()
        );
        let c = Config::from_toml_with_env(&text, &[]).unwrap();
        assert_eq!(c.kafka.librdkafka["sasl.password"], "from-the-file");
        let shown = format!("{c:#?}");
        assert!(!shown.contains("from-the-file"), "{shown}");
        assert!(shown.contains(&pw.display().to_string()), "{shown}");
        // The same from the environment.
        let env = vec![var(
            "CXSTREAM_KAFKA__LIBRDKAFKA__SSL_KEY_PASSWORD_FILE",
            &pw.display().to_string(),
        )];
        let c = Config::from_toml_with_env("", &env).unwrap();
        assert_eq!(c.kafka.librdkafka["ssl.key.password"], "from-the-file");
        // A file that cannot be read: the error names it.
        let env = vec![var(
            "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD_FILE",
            "/nonexistent/kafka_password",
        )];
        let e = format!("{:#}", Config::from_toml_with_env("", &env).unwrap_err());
        assert!(e.contains("/nonexistent/kafka_password"), "{e}");
    }

    #[test]
    fn config_errors_do_not_echo_secrets() {
        let e = Config::from_toml_with_env(
            "[kafka.librdkafka]\n\"sasl.password\" = [\"hunter2\"]\n",
            &[],
        )
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(!e.contains("hunter2") && e.contains("sasl.password"), "{e}");
        let e =
            Config::from_toml_with_env("[kafka]\nsasl_password = \"hunter2\"\n", &[]).unwrap_err();
        assert!(!format!("{e:#}").contains("hunter2"), "{e:#}");
        let e = Config::from_toml_with_env("[kafka]\nlibrdkafka = \"hunter2\"\n", &[]).unwrap_err();
        assert!(!format!("{e:#}").contains("hunter2"), "{e:#}");
        let env = vec![var("CXSTREAM_KAFKA__LIBRDKAFKA", "hunter2")];
        let e = Config::from_toml_with_env("", &env).unwrap_err();
        assert!(!format!("{e:#}").contains("hunter2"), "{e:#}");
    }

    #[test]
    fn shipped_config_file_is_valid_and_matches_defaults() {
        let text = include_str!("../../config/cxstream.toml");
        let c = Config::from_toml_with_env(text, &[]).unwrap();
        let d = Config::default();
        assert_eq!(c.engine.windows, d.engine.windows);
        assert_eq!(c.engine.group_by, d.engine.group_by);
        assert_eq!(c.sla.first_response, d.sla.first_response);
        assert_eq!(c.sla.resolution, d.sla.resolution);
        assert_eq!(c.signals.threshold, d.signals.threshold);
    }
}
