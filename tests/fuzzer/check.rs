//! Checks of single records and of values in them (used by `Life` in `mod.rs`).

use super::*;
/// Whether a record carries a time outside the years 0000–9999 in UTC. Event times are
/// always inside (decode rejects the others), but a window end, due or horizon derived from
/// a time near either end can fall outside; cxstream writes those with the year as it is
/// (`10000-01-01T00:00:00Z`, `-001-12-31T…`), which is not RFC 3339. Such records are
/// counted and left out of the comparisons between runs.
pub(super) fn unwritable_time(r: &Record) -> bool {
    let out = |t: Millis| !(YEAR_0000..=YEAR_9999_END).contains(&t);
    match r {
        Record::Window(w) => {
            out(w.window.key.start) || out(w.window.key.start.saturating_add(w.window.size))
        }
        Record::SlaBreached { due, .. } => out(*due),
        Record::ChurnRisk { time, .. } => out(*time),
        Record::RecoveryNeeded { time, due, .. } | Record::RecoveryOverdue { time, due, .. } => {
            out(*time) || out(*due)
        }
        Record::DeadLetter(_) => false,
    }
}

pub(super) fn gen_enum<T>(s: &str, parse: fn(&str) -> Option<T>) -> bool {
    parse(s).is_some()
}

pub(super) fn truncate(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(super) fn time_of(v: &Value) -> Result<Millis, String> {
    let s = v.as_str().ok_or(format!("time not a string: {v}"))?;
    ts::parse_rfc3339_ms(s).ok_or(format!("time does not parse: {s}"))
}

/// A duration summary: `{"count":0}`, or ordered statistics.
pub(super) fn summary(v: &Value, max: f64) -> Check {
    let count = v["count"].as_u64().ok_or(format!("summary count: {v}"))?;
    if count == 0 {
        ensure!(
            v.as_object().is_some_and(|o| o.len() == 1),
            "empty summary with fields: {v}"
        );
        return Ok(());
    }
    let f = |k: &str| -> Result<f64, String> {
        v[k].as_f64()
            .filter(|x| x.is_finite())
            .ok_or(format!("summary {k} is {}", v[k]))
    };
    let (min, mean, p50, p90, p99, mx) = (
        f("min")?,
        f("mean")?,
        f("p50")?,
        f("p90")?,
        f("p99")?,
        f("max")?,
    );
    let eps = 1e-9 * mx.abs().max(1.0);
    ensure!(
        0.0 <= min && min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= mx && mx <= max,
        "summary not ordered: {v}"
    );
    ensure!(
        min - eps <= mean && mean <= mx + eps,
        "mean outside [min, max]: {v}"
    );
    ensure!(
        v["hdr"].as_str().is_some_and(|h| !h.is_empty()),
        "summary without hdr"
    );
    Ok(())
}

/// A ratio or mean: null exactly when its denominator is 0, else within [lo, hi].
pub(super) fn ratio(v: &Value, den: u64, lo: f64, hi: f64) -> Check {
    if den == 0 {
        ensure!(v.is_null(), "{v} with no responses");
    } else {
        let x = v
            .as_f64()
            .ok_or(format!("ratio is {v} with {den} responses"))?;
        ensure!(
            x.is_finite() && lo - 1e-9 <= x && x <= hi + 1e-9,
            "{x} outside [{lo}, {hi}]"
        );
    }
    Ok(())
}

pub(super) fn check_breach(v: &Value) -> Check {
    ensure!(v["time"] == v["due"], "sla.breached not at its due");
    ensure!(
        v["sla"] == "first_response" || v["sla"] == "resolution",
        "sla {}",
        v["sla"]
    );
    ensure!(
        v["priority"]
            .as_str()
            .and_then(cxstream::event::Priority::parse)
            .is_some()
            && v["channel"]
                .as_str()
                .and_then(cxstream::event::Channel::parse)
                .is_some()
            && v["team"].is_string()
            && v["ticket"].is_string()
            && v["customer"].is_string(),
        "sla.breached fields"
    );
    time_of(&v["due"])?;
    Ok(())
}

pub(super) fn check_churn(cfg: &Config, v: &Value) -> Check {
    let score = v["score"]
        .as_f64()
        .ok_or(format!("churn.risk score is {} (not finite)", v["score"]))?;
    let th = cfg.signals.threshold;
    ensure!(
        score.is_finite() && score >= th - 1e-9 * th.abs().max(1.0),
        "churn.risk score {score} below the threshold {th}"
    );
    // A `positive` weight above 0 (accepted by check-config) lets a great experience raise
    // the score to the threshold with no bad signal behind it: then `reasons` is empty.
    ensure!(
        v["reasons"].as_array().is_some_and(|r| !r.is_empty())
            || cfg.signals.weights.positive > 0.0,
        "churn.risk without reasons"
    );
    time_of(&v["time"])?;
    Ok(())
}

pub(super) fn check_recovery(cfg: &Config, v: &Value) -> Check {
    let (t, due) = (time_of(&v["time"])?, time_of(&v["due"])?);
    ensure!(
        due - t == cfg.signals.recovery_due.0,
        "recovery.needed due {} after its time, recovery_due is {}",
        due - t,
        cfg.signals.recovery_due.0
    );
    ensure!(
        v["trigger"] == "csat" || v["trigger"] == "nps",
        "recovery trigger {}",
        v["trigger"]
    );
    Ok(())
}

/// Counts of a window record that groups must add up to.
#[derive(Debug, Clone, Default)]
pub(super) struct Sums {
    pub(super) v: [u64; 16],
}

pub(super) const SUM_NAMES: [&str; 16] = [
    "created",
    "solved",
    "first_solved",
    "fcr",
    "reopened",
    "escalated",
    "first_response",
    "resolution",
    "handle",
    "csat",
    "ces",
    "sla fr achieved",
    "sla fr breached",
    "sla res achieved",
    "sla res breached",
    "orders",
];

impl Sums {
    pub(super) fn of(v: &Value) -> Sums {
        let n = |x: &Value| x.as_u64().unwrap_or(0);
        let t = &v["tickets"];
        Sums {
            v: [
                n(&t["created"]),
                n(&t["solved"]),
                n(&t["first_solved"]),
                n(&t["fcr"]),
                n(&t["reopened"]),
                n(&t["escalated"]),
                n(&v["first_response_seconds"]["count"]),
                n(&v["resolution_seconds"]["count"]),
                n(&v["handle_seconds"]["count"]),
                n(&v["csat"]["responses"]),
                n(&v["ces"]["responses"]),
                n(&v["sla"]["first_response"]["achieved"]),
                n(&v["sla"]["first_response"]["breached"]),
                n(&v["sla"]["resolution"]["achieved"]),
                n(&v["sla"]["resolution"]["breached"]),
                n(&v["orders"]["placed"]),
            ],
        }
    }

    pub(super) fn add(&mut self, o: &Sums) {
        for (a, b) in self.v.iter_mut().zip(o.v) {
            *a += b;
        }
    }

    /// Where a group set's sums differ from the `{}` group's: ticket measurements must be
    /// equal; handled contacts equal for `[channel]` and at most for others; surveys at most
    /// (those without a known ticket are only in `{}`); orders are only in `{}`.
    #[allow(clippy::needless_range_loop)]
    pub(super) fn differs(&self, all: &Sums, channel_only: bool) -> Option<String> {
        for i in 0..16 {
            let (g, a) = (self.v[i], all.v[i]);
            let ok = match i {
                8 if channel_only => g == a,
                8..=10 => g <= a,
                15 => g == 0,
                _ => g == a,
            };
            if !ok {
                return Some(format!("{}: {g} vs {a}", SUM_NAMES[i]));
            }
        }
        None
    }

    pub(super) fn exceeds(&self, big: &Sums) -> Option<String> {
        (0..16)
            .find(|&i| self.v[i] > big.v[i])
            .map(|i| format!("{}: {} > {}", SUM_NAMES[i], self.v[i], big.v[i]))
    }
}

/// One Prometheus text sample: name, label text, value.
pub(super) fn parse_sample(line: &str) -> Option<(&str, &str, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = "";
    if rest.starts_with('{') {
        // Find the closing brace outside quoted label values.
        let b = rest.as_bytes();
        let (mut i, mut quoted) = (1, false);
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        labels = &rest[..=i];
        rest = &rest[i + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        x => x.parse().ok()?,
    };
    Some((name, labels, value))
}
