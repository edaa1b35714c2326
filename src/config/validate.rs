//! Checks of the configuration that types alone cannot express, with messages that say what
//! to do.

use anyhow::{bail, Result};

use super::{security, Config};
use crate::event::Priority;
use crate::ts::SECOND;

impl Config {
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
        if self.input.max_future.0 < 0 {
            bail!("input.max_future must not be negative, e.g. \"1h\"");
        }
        if self.kafka.shutdown_timeout.0 < SECOND {
            bail!("kafka.shutdown_timeout must be at least 1s (default \"25s\")");
        }
        if self.input.max_event_bytes < 64 {
            bail!("input.max_event_bytes must be at least 64 (default 1048576)");
        }
        if self.metrics.label_limit == 0 {
            bail!("metrics.label_limit must be at least 1");
        }
        if self.kafka.input_topics.is_empty() {
            bail!("kafka.input_topics is empty: name the topic(s) holding the events");
        }
        if let Some(v) = self.kafka.librdkafka.get("message.max.bytes") {
            // State records are chunked at state::CHUNK; a producer limit below a chunk (plus
            // key and protocol overhead) would refuse checkpoint records.
            let min = crate::state::CHUNK + 16 * 1024;
            match v.trim().parse::<usize>() {
                Ok(n) if n >= min => {}
                _ => bail!(
                    "kafka.librdkafka.\"message.max.bytes\" = {v:?} is below {min}: checkpoint \
                     records of the state topic are up to {} bytes; raise it (librdkafka's \
                     default, 1000000, is fine) or remove it",
                    crate::state::CHUNK
                ),
            }
        }
        if let Some(v) = self.kafka.librdkafka.get("queue.buffering.max.kbytes") {
            // A record larger than the producer's whole queue never enters it: the input
            // would stay paused behind it for ever. Every record that passes librdkafka's
            // size check is at most message.max.bytes.
            let max_msg = self
                .kafka
                .librdkafka
                .get("message.max.bytes")
                .and_then(|m| m.trim().parse::<u64>().ok())
                .unwrap_or(1_000_000);
            let min = max_msg.div_ceil(1024);
            match v.trim().parse::<u64>() {
                Ok(n) if n >= min => {}
                _ => bail!(
                    "kafka.librdkafka.\"queue.buffering.max.kbytes\" = {v:?} is below {min}: \
                     the producer's queue must hold the largest record (message.max.bytes = \
                     {max_msg} bytes), or a record that size would wait for ever; raise it \
                     (cxstream's default is {}) or remove it",
                    crate::sink::kafka::QUEUE_KBYTES
                ),
            }
        }
        let errors: Vec<String> = security::static_findings(&self.kafka)
            .into_iter()
            .filter(|f| f.level == security::Level::Error)
            .map(|f| f.message)
            .collect();
        if !errors.is_empty() {
            bail!(
                "[kafka.librdkafka] cannot work:\n  - {}",
                errors.join("\n  - ")
            );
        }
        Ok(())
    }
}
