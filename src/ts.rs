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

/// The first instant of the year 0000 in UTC: the earliest event time accepted.
pub const MIN_EVENT_TIME: Millis = -62_167_219_200_000;
/// The last millisecond of the year 9999 in UTC: the latest event time accepted.
pub const MAX_EVENT_TIME: Millis = 253_402_300_799_999;

/// Parses an RFC 3339 timestamp with `T` and an offset into epoch milliseconds, dropping the
/// digits beyond the millisecond. Returns `None` when the text is not such a timestamp, or
/// when its instant is outside the years 0000–9999 in UTC (an offset can move
/// `9999-12-31T23:59:59-01:00` past them): every accepted time is one cxstream writes back
/// with a four-digit year, so no two of them share a text.
pub fn parse_rfc3339_ms(s: &str) -> Option<Millis> {
    parse_rfc3339_ms_any(s).filter(|t| (MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(t))
}

/// [`parse_rfc3339_ms`] without the year range (to tell the two reasons apart in errors).
pub fn parse_rfc3339_ms_any(s: &str) -> Option<Millis> {
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

/// Like [`format_ms`] but appends to `out`. Total: a time outside the years 0000–9999 (only
/// derived times, such as a window end or a due past the last event time, can be) is written
/// with its year as it is (`10000-01-01T00:00:00Z`, `-001-12-31T00:00:00Z`), the same text
/// the SPEC's reference implementation writes.
pub fn write_ms(out: &mut String, ms: Millis) {
    use std::fmt::Write;
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, se) = (sod / 3600, sod / 60 % 60, sod % 60);
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}");
    if milli != 0 {
        let _ = write!(out, ".{milli:03}");
    }
    out.push('Z');
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (H. Hinnant's
/// `civil_from_days`; total over every `i64` day count a [`Millis`] can give).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
    fn event_times_outside_the_years_0000_to_9999_are_rejected() {
        let ok = |s: &str| parse_rfc3339_ms(s);
        assert_eq!(ok("9999-12-31T23:59:59.999Z"), Some(MAX_EVENT_TIME));
        assert_eq!(ok("0000-01-01T00:00:00Z"), Some(MIN_EVENT_TIME));
        assert_eq!(ok("9999-12-31T23:59:59-00:01"), None);
        assert_eq!(ok("0000-01-01T00:00:00+00:01"), None);
        assert_eq!(
            parse_rfc3339_ms_any("9999-12-31T23:59:59-00:01"),
            Some(MAX_EVENT_TIME + 1 + 59_000)
        );
        assert_eq!(format_ms(MAX_EVENT_TIME), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_ms(MIN_EVENT_TIME), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn derived_times_past_the_range_are_written_with_their_year() {
        assert_eq!(format_ms(MAX_EVENT_TIME + 1), "10000-01-01T00:00:00Z");
        assert_eq!(format_ms(MIN_EVENT_TIME - DAY), "-001-12-31T00:00:00Z");
        // Total, no panic, at the ends of the type.
        format_ms(Millis::MAX);
        format_ms(Millis::MIN);
    }

    #[test]
    fn write_ms_agrees_with_the_time_crate_inside_the_range() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % (MAX_EVENT_TIME - MIN_EVENT_TIME) as u64) as Millis + MIN_EVENT_TIME;
            let dt = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            );
            assert!(format_ms(ms).starts_with(&want), "{ms}");
        }
    }

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
