//! Event-time helpers: every time inside cxstream is an `i64` count of milliseconds since the
//! UNIX epoch (SPEC §4: "Times are handled at millisecond precision").
//!
//! Parsing uses the `time` crate's RFC 3339 parser (well kept, no global state, strict about the
//! offset) behind a fast path for the common shape that agrees with it (a unit test compares
//! them), plus the stricter rules of SPEC §1: the date/time separator must be an upper-case
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
    if let Some(ms) = fast_parse(b) {
        return Some(ms);
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

/// Like [`format_ms`] but appends to a byte buffer (output records), without the `time`
/// crate: the same text (a unit test checks it over a wide range).
pub fn push_ms(out: &mut Vec<u8>, ms: Millis) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside four-digit years (only derived times): the general path.
        let mut s = String::new();
        write_ms(&mut s, ms);
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let y = y as u32;
    let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let [y0, y1] = two(y / 100);
    let [y2, y3] = two(y % 100);
    let [m0, m1] = two(mo);
    let [d0, d1] = two(d);
    let [h0, h1] = two(sod / 3600);
    let [i0, i1] = two(sod / 60 % 60);
    let [s0, s1] = two(sod % 60);
    out.extend_from_slice(&[
        y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1,
    ]);
    if milli != 0 {
        out.extend_from_slice(&[
            b'.',
            b'0' + (milli / 100) as u8,
            b'0' + (milli / 10 % 10) as u8,
            b'0' + (milli % 10) as u8,
        ]);
    }
    out.push(b'Z');
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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` with every field in range,
/// parsed without the `time` crate; `None` sends anything else (and the rare cases such as
/// leap seconds and `-00:00`) to the general parser, which judges it. Where this accepts,
/// the general parser accepts with the same instant (a unit test compares them).
fn fast_parse(b: &[u8]) -> Option<Millis> {
    let digit = |i: usize| -> Option<u32> {
        let c = *b.get(i)?;
        c.is_ascii_digit().then(|| u32::from(c - b'0'))
    };
    let num2 = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = num2(0)? * 100 + num2(2)?;
    let (month, day) = (num2(5)?, num2(8)?);
    let (hour, minute, second) = (num2(11)?, num2(14)?, num2(17)?);
    if year == 0 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    let mut i = 19;
    let mut milli = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - from < 3 {
                milli = milli * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - from;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..3 {
            milli *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num2(i + 1)?, num2(i + 4)?);
            if oh > 23 || om > 59 || (*sign == b'-' && oh == 0 && om == 0) {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some(secs * 1000 + i64::from(milli))
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
    let mut b = Vec::with_capacity(8);
    push_duration_label(&mut b, ms);
    String::from_utf8(b).unwrap_or_default()
}

/// [`duration_label`] appended to a byte buffer (record and parts-topic keys).
pub fn push_duration_label(out: &mut Vec<u8>, ms: Millis) {
    for (unit, m) in [("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)] {
        if ms > 0 && ms % m == 0 {
            out.extend_from_slice(itoa::Buffer::new().format(ms / m).as_bytes());
            out.extend_from_slice(unit.as_bytes());
            return;
        }
    }
    out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes());
    out.extend_from_slice(b"ms");
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
    fn push_ms_writes_what_format_ms_writes() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let check = |ms: Millis| {
            let mut out = Vec::new();
            push_ms(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), format_ms(ms), "{ms}");
        };
        for ms in [
            0,
            -1,
            1,
            951_782_400_000,
            253_402_300_799_999,
            -62_135_596_800_000,
        ] {
            check(ms);
        }
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // years 0001..9999
            check((x % 315_537_897_600_000) as Millis - 62_135_596_800_000);
        }
    }

    #[test]
    fn the_fast_parser_agrees_with_the_time_crate() {
        let general = |s: &str| {
            OffsetDateTime::parse(s, &Rfc3339)
                .ok()
                .map(|dt| dt.unix_timestamp_nanos().div_euclid(1_000_000) as Millis)
        };
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut accepted = 0;
        for _ in 0..300_000 {
            let frac = match next(5) {
                0 => String::new(),
                1 => ".".into(),
                k => format!(".{}", "7".repeat((k as usize - 2) * 4 + next(3) as usize)),
            };
            let off = match next(4) {
                0 => "Z".to_string(),
                1 => "+00:00".into(),
                2 => "-00:00".into(),
                _ => format!(
                    "{}{:02}:{:02}",
                    if next(2) == 0 { '+' } else { '-' },
                    next(26),
                    next(62)
                ),
            };
            let s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{frac}{off}",
                if next(10) == 0 {
                    next(3)
                } else {
                    1900 + next(300)
                },
                next(14),
                next(33),
                next(26),
                next(62),
                next(62)
            );
            let b = s.as_bytes();
            if let Some(ms) = fast_parse(b) {
                accepted += 1;
                assert_eq!(Some(ms), general(&s), "{s}");
            }
            assert_eq!(parse_rfc3339_ms_any(&s), general(&s), "{s}");
        }
        assert!(accepted > 10_000, "{accepted}");
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
