//! Writing one event as a line of JSON, by hand, into a reused buffer.
//!
//! The generator writes millions of lines per second, so lines are not built through
//! `serde_json`: the envelope (`id`, `type`, `time`, `customer`) and then the fields are appended
//! to one `String` that every line reuses, with zero-padded ids (`e0000000001`, `c0000042`,
//! `t0000000007`, `o001000000`) and RFC 3339 times with milliseconds. The format's own random
//! choices (a non-`Z` offset on ~5 % of times, microseconds on ~1 %, an unknown extra field on
//! ~2 % of lines) are drawn here from the generator's RNG, always in the same order, which keeps
//! the output byte-identical for a seed.
//!
//! `crate::ts` formats times too, but in the engine's canonical form (UTC, milliseconds only
//! when non-zero); the generator writes the looser forms producers send, so it has its own.

use rand::rngs::StdRng;
use rand::Rng;

use super::tables::{Team, OFFSETS_MIN};
use super::Generator;
use crate::event::EventType;
use crate::ts::{DAY, HOUR, MINUTE, SECOND};

/// The line being written, with its Kafka key and event time.
pub(super) struct Line {
    /// The JSON text, without trailing newline.
    pub(super) text: String,
    /// The customer id: the line's Kafka key.
    pub(super) key: String,
    /// The event time in ms (the instant of the `time` field, when it has a valid one).
    pub(super) time_ms: i64,
    /// Number of the next event id.
    next_event: u64,
    dates: DateCache,
}

impl Line {
    /// An empty line; event ids start at `e0000000001`.
    pub(super) fn new(time_ms: i64) -> Self {
        Line {
            text: String::with_capacity(512),
            key: String::with_capacity(16),
            time_ms,
            next_event: 1,
            dates: DateCache::new(),
        }
    }

    /// Starts a new line: the envelope of an event of type `ty` at `t` for customer `cust`,
    /// without the closing brace. Sets the key and the event time.
    pub(super) fn begin(&mut self, rng: &mut StdRng, ty: &str, t: i64, cust: u32) {
        let line = &mut self.text;
        line.clear();
        line.push_str("{\"id\":\"e");
        push_padded(line, self.next_event, 10);
        self.next_event += 1;
        line.push_str("\",\"type\":\"");
        line.push_str(ty);
        line.push_str("\",\"time\":\"");
        let x: f64 = rng.gen();
        let off = if x < 0.05 {
            OFFSETS_MIN[rng.gen_range(0..OFFSETS_MIN.len())]
        } else {
            0
        };
        let micros = if x > 0.99 {
            Some(rng.gen_range(0..1000))
        } else {
            None
        };
        write_time(line, &mut self.dates, t, off, micros);
        line.push_str("\",\"customer\":\"c");
        push_padded(line, cust as u64, 7);
        line.push('"');
        self.key.clear();
        self.key.push('c');
        push_padded(&mut self.key, cust as u64, 7);
        self.time_ms = t;
    }

    /// Appends `,"name":`; the caller writes the value.
    #[inline]
    pub(super) fn field_name(&mut self, name: &str) {
        self.text.push_str(",\"");
        self.text.push_str(name);
        self.text.push_str("\":");
    }

    /// Appends a string field (`val` needs no escaping).
    pub(super) fn str(&mut self, name: &str, val: &str) {
        self.field_name(name);
        self.text.push('"');
        self.text.push_str(val);
        self.text.push('"');
    }

    /// Appends a field whose value is the JSON text `val`.
    pub(super) fn raw(&mut self, name: &str, val: &str) {
        self.field_name(name);
        self.text.push_str(val);
    }

    /// Appends an integer field.
    pub(super) fn num(&mut self, name: &str, v: u64) {
        self.field_name(name);
        push_padded(&mut self.text, v, 1);
    }

    /// Appends `"ticket":"t…"` with ticket number `no`.
    pub(super) fn ticket(&mut self, no: u64) {
        self.text.push_str(",\"ticket\":\"t");
        push_padded(&mut self.text, no, 10);
        self.text.push('"');
    }

    /// Appends `"order":"o…"` with order number `no`.
    pub(super) fn order(&mut self, no: u64) {
        self.text.push_str(",\"order\":\"o");
        push_padded(&mut self.text, no, 9);
        self.text.push('"');
    }

    /// Appends `"agent":"agent-<team>-<nn>"` for the `agent`-th agent (from 0) of `team`.
    pub(super) fn agent(&mut self, team: Team, agent: u8) {
        self.text.push_str(",\"agent\":\"agent-");
        self.text.push_str(team.name());
        self.text.push('-');
        push_padded(&mut self.text, agent as u64 + 1, 2);
        self.text.push('"');
    }

    /// Closes a real event, sometimes after an unknown extra field (consumers ignore those; a
    /// few producers send some).
    pub(super) fn end(&mut self, rng: &mut StdRng) {
        if rng.gen::<f64>() < 0.02 {
            match rng.gen_range(0..3) {
                0 => self.text.push_str(",\"source\":\"helpdesk\""),
                1 => self.text.push_str(",\"meta\":{\"via\":\"api\",\"v\":2}"),
                _ => self.text.push_str(",\"tags\":[\"after-sales\",\"eu\"]"),
            }
        }
        self.close();
    }

    /// Closes the object, nothing else.
    pub(super) fn close(&mut self) {
        self.text.push('}');
    }

    /// Appends `t` in UTC with milliseconds (`2026-11-22T10:00:00.250Z`) to `buf`.
    pub(super) fn write_utc(&mut self, buf: &mut String, t: i64) {
        write_time(buf, &mut self.dates, t, 0, None);
    }
}

impl Generator {
    /// Starts the line of a real event of type `ty` (see [`Line::begin`]).
    pub(super) fn begin(&mut self, ty: EventType, t: i64, cust: u32) {
        self.out.begin(&mut self.rng, ty.as_str(), t, cust);
    }

    /// Ends the line of a real event (see [`Line::end`]).
    pub(super) fn end(&mut self) {
        self.out.end(&mut self.rng);
    }
}

/// Cache of the `YYYY-MM-DDT` prefix of the last two days written.
struct DateCache {
    day: [i64; 2],
    text: [String; 2],
    victim: usize,
}

impl DateCache {
    fn new() -> Self {
        DateCache {
            day: [i64::MIN; 2],
            text: [String::new(), String::new()],
            victim: 0,
        }
    }

    fn prefix(&mut self, day: i64) -> &str {
        let i = if self.day[0] == day {
            0
        } else if self.day[1] == day {
            1
        } else {
            let i = self.victim;
            self.victim ^= 1;
            self.day[i] = day;
            let jd = (day + 2_440_588).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
            let date = time::Date::from_julian_day(jd).unwrap_or(time::Date::MIN);
            let t = &mut self.text[i];
            t.clear();
            push_padded(t, date.year().clamp(0, 9999) as u64, 4);
            t.push('-');
            push2(t, date.month() as u32);
            t.push('-');
            push2(t, date.day() as u32);
            t.push('T');
            i
        };
        &self.text[i]
    }
}

/// Two decimal digits of `v`.
#[inline]
fn push2(buf: &mut String, v: u32) {
    buf.push((b'0' + (v / 10 % 10) as u8) as char);
    buf.push((b'0' + (v % 10) as u8) as char);
}

/// Three decimal digits of `v`.
#[inline]
pub(super) fn push3(buf: &mut String, v: u32) {
    buf.push((b'0' + (v / 100 % 10) as u8) as char);
    push2(buf, v % 100);
}

/// Decimal `n`, left-padded with zeros to `width` digits.
#[inline]
pub(super) fn push_padded(buf: &mut String, mut n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (tmp.len() - i)..width {
        buf.push('0');
    }
    for &d in &tmp[i..] {
        buf.push(d as char);
    }
}

/// RFC 3339 with milliseconds (or microseconds) and `Z` or a `±hh:mm` offset.
fn write_time(buf: &mut String, dates: &mut DateCache, ms: i64, off_min: i32, micros: Option<u32>) {
    let local = ms + off_min as i64 * MINUTE;
    let day = local.div_euclid(DAY);
    let rem = local.rem_euclid(DAY);
    buf.push_str(dates.prefix(day));
    push2(buf, (rem / HOUR) as u32);
    buf.push(':');
    push2(buf, (rem / MINUTE % 60) as u32);
    buf.push(':');
    push2(buf, (rem / SECOND % 60) as u32);
    buf.push('.');
    push3(buf, (rem % SECOND) as u32);
    if let Some(us) = micros {
        push3(buf, us);
    }
    if off_min == 0 {
        buf.push('Z');
    } else {
        buf.push(if off_min < 0 { '-' } else { '+' });
        let a = off_min.unsigned_abs();
        push2(buf, a / 60);
        buf.push(':');
        push2(buf, a % 60);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::parse_rfc3339_ms;

    #[test]
    fn times_with_offsets_and_micros_denote_the_same_instant() {
        let mut dates = DateCache::new();
        let t = parse_rfc3339_ms("2026-11-22T23:30:00.250Z").unwrap();
        for (off, micros, want) in [
            (0, None, "2026-11-22T23:30:00.250Z"),
            (120, None, "2026-11-23T01:30:00.250+02:00"),
            (-210, Some(7), "2026-11-22T20:00:00.250007-03:30"),
        ] {
            let mut s = String::new();
            write_time(&mut s, &mut dates, t, off, micros);
            assert_eq!(s, want);
            assert_eq!(parse_rfc3339_ms(&s), Some(t));
        }
    }
}
