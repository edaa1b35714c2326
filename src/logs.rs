//! Logging helpers: a rate limiter for warnings that a broker outage would otherwise repeat
//! thousands of times, and librdkafka's own log lines routed through `tracing`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;

/// Lets one warning through per interval and counts the ones it holds back, so a broker
/// outage does not flood the log.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter {
            interval: Duration::from_secs(5),
            state: Mutex::new((None, 0)),
        }
    }
}

impl LogLimiter {
    /// `Some(suppressed since the last one)` when a message may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let mut s = self.state.lock().ok()?;
        let now = Instant::now();
        match s.0 {
            Some(t) if now.duration_since(t) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                let n = s.1;
                *s = (Some(now), 0);
                Some(n)
            }
        }
    }
}

/// librdkafka's own log lines, through tracing (warnings and errors rate-limited).
pub fn log_librdkafka(
    client: &str,
    limiter: &LogLimiter,
    level: RDKafkaLogLevel,
    fac: &str,
    msg: &str,
) {
    if fac == "CONFWARN" {
        // The same pass-through properties go to consumer and producer: each ignores the
        // other's with a warning that says nothing useful here.
        tracing::debug!("librdkafka {client} {fac}: {msg}");
        return;
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Warning => {
            if let Some(n) = limiter.allow() {
                tracing::warn!(suppressed = n, "librdkafka {client} {fac}: {msg}");
            }
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::debug!("librdkafka {client} {fac}: {msg}")
        }
        RDKafkaLogLevel::Debug => tracing::trace!("librdkafka {client} {fac}: {msg}"),
    }
}
