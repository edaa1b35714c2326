//! Logging: the subscriber (`--log-format text|json`, secrets scrubbed from every line), a
//! rate limiter for warnings that a broker outage would otherwise repeat thousands of times,
//! and librdkafka's own log lines routed through `tracing`.

use std::io::IsTerminal as _;
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::secrets;

/// How log lines look on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields as keys, for log collectors.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the global subscriber: `filter` in tracing's `EnvFilter` syntax (`info` if it does
/// not parse), lines in `format` on stderr, registered secret values replaced by `***`. Also
/// takes the `log` crate's records (rdkafka's).
pub fn init(filter: &str, format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal (a file, a pipe or a log collector gets plain text), and
    // never with NO_COLOR set (https://no-color.org).
    let ansi =
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(Scrubbed(io::stderr));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .try_init(),
    };
}

/// Reports the error a command ended with, whatever the log filter: `error: ...` on stderr,
/// or, when the logs are JSON, a JSON object with the log lines' keys (so a log collector sees
/// one JSON object per line to the end). Secret values are scrubbed either way.
pub fn report_error(message: &str) {
    let message = secrets::scrub(message);
    match FORMAT.get() {
        Some(LogFormat::Json) => {
            // As tracing-subscriber writes it: RFC 3339, UTC, microseconds.
            let timestamp = time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
                ))
                .unwrap_or_default();
            let line = serde_json::json!({
                "timestamp": timestamp,
                "level": "ERROR",
                "message": message,
                "target": "cxstream",
            });
            eprintln!("{line}");
        }
        _ => eprintln!("error: {message}"),
    }
}

/// A writer for log lines through [`secrets::scrub`]: the formatter hands over each event as
/// one buffer, so a secret is never split across writes.
pub struct Scrubbed<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubWriter(self.0.make_writer())
    }
}

/// See [`Scrubbed`].
pub struct ScrubWriter<W>(W);

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => self.0.write_all(secrets::scrub(s).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_have_the_fields_as_keys_and_no_secret() {
        secrets::register(["logs-s3cret-\"x"]);
        let buf = Buf::default();
        let b = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(Scrubbed(move || b.clone()))
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(partition = 3, password = "logs-s3cret-\"x", "first");
            tracing::warn!("librdkafka said logs-s3cret-\"x");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("s3cret"), "{out}");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["partition"], 3);
        assert_eq!(lines[0]["password"], "***");
        assert_eq!(lines[0]["message"], "first");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[1]["message"].as_str().unwrap().ends_with("said ***"));
    }
}
