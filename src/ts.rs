//! Event-time helpers: every time inside cxstream is an `i64` count of milliseconds since the
//! UNIX epoch (SPEC §4: "Times are handled at millisecond precision").
//!
//! Parsing uses the `time` crate's RFC 3339 parser (well kept, no global state, strict about the
//! offset), plus the stricter rules of SPEC §1: the date/time separator must be an upper-case
//! `T`, an offset (`Z` or `±hh:mm`) is required, and digits beyond the millisecond are dropped.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the UNIX epoch.
pub type Millis = i64;

/// One second in [`Millis`].
pub const SECOND: Millis = 1_000;
/// One minute in [`Millis`].
pub const MINUTE: Millis = 60 * SECOND;
/// One hour in [`Millis`].
pub const HOUR: Millis = 60 * MINUTE;
/// One day (24 h, no calendar or DST) in [`Millis`].
pub const DAY: Millis = 24 * HOUR;

/// Parses an RFC 3339 timestamp with `T` and an offset into epoch milliseconds, dropping the
/// digits beyond the millisecond. Returns `None` when the text is not such a timestamp.
pub fn parse_rfc3339_ms(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    // SPEC §1: "RFC 3339 with `T` and an offset". The `time` crate also accepts a lower-case
    // `t`/`z`, which RFC 3339 allows but the SPEC's stricter wording does not.
    if b.len() < 20 || b[10] != b'T' || b.last() == Some(&b'z') {
        return None;
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let nanos = dt.unix_timestamp_nanos();
    // Dropping sub-millisecond digits means flooring towards the past.
    Some(nanos.div_euclid(1_000_000) as Millis)
}

/// Formats epoch milliseconds as RFC 3339 in UTC: `2026-11-22T10:00:00Z`, with `.mmm` before
/// the `Z` only when the milliseconds are not zero (`2026-11-22T10:00:00.250Z`).
pub fn format_ms(ms: Millis) -> String {
    let mut s = String::with_capacity(24);
    write_ms(&mut s, ms);
    s
}

/// Like [`format_ms`] but appends to `out`.
pub fn write_ms(out: &mut String, ms: Millis) {
    use std::fmt::Write;
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, mo, d, h, mi, se) = civil_from_unix(secs);
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}");
    if milli != 0 {
        let _ = write!(out, ".{milli:03}");
    }
    out.push('Z');
}

/// Splits UNIX seconds into a proleptic Gregorian UTC date and time.
fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => (
            dt.year() as i64,
            u8::from(dt.month()) as u32,
            dt.day() as u32,
            dt.hour() as u32,
            dt.minute() as u32,
            dt.second() as u32,
        ),
        // Out of the `time` crate's range: only reachable with absurd inputs that already
        // failed parsing, but keep formatting total.
        Err(_) => (0, 1, 1, 0, 0, 0),
    }
}

/// Parses a duration such as `30s`, `1m`, `1h`, `24h`, `7d`, `250ms` into milliseconds.
pub fn parse_duration(s: &str) -> Option<Millis> {
    let s = s.trim();
    let idx = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(idx);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The canonical short text of a duration (`1m`, `1h`, `90s`, `7d`): the largest unit that
/// divides it exactly. Used for window labels and keys.
pub fn duration_label(ms: Millis) -> String {
    for (unit, m) in [("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)] {
        if ms > 0 && ms % m == 0 {
            return format!("{}{unit}", ms / m);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_z_and_offsets_to_the_same_instant() {
        let z = parse_rfc3339_ms("2026-11-22T10:00:00.250Z").unwrap();
        let plus = parse_rfc3339_ms("2026-11-22T12:00:00.250+02:00").unwrap();
        let minus = parse_rfc3339_ms("2026-11-22T05:00:00.250-05:00").unwrap();
        assert_eq!(z, plus);
        assert_eq!(z, minus);
        assert_eq!(format_ms(z), "2026-11-22T10:00:00.250Z");
    }

    #[test]
    fn digits_beyond_the_millisecond_are_dropped() {
        let a = parse_rfc3339_ms("2026-11-22T10:00:00.123999Z").unwrap();
        let b = parse_rfc3339_ms("2026-11-22T10:00:00.123Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_timestamps_without_t_or_offset() {
        for bad in [
            "2026-11-22 10:00:00Z",
            "2026-11-22t10:00:00Z",
            "2026-11-22T10:00:00",
            "2026-11-22T10:00:00z",
            "2026-13-01T10:00:00Z",
            "2026-11-22",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_whole_seconds_without_fraction() {
        let t = parse_rfc3339_ms("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(format_ms(t), "2026-11-22T10:00:00Z");
        assert_eq!(t % 1000, 0);
    }

    #[test]
    fn durations_parse_and_label() {
        assert_eq!(parse_duration("1m"), Some(MINUTE));
        assert_eq!(parse_duration("24h"), Some(DAY));
        assert_eq!(parse_duration("30s"), Some(30 * SECOND));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(duration_label(MINUTE), "1m");
        assert_eq!(duration_label(HOUR), "1h");
        assert_eq!(duration_label(90 * SECOND), "90s");
    }
}
