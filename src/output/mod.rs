//! Output records (SPEC §4): `kpi.window`, alert and signal records, dead letters, and their
//! JSON and Kafka keys.

pub mod jsonw;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::config::Dim;
use crate::event::{Channel, Priority, SourcePos};
use crate::kpi::SlaKind;
use crate::ts::{self, Millis};
use crate::window::ClosedWindow;
use jsonw::Obj;

/// Why a valid event was dead-lettered instead of applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// An orphan: a `ticket.message|solved|reopened|escalated` whose ticket was never created
    /// or was evicted (SPEC §1).
    UnknownTicket,
    /// A `ticket.created` for a ticket that already exists (SPEC §1).
    TicketExists,
}

impl Rejection {
    /// The dead letter's `reason`: `unknown ticket` or `ticket exists`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownTicket => "unknown ticket",
            Rejection::TicketExists => "ticket exists",
        }
    }

    /// The dead letter's `error`, in words.
    pub fn explain(self, customer: &str, ticket: &str) -> String {
        match self {
            Rejection::UnknownTicket => format!(
                "ticket \"{}\" of customer \"{}\" is unknown: never created, created by another customer, or evicted after its retention",
                ticket.escape_debug(),
                customer.escape_debug()
            ),
            Rejection::TicketExists => format!(
                "ticket \"{}\" of customer \"{}\" already exists",
                ticket.escape_debug(),
                customer.escape_debug()
            ),
        }
    }
}

pub use crate::kpi::Trigger;

/// A dead letter (SPEC §1, §4): why, what, and from where.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The stable reason: an invalid-input class (`invalid_json`, `bad_timestamp`, …, the
    /// `reason` label of `cxstream_events_invalid_total`) or a [`Rejection`] text.
    pub reason: &'static str,
    /// The error in words, naming the field.
    pub error: String,
    /// The original payload, byte for byte (written as text, plus `payload_base64` when it is
    /// not UTF-8).
    pub payload: Vec<u8>,
    /// Where the input came from.
    pub source: SourcePos,
    /// An input too large to carry whole (SPEC §1 size): its full size in bytes; `payload`
    /// then holds the longest prefix whose JSON-escaped form fits in [`DEADLETTER_PAYLOAD`].
    pub size: Option<usize>,
}

/// The most bytes a dead letter's `payload` takes once JSON-escaped (SPEC §1: 64 KiB), so
/// that a dead letter always fits the output topic's message size.
pub const DEADLETTER_PAYLOAD: usize = 64 * 1024;

/// The longest prefix of `text` whose JSON-escaped form (inside the quotes) takes at most
/// `limit` bytes, never splitting a character: `"` and `\` and the short escapes (`\b`, `\f`,
/// `\n`, `\r`, `\t`) take 2 bytes, other control characters 6 (`\u00XX`), everything else its
/// UTF-8 length — what serde_json writes.
pub fn escaped_prefix(text: &str, limit: usize) -> &str {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let n = match c {
            '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + n > limit {
            return &text[..i];
        }
        used += n;
    }
    text
}

/// A window record with its group resolved to names.
#[derive(Debug, Clone)]
pub struct WindowRecord {
    /// The closed window × group and its aggregate.
    pub window: ClosedWindow,
    /// `(dimension, value)` in the group's configured order.
    pub group: Vec<(Dim, String)>,
    /// One partition's part, not the complete window (several instances share the input
    /// before the parts topic merges them): its key ends with `|<partition>`.
    pub part: bool,
}

/// One output record (SPEC §4): a `kpi.window`, an alert or signal record (output topic),
/// or a dead letter (dead-letter topic).
#[derive(Debug, Clone)]
pub enum Record {
    /// `kpi.window`: one closed window × group with at least one measurement.
    Window(Box<WindowRecord>),
    /// `sla.breached`: an SLA clock still running when the watermark passed its due; emitted
    /// at detection, with the ticket's dimensions as they were at the due (SPEC §3).
    SlaBreached {
        /// The due time, which is also the record's `time`.
        due: Millis,
        /// The ticket's customer (the Kafka key).
        customer: String,
        /// The ticket breached.
        ticket: String,
        /// Which SLA: `first_response` or `resolution`.
        sla: SlaKind,
        /// The ticket's priority at the due.
        priority: Priority,
        /// The ticket's team name at the due.
        team: String,
        /// The ticket's channel.
        channel: Channel,
    },
    /// `churn.risk`: a customer's churn-risk score reached the threshold after a signal of
    /// positive weight, outside the cooldown (SPEC §5).
    ChurnRisk {
        /// The time of the signal that crossed the threshold.
        time: Millis,
        /// The customer at risk.
        customer: String,
        /// The score S after that signal.
        score: f64,
        /// Signal names whose own decayed sum is positive, strongest first (ties by name).
        reasons: Vec<&'static str>,
    },
    /// `recovery.needed`: a dissatisfied survey answer opened a service-recovery case
    /// (SPEC §5).
    RecoveryNeeded {
        /// The survey's time.
        time: Millis,
        /// The customer to contact.
        customer: String,
        /// When the case becomes overdue: `time` + `signals.recovery_due`.
        due: Millis,
        /// `csat` or `nps`.
        trigger: Trigger,
        /// The survey's score.
        score: u8,
        /// The ticket the survey names, if any.
        ticket: Option<String>,
    },
    /// `recovery.overdue`: a recovery case reached its due unanswered (SPEC §5).
    RecoveryOverdue {
        /// The record's time: the case's due.
        time: Millis,
        /// The customer not contacted.
        customer: String,
        /// The case's due.
        due: Millis,
        /// What opened the case: `csat` or `nps`.
        trigger: Trigger,
    },
    /// `deadletter`: an invalid input, an orphan or a `ticket exists` event (SPEC §1).
    DeadLetter(Box<DeadLetter>),
}

impl Record {
    /// The record's `type`, e.g. `kpi.window` (also the `type` label of
    /// `cxstream_output_records_total`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::Window(_) => "kpi.window",
            Record::SlaBreached { .. } => "sla.breached",
            Record::ChurnRisk { .. } => "churn.risk",
            Record::RecoveryNeeded { .. } => "recovery.needed",
            Record::RecoveryOverdue { .. } => "recovery.overdue",
            Record::DeadLetter { .. } => "deadletter",
        }
    }

    /// Whether the record goes to the dead-letter output rather than the output topic.
    pub fn is_deadletter(&self) -> bool {
        matches!(self, Record::DeadLetter { .. })
    }

    /// A dead letter.
    pub fn dead_letter(
        reason: &'static str,
        error: String,
        payload: Vec<u8>,
        source: SourcePos,
    ) -> Record {
        Record::DeadLetter(Box::new(DeadLetter {
            reason,
            error,
            payload,
            source,
            size: None,
        }))
    }

    /// The dead letter of an input larger than `max` bytes (SPEC §1 size): reason
    /// `bad_length`, the longest prefix that fits escaped in [`DEADLETTER_PAYLOAD`], and the
    /// size.
    pub fn oversized(payload: &[u8], max: usize, source: SourcePos) -> Record {
        let text = String::from_utf8_lossy(payload);
        let prefix = escaped_prefix(&text, DEADLETTER_PAYLOAD);
        Record::DeadLetter(Box::new(DeadLetter {
            reason: "bad_length",
            error: format!(
                "the input is {} bytes, more than the {max} bytes allowed (input.max_event_bytes)",
                payload.len()
            ),
            payload: prefix.as_bytes().to_vec(),
            source,
            size: Some(payload.len()),
        }))
    }

    /// The Kafka key: `<size>|<start>|<group>` for `kpi.window` (group as compact JSON, e.g.
    /// `1m|2026-11-22T10:00:00Z|{"team":"billing"}`, plus `|<partition>` for a part); the
    /// customer id for alert and signal records; the source position
    /// (`topic|partition|offset`, `file|line`) for dead letters, whose input may have no
    /// customer.
    pub fn key(&self) -> String {
        match self {
            Record::Window(_) => {
                let mut k = Vec::with_capacity(64);
                self.push_key(&mut k);
                // Written from strings and ASCII only.
                String::from_utf8(k).unwrap_or_default()
            }
            Record::SlaBreached { customer, .. }
            | Record::ChurnRisk { customer, .. }
            | Record::RecoveryNeeded { customer, .. }
            | Record::RecoveryOverdue { customer, .. } => customer.clone(),
            Record::DeadLetter(d) => position(&d.source),
        }
    }

    /// [`Self::key`] appended to `out` (window keys without an intermediate string).
    pub fn push_key(&self, out: &mut Vec<u8>) {
        match self {
            Record::Window(w) => {
                let parts: &[i32] = if w.part {
                    &w.window.agg.partitions
                } else {
                    &[]
                };
                push_window_key(out, w.window.size, w.window.key.start, &w.group, parts);
            }
            _ => out.extend_from_slice(self.key().as_bytes()),
        }
    }

    /// The record's `id` (SPEC §7), the same on every re-emission; `None` for `kpi.window`,
    /// which its key identifies.
    pub fn id(&self) -> Option<String> {
        let f = ts::format_ms;
        Some(match self {
            Record::Window(_) => return None,
            Record::SlaBreached {
                due,
                customer,
                ticket,
                sla,
                ..
            } => format!(
                "sla.breached|{customer}|{ticket}|{}|{}",
                sla.as_str(),
                f(*due)
            ),
            Record::ChurnRisk { time, customer, .. } => {
                format!("churn.risk|{customer}|{}", f(*time))
            }
            Record::RecoveryNeeded { time, customer, .. } => {
                format!("recovery.needed|{customer}|{}", f(*time))
            }
            Record::RecoveryOverdue { due, customer, .. } => {
                format!("recovery.overdue|{customer}|{}", f(*due))
            }
            Record::DeadLetter(d) => format!("deadletter|{}", position(&d.source)),
        })
    }

    /// The record as the JSON object of SPEC §4.
    pub fn to_json(&self) -> Value {
        match self {
            Record::Window(w) => {
                let c = &w.window;
                let mut m = Map::new();
                m.insert("type".into(), json!("kpi.window"));
                m.insert(
                    "window".into(),
                    json!({"start": ts::format_ms(c.key.start),
                           "end": ts::format_ms(c.key.start + c.size),
                           "size_seconds": c.size / 1000}),
                );
                m.insert("group".into(), group_json(&w.group));
                crate::window::kpi_fields(&c.agg, &mut m, w.group.is_empty());
                m.insert("partial".into(), json!(c.partial));
                m.insert("partitions".into(), json!(c.agg.partitions));
                Value::Object(m)
            }
            Record::SlaBreached {
                due,
                customer,
                ticket,
                sla,
                priority,
                team,
                channel,
            } => {
                json!({"type": "sla.breached", "id": self.id(), "time": ts::format_ms(*due), "customer": customer,
                        "ticket": ticket, "sla": sla.as_str(), "due": ts::format_ms(*due),
                        "priority": priority.as_str(), "team": team, "channel": channel.as_str()})
            }
            Record::ChurnRisk {
                time,
                customer,
                score,
                reasons,
            } => {
                json!({"type": "churn.risk", "id": self.id(), "time": ts::format_ms(*time), "customer": customer,
                        "score": score, "reasons": reasons})
            }
            Record::RecoveryNeeded {
                time,
                customer,
                due,
                trigger,
                score,
                ticket,
            } => {
                let mut v = json!({"type": "recovery.needed", "id": self.id(), "time": ts::format_ms(*time),
                                   "customer": customer, "due": ts::format_ms(*due),
                                   "trigger": trigger.as_str(), "score": score});
                if let Some(t) = ticket {
                    v["ticket"] = json!(t);
                }
                v
            }
            Record::RecoveryOverdue {
                time,
                customer,
                due,
                trigger,
            } => json!({"type": "recovery.overdue", "id": self.id(), "time": ts::format_ms(*time),
                        "customer": customer, "due": ts::format_ms(*due),
                        "trigger": trigger.as_str()}),
            Record::DeadLetter(d) => {
                let DeadLetter {
                    reason,
                    error,
                    payload,
                    source,
                    size,
                } = &**d;
                let source = match source {
                    SourcePos::Kafka {
                        topic,
                        partition,
                        offset,
                    } => json!({"topic": topic, "partition": partition, "offset": offset}),
                    SourcePos::File { file, line } => json!({"file": file, "line": line}),
                };
                let mut v = json!({"type": "deadletter", "id": self.id(), "reason": reason,
                                   "error": error, "payload": String::from_utf8_lossy(payload),
                                   "source": source});
                if let Some(n) = size {
                    v["size"] = json!(n);
                }
                // Lossless even when the payload is not UTF-8: the exact bytes, base64.
                if std::str::from_utf8(payload).is_err() {
                    v["payload_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(payload));
                }
                v
            }
        }
    }

    /// The record as one line of JSON (no newline): `to_json().to_string()`, written
    /// directly.
    pub fn to_line(&self) -> String {
        let mut out = Vec::with_capacity(512);
        self.write_line(&mut out);
        // Only valid UTF-8 is written (strings are `str`, the rest ASCII).
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the record as one line of JSON (no newline) to `out`: byte for byte what
    /// [`Self::to_json`] serializes to, without building the `Value`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        match self {
            Record::Window(w) => {
                let c = &w.window;
                o.str("type", "kpi.window");
                o.obj("window", |o| {
                    time(o, "start", c.key.start);
                    time(o, "end", c.key.start + c.size);
                    o.int("size_seconds", c.size / 1000);
                });
                o.obj("group", |o| {
                    for (d, v) in &w.group {
                        o.str(d.as_str(), v);
                    }
                });
                crate::window::write_kpi_fields(&c.agg, &mut o, w.group.is_empty());
                o.bool("partial", c.partial);
                let out = o.key("partitions");
                out.push(b'[');
                for (i, p) in c.agg.partitions.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    jsonw::int(out, *p);
                }
                out.push(b']');
            }
            Record::SlaBreached {
                due,
                customer,
                ticket,
                sla,
                priority,
                team,
                channel,
            } => {
                self.head(&mut o, "sla.breached", *due, customer);
                o.str("ticket", ticket);
                o.str("sla", sla.as_str());
                time(&mut o, "due", *due);
                o.str("priority", priority.as_str());
                o.str("team", team);
                o.str("channel", channel.as_str());
            }
            Record::ChurnRisk {
                time,
                customer,
                score,
                reasons,
            } => {
                self.head(&mut o, "churn.risk", *time, customer);
                o.float("score", *score);
                let out = o.key("reasons");
                out.push(b'[');
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    jsonw::string(out, r);
                }
                out.push(b']');
            }
            Record::RecoveryNeeded {
                time: t,
                customer,
                due,
                trigger,
                score,
                ticket,
            } => {
                self.head(&mut o, "recovery.needed", *t, customer);
                time(&mut o, "due", *due);
                o.str("trigger", trigger.as_str());
                o.int("score", *score);
                if let Some(t) = ticket {
                    o.str("ticket", t);
                }
            }
            Record::RecoveryOverdue {
                time: t,
                customer,
                due,
                trigger,
            } => {
                self.head(&mut o, "recovery.overdue", *t, customer);
                time(&mut o, "due", *due);
                o.str("trigger", trigger.as_str());
            }
            Record::DeadLetter(d) => {
                o.str("type", "deadletter");
                o.str("id", &format!("deadletter|{}", position(&d.source)));
                o.str("reason", d.reason);
                o.str("error", &d.error);
                o.str("payload", &String::from_utf8_lossy(&d.payload));
                o.obj("source", |o| match &d.source {
                    SourcePos::Kafka {
                        topic,
                        partition,
                        offset,
                    } => {
                        o.str("topic", topic);
                        o.int("partition", *partition);
                        o.int("offset", *offset);
                    }
                    SourcePos::File { file, line } => {
                        o.str("file", file);
                        o.int("line", *line);
                    }
                });
                if let Some(n) = d.size {
                    o.int("size", n);
                }
                if std::str::from_utf8(&d.payload).is_err() {
                    o.str(
                        "payload_base64",
                        &base64::engine::general_purpose::STANDARD.encode(&d.payload),
                    );
                }
            }
        }
        o.end();
    }

    /// `type`, `id`, `time` and `customer` of an alert or signal record.
    fn head(&self, o: &mut Obj<'_>, ty: &str, t: Millis, customer: &str) {
        o.str("type", ty);
        match self.id() {
            Some(id) => o.str("id", &id),
            None => o.key("id").extend_from_slice(b"null"),
        }
        time(o, "time", t);
        o.str("customer", customer);
    }
}

/// A time field: RFC 3339 in UTC (no character of it needs escaping).
fn time(o: &mut Obj<'_>, k: &str, t: Millis) {
    let out = o.key(k);
    out.push(b'"');
    ts::push_ms(out, t);
    out.push(b'"');
}

/// A source position as written in dead-letter keys and ids: `topic|partition|offset` or
/// `file|line`.
fn position(source: &SourcePos) -> String {
    match source {
        SourcePos::Kafka {
            topic,
            partition,
            offset,
        } => format!("{topic}|{partition}|{offset}"),
        SourcePos::File { file, line } => format!("{file}|{line}"),
    }
}

/// Appends the key of a `kpi.window` record, `<size>|<start>|<group as JSON>`, or of a window
/// part (the parts topic), which adds `|<partition>` for each partition it holds: the group
/// written as `serde_json` writes it (compact, in the group's order, strings escaped alike),
/// without building a `Value`.
pub fn push_window_key(
    out: &mut Vec<u8>,
    size: Millis,
    start: Millis,
    group: &[(Dim, String)],
    parts: &[i32],
) {
    ts::push_duration_label(out, size);
    out.push(b'|');
    ts::push_ms(out, start);
    out.push(b'|');
    let mut o = Obj::new(out);
    for (d, v) in group {
        o.str(d.as_str(), v);
    }
    o.end();
    for p in parts {
        out.push(b'|');
        jsonw::int(out, *p);
    }
}

fn group_json(group: &[(Dim, String)]) -> Value {
    let mut m = Map::new();
    for (d, v) in group {
        m.insert(d.as_str().into(), json!(v));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests;
