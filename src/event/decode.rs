//! Decoding and validation of one input (SPEC §1): bytes in, an [`Event`] or a [`DecodeError`]
//! naming the field out. The JSON is parsed once into loose values of only the fields any
//! event type uses (strings borrowed where they have no escapes), then checked field by field
//! with the rules of the event's type.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::number::{bounded_number, score, MAX_AMOUNT, MAX_HANDLE_SECONDS};
use super::scan::plain_raw;

use super::{
    Author, Body, Category, Channel, DecodeError, Event, EventType, InvalidReason, Priority,
};
use crate::ts::{parse_rfc3339_ms, parse_rfc3339_ms_any};

pub(super) fn err(reason: InvalidReason, message: String) -> DecodeError {
    DecodeError { reason, message }
}

/// Any JSON value, kept only as far as validation needs it. Strings borrow when they can.
#[derive(Debug, PartialEq)]
pub(super) enum Loose<'a> {
    Null,
    Bool(bool),
    Int,
    Float,
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Loose<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Loose::Null => "null",
            Loose::Bool(_) => "a boolean",
            Loose::Int => "an integer",
            Loose::Float => "a non-integer number",
            Loose::Str(_) => "a string",
            Loose::Array => "an array",
            Loose::Object => "an object",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Int)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::Int)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Float)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Object)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A value kept as its JSON text (numeric fields: [`super::number`] classifies the text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RawText<'a>(pub(super) &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for RawText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|r| RawText(r.get()))
    }
}

/// The raw top-level object: every field any type uses, each as a loose value. Unknown
/// fields are ignored (SPEC §1). Read by [`plain_raw`] when the object is plain, else by
/// serde_json: both give the same value.
#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
pub(super) struct Raw<'a> {
    #[serde(borrow)]
    pub(super) id: Option<Loose<'a>>,
    #[serde(borrow, rename = "type")]
    pub(super) ty: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) time: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) customer: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) ticket: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) channel: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) priority: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) team: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) category: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) author: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) agent: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) public: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) handle_seconds: Option<RawText<'a>>,
    #[serde(borrow)]
    pub(super) score: Option<RawText<'a>>,
    #[serde(borrow)]
    pub(super) order: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) amount: Option<RawText<'a>>,
    #[serde(borrow)]
    pub(super) reason: Option<Loose<'a>>,
    #[serde(borrow)]
    pub(super) product: Option<Loose<'a>>,
}

/// Takes a field out of the raw object; `null` means absent (SPEC §1).
fn take<'a>(slot: &mut Option<Loose<'a>>) -> Option<Loose<'a>> {
    match slot.take() {
        None | Some(Loose::Null) => None,
        Some(v) => Some(v),
    }
}

fn required<'a>(slot: &mut Option<Loose<'a>>, name: &str) -> Result<Loose<'a>, DecodeError> {
    take(slot).ok_or_else(|| {
        err(
            InvalidReason::MissingField,
            format!("missing required field \"{name}\""),
        )
    })
}

fn as_str<'a>(v: Loose<'a>, name: &str) -> Result<Cow<'a, str>, DecodeError> {
    match v {
        Loose::Str(s) => Ok(s),
        other => Err(err(
            InvalidReason::WrongType,
            format!("field \"{name}\" must be a string, got {}", other.kind()),
        )),
    }
}

/// A string of `min..=max` characters.
fn bounded<'a>(
    v: Loose<'a>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Cow<'a, str>, DecodeError> {
    let s = as_str(v, name)?;
    // Fast path: byte length bounds the char count from above and (÷4) from below.
    let n = if s.len() <= max && s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    if n < min || n > max {
        return Err(err(
            InvalidReason::BadLength,
            format!("field \"{name}\" must be {min} to {max} characters, got {n}"),
        ));
    }
    Ok(s)
}

fn req_id<'a>(slot: &mut Option<Loose<'a>>, name: &str) -> Result<Cow<'a, str>, DecodeError> {
    bounded(required(slot, name)?, name, 1, 128)
}

fn opt_id<'a>(
    slot: &mut Option<Loose<'a>>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, DecodeError> {
    take(slot).map(|v| bounded(v, name, 1, 128)).transpose()
}

fn opt_text<'a>(
    slot: &mut Option<Loose<'a>>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, DecodeError> {
    take(slot).map(|v| bounded(v, name, 0, 256)).transpose()
}

fn opt_team<'a>(slot: &mut Option<Loose<'a>>) -> Result<Option<Cow<'a, str>>, DecodeError> {
    take(slot).map(|v| bounded(v, "team", 1, 64)).transpose()
}

fn enum_value<T>(
    v: Loose<'_>,
    name: &str,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
) -> Result<T, DecodeError> {
    let s = as_str(v, name)?;
    parse(&s).ok_or_else(|| {
        err(
            InvalidReason::InvalidEnum,
            format!(
                "field \"{name}\" has unknown value \"{}\" (expected one of: {})",
                s.escape_debug(),
                expected()
            ),
        )
    })
}

/// Decodes one input (a Kafka message value or a JSON Lines line) into an event.
pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        err(
            InvalidReason::InvalidJson,
            format!("payload is not UTF-8: {e}"),
        )
    })?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(err(
            InvalidReason::InvalidJson,
            if trimmed.is_empty() {
                "empty payload: expected a JSON object".to_string()
            } else {
                "payload is not a JSON object".to_string()
            },
        ));
    }
    let mut plain = Raw::default();
    let parsed = if plain_raw(text, &mut plain) {
        Ok(plain)
    } else {
        serde_json::from_str(text)
    };
    let mut raw: Raw<'_> = parsed.map_err(|e| {
        // A number beyond f64 in a field read as a value is a bound, not bad syntax.
        let reason = if e.to_string().starts_with("number out of range") {
            InvalidReason::OutOfRange
        } else {
            InvalidReason::InvalidJson
        };
        err(reason, format!("invalid JSON: {e}"))
    })?;

    let ty = as_str(required(&mut raw.ty, "type")?, "type")?;
    let ty = EventType::parse(&ty).ok_or_else(|| {
        err(
            InvalidReason::UnknownType,
            format!("unknown event type \"{}\"", ty.escape_debug()),
        )
    })?;
    let id = req_id(&mut raw.id, "id")?;
    let time_text = as_str(required(&mut raw.time, "time")?, "time")?;
    let time = parse_rfc3339_ms(&time_text).ok_or_else(|| {
        let what = if parse_rfc3339_ms_any(&time_text).is_some() {
            "is outside the years 0000-9999 in UTC"
        } else {
            "is not an RFC 3339 timestamp with T and an offset"
        };
        err(
            InvalidReason::BadTimestamp,
            format!("field \"time\" {what}: \"{}\"", time_text.escape_debug()),
        )
    })?;
    let customer = req_id(&mut raw.customer, "customer")?;

    let channel = |raw: &mut Raw<'_>| {
        enum_value(
            required(&mut raw.channel, "channel")?,
            "channel",
            Channel::parse,
            Channel::expected,
        )
    };

    let body = match ty {
        EventType::TicketCreated => Body::TicketCreated {
            ticket: req_id(&mut raw.ticket, "ticket")?,
            channel: channel(&mut raw)?,
            priority: enum_value(
                required(&mut raw.priority, "priority")?,
                "priority",
                Priority::parse,
                Priority::expected,
            )?,
            team: opt_team(&mut raw.team)?,
            category: match take(&mut raw.category) {
                None => Category::Other,
                Some(v) => enum_value(v, "category", Category::parse, Category::expected)?,
            },
        },
        EventType::TicketMessage => Body::TicketMessage {
            ticket: req_id(&mut raw.ticket, "ticket")?,
            author: enum_value(
                required(&mut raw.author, "author")?,
                "author",
                Author::parse,
                Author::expected,
            )?,
            agent: opt_id(&mut raw.agent, "agent")?,
            public: match take(&mut raw.public) {
                None => true,
                Some(Loose::Bool(b)) => b,
                Some(other) => {
                    return Err(err(
                        InvalidReason::WrongType,
                        format!("field \"public\" must be a boolean, got {}", other.kind()),
                    ))
                }
            },
        },
        EventType::TicketSolved => Body::TicketSolved {
            ticket: req_id(&mut raw.ticket, "ticket")?,
            agent: opt_id(&mut raw.agent, "agent")?,
        },
        EventType::TicketReopened => Body::TicketReopened {
            ticket: req_id(&mut raw.ticket, "ticket")?,
        },
        EventType::TicketEscalated => Body::TicketEscalated {
            ticket: req_id(&mut raw.ticket, "ticket")?,
            team: opt_team(&mut raw.team)?,
        },
        EventType::ContactHandled => Body::ContactHandled {
            agent: req_id(&mut raw.agent, "agent")?,
            channel: channel(&mut raw)?,
            handle_seconds: bounded_number(
                &mut raw.handle_seconds,
                "handle_seconds",
                MAX_HANDLE_SECONDS,
            )?,
            ticket: opt_id(&mut raw.ticket, "ticket")?,
        },
        EventType::CustomerContacted => Body::CustomerContacted {
            agent: req_id(&mut raw.agent, "agent")?,
            channel: channel(&mut raw)?,
        },
        EventType::SurveyCsat => Body::SurveyCsat {
            score: score(&mut raw.score, 1, 5)?,
            ticket: opt_id(&mut raw.ticket, "ticket")?,
        },
        EventType::SurveyNps => Body::SurveyNps {
            score: score(&mut raw.score, 0, 10)?,
        },
        EventType::SurveyCes => Body::SurveyCes {
            score: score(&mut raw.score, 1, 7)?,
            ticket: opt_id(&mut raw.ticket, "ticket")?,
        },
        EventType::OrderPlaced => Body::OrderPlaced {
            order: req_id(&mut raw.order, "order")?,
            amount: bounded_number(&mut raw.amount, "amount", MAX_AMOUNT)?,
        },
        EventType::OrderReturned => Body::OrderReturned {
            order: req_id(&mut raw.order, "order")?,
            reason: opt_text(&mut raw.reason, "reason")?,
        },
        EventType::WarrantyClaimed => Body::WarrantyClaimed {
            order: opt_id(&mut raw.order, "order")?,
            product: opt_text(&mut raw.product, "product")?,
        },
        EventType::CustomerChurned => Body::CustomerChurned {
            reason: opt_text(&mut raw.reason, "reason")?,
        },
    };
    Ok(Event {
        id,
        time,
        customer,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;

    fn reason(s: &str) -> InvalidReason {
        decode(s.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn decodes_a_ticket_created_with_defaults() {
        let e = decode(br#"{"id":"e1","type":"ticket.created","time":"2026-11-22T10:00:00Z","customer":"c1","ticket":"t1","channel":"email","priority":"high","extra":{"x":[1,2]}}"#).unwrap();
        assert_eq!(e.id, "e1");
        match e.body {
            Body::TicketCreated { team, category, .. } => {
                assert_eq!(team, None);
                assert_eq!(category, Category::Other);
            }
            _ => panic!("wrong body"),
        }
    }

    #[test]
    fn null_in_an_optional_field_means_absent() {
        let e = decode(br#"{"id":"e1","type":"ticket.message","time":"2026-11-22T10:00:00Z","customer":"c1","ticket":"t1","author":"agent","agent":null,"public":null}"#).unwrap();
        assert_eq!(
            e.body,
            Body::TicketMessage {
                ticket: "t1".into(),
                author: Author::Agent,
                agent: None,
                public: true
            }
        );
    }

    #[test]
    fn every_invalid_input_class_has_its_reason() {
        let base = r#""id":"e1","time":"2026-11-22T10:00:00Z","customer":"c1""#;
        assert_eq!(reason("not json"), InvalidReason::InvalidJson);
        assert_eq!(reason("{\"id\":"), InvalidReason::InvalidJson);
        assert_eq!(reason("[1,2]"), InvalidReason::InvalidJson);
        assert_eq!(reason(""), InvalidReason::InvalidJson);
        assert_eq!(
            reason(&format!(r#"{{{base},"type":"survey.csat"}}"#)),
            InvalidReason::MissingField
        );
        assert_eq!(
            reason(&format!(r#"{{{base},"type":"survey.csat","score":4.0}}"#)),
            InvalidReason::WrongType
        );
        assert_eq!(
            reason(&format!(r#"{{{base},"type":"survey.csat","score":"4"}}"#)),
            InvalidReason::WrongType
        );
        assert_eq!(
            reason(&format!(r#"{{{base},"type":"survey.csat","score":6}}"#)),
            InvalidReason::OutOfRange
        );
        assert_eq!(
            reason(&format!(r#"{{{base},"type":"survey.nps","score":-1}}"#)),
            InvalidReason::OutOfRange
        );
        assert_eq!(
            reason(&format!(
                r#"{{{base},"type":"ticket.closed","ticket":"t"}}"#
            )),
            InvalidReason::UnknownType
        );
        assert_eq!(
            reason(&format!(
                r#"{{{base},"type":"ticket.created","ticket":"t","channel":"fax","priority":"low"}}"#
            )),
            InvalidReason::InvalidEnum
        );
        assert_eq!(
            reason(&format!(
                r#"{{{base},"type":"ticket.created","ticket":"t","channel":"email","priority":"URGENT"}}"#
            )),
            InvalidReason::InvalidEnum
        );
        assert_eq!(
            reason(
                r#"{"id":"e1","type":"survey.nps","score":3,"time":"2026-11-22 10:00:00Z","customer":"c"}"#
            ),
            InvalidReason::BadTimestamp
        );
        assert_eq!(
            reason(
                r#"{"id":"e1","type":"survey.nps","score":3,"time":"2026-11-22T10:00:00","customer":"c"}"#
            ),
            InvalidReason::BadTimestamp
        );
        let long = "x".repeat(129);
        assert_eq!(
            reason(&format!(
                r#"{{"id":"{long}","type":"survey.nps","score":3,"time":"2026-11-22T10:00:00Z","customer":"c"}}"#
            )),
            InvalidReason::BadLength
        );
        assert_eq!(
            reason(&format!(
                r#"{{{base},"type":"order.placed","order":"o","amount":-1}}"#
            )),
            InvalidReason::OutOfRange
        );
        assert_eq!(
            reason(&format!(
                r#"{{{base},"type":"ticket.message","ticket":"t","author":"agent","public":"no"}}"#
            )),
            InvalidReason::WrongType
        );
        assert_eq!(
            reason(r#"{"type":"survey.nps","score":3}"#),
            InvalidReason::MissingField
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = decode(br#"{"id":"e1","type":"survey.csat","time":"2026-11-22T10:00:00Z","customer":"c1","score":9}"#).unwrap_err();
        assert!(e.message.contains("\"score\""), "{}", e.message);
        let e = decode(br#"{"id":"e1","type":"ticket.created","time":"2026-11-22T10:00:00Z","customer":"c1","channel":"email","priority":"low"}"#).unwrap_err();
        assert!(e.message.contains("\"ticket\""), "{}", e.message);
    }

    #[test]
    fn non_utf8_is_invalid_not_a_panic() {
        assert_eq!(
            decode(&[0xff, 0xfe, b'{']).unwrap_err().reason,
            InvalidReason::InvalidJson
        );
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let e = decode(br#"{"id":"e\u0031","type":"survey.nps","score":10,"time":"2026-11-22T10:00:00Z","customer":"c\"1"}"#).unwrap();
        assert_eq!(e.id, "e1");
        assert_eq!(e.customer, "c\"1");
    }
}
