//! Numeric fields (SPEC §1): scores are JSON integers in their range; `handle_seconds` and
//! `amount` are finite numbers within their bounds. Numbers are classified from their JSON
//! text, so that bounds are judged on what was written.

use super::decode::{err, RawText};
use super::{DecodeError, InvalidReason};

/// A numeric field as written: numbers are classified from their JSON text, so that an
/// integer too large for 64 bits (`99999999999999999999`) or a float beyond `f64`
/// (`1e400`) is out of range rather than unreadable, and `4.0` stays a non-integer.
enum Num {
    /// Written as an integer (`None`: too large for i128).
    Int(Option<i128>),
    /// Written with a fraction or an exponent.
    Float(f64),
    /// Not a number at all: what it is, for the error.
    Not(&'static str),
}

fn num(raw: RawText<'_>) -> Num {
    let t = raw.0;
    match t.as_bytes().first() {
        Some(b'"') => Num::Not("a string"),
        Some(b't' | b'f') => Num::Not("a boolean"),
        Some(b'[') => Num::Not("an array"),
        Some(b'{') => Num::Not("an object"),
        Some(b'n') => Num::Not("null"),
        _ if t.contains(['.', 'e', 'E']) => Num::Float(t.parse().unwrap_or(f64::NAN)),
        _ => Num::Int(t.parse().ok()),
    }
}

/// A required numeric field.
fn required_num(slot: &mut Option<RawText<'_>>, name: &str) -> Result<Num, DecodeError> {
    match slot.take() {
        None => Err(err(
            InvalidReason::MissingField,
            format!("missing required field \"{name}\""),
        )),
        Some(raw) => match num(raw) {
            // `null` means absent (SPEC §1).
            Num::Not("null") => Err(err(
                InvalidReason::MissingField,
                format!("missing required field \"{name}\""),
            )),
            n => Ok(n),
        },
    }
}

pub(super) fn score(slot: &mut Option<RawText<'_>>, lo: u8, hi: u8) -> Result<u8, DecodeError> {
    match required_num(slot, "score")? {
        Num::Int(Some(n)) if n >= lo as i128 && n <= hi as i128 => Ok(n as u8),
        Num::Int(n) => Err(err(
            InvalidReason::OutOfRange,
            format!(
                "field \"score\" is {}, outside {lo}..={hi}",
                n.map_or("an integer beyond 128 bits".to_string(), |n| n.to_string())
            ),
        )),
        Num::Float(_) => Err(err(
            InvalidReason::WrongType,
            "field \"score\" must be a JSON integer, got a non-integer number".to_string(),
        )),
        Num::Not(kind) => Err(err(
            InvalidReason::WrongType,
            format!("field \"score\" must be a JSON integer, got {kind}"),
        )),
    }
}

/// A number in `0..=max` (finite, SPEC §1).
pub(super) fn bounded_number(
    slot: &mut Option<RawText<'_>>,
    name: &str,
    max: f64,
) -> Result<f64, DecodeError> {
    let v = match required_num(slot, name)? {
        Num::Int(Some(n)) => n as f64,
        Num::Int(None) => f64::INFINITY,
        Num::Float(f) => f,
        Num::Not(kind) => {
            return Err(err(
                InvalidReason::WrongType,
                format!("field \"{name}\" must be a number, got {kind}"),
            ))
        }
    };
    if !(v >= 0.0 && v <= max) {
        return Err(err(
            InvalidReason::OutOfRange,
            format!("field \"{name}\" must be a finite number in 0..={max}, got {v}"),
        ));
    }
    Ok(v)
}

/// The largest `handle_seconds`: 7 days (SPEC §1).
pub const MAX_HANDLE_SECONDS: f64 = 604_800.0;
/// The largest `amount`: 10^12, so that no sum can overflow (SPEC §1).
pub const MAX_AMOUNT: f64 = 1e12;
