//! Output records (SPEC §4): `kpi.window`, alert and signal records, dead letters, and their
//! JSON and Kafka keys.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::config::Dim;
use crate::event::{Channel, Priority, SourcePos};
use crate::kpi::SlaKind;
use crate::ts::{self, Millis};
use crate::window::ClosedWindow;

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
}

pub use crate::kpi::Trigger;

/// A window record with its group resolved to names.
#[derive(Debug, Clone)]
pub struct WindowRecord {
    /// The closed window × group and its aggregate.
    pub window: ClosedWindow,
    /// `(dimension, value)` in the group's configured order.
    pub group: Vec<(Dim, String)>,
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
    DeadLetter {
        /// The error in words (invalid input) or the [`Rejection`] text.
        reason: String,
        /// The original payload, byte for byte (written as text, plus `payload_base64` when
        /// it is not UTF-8).
        payload: Vec<u8>,
        /// Where the input came from.
        source: SourcePos,
    },
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

    /// The Kafka key: `<size>|<start>|<group>` for `kpi.window` (group as compact JSON, e.g.
    /// `1m|2026-11-22T10:00:00Z|{"team":"billing"}`); the customer id for alert records; the
    /// source position for dead letters.
    pub fn key(&self) -> String {
        match self {
            Record::Window(w) => {
                let mut k = ts::duration_label(w.window.size);
                k.push('|');
                ts::write_ms(&mut k, w.window.key.start);
                k.push('|');
                k.push_str(&group_json(&w.group).to_string());
                k
            }
            Record::SlaBreached { customer, .. }
            | Record::ChurnRisk { customer, .. }
            | Record::RecoveryNeeded { customer, .. }
            | Record::RecoveryOverdue { customer, .. } => customer.clone(),
            Record::DeadLetter { source, .. } => match source {
                SourcePos::Kafka {
                    topic,
                    partition,
                    offset,
                } => format!("{topic}|{partition}|{offset}"),
                SourcePos::File { file, line } => format!("{file}|{line}"),
            },
        }
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
            } => json!({"type": "sla.breached", "time": ts::format_ms(*due), "customer": customer,
                        "ticket": ticket, "sla": sla.as_str(), "due": ts::format_ms(*due),
                        "priority": priority.as_str(), "team": team, "channel": channel.as_str()}),
            Record::ChurnRisk {
                time,
                customer,
                score,
                reasons,
            } => json!({"type": "churn.risk", "time": ts::format_ms(*time), "customer": customer,
                        "score": score, "reasons": reasons}),
            Record::RecoveryNeeded {
                time,
                customer,
                due,
                trigger,
                score,
                ticket,
            } => {
                let mut v = json!({"type": "recovery.needed", "time": ts::format_ms(*time),
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
            } => json!({"type": "recovery.overdue", "time": ts::format_ms(*time),
                        "customer": customer, "due": ts::format_ms(*due),
                        "trigger": trigger.as_str()}),
            Record::DeadLetter {
                reason,
                payload,
                source,
            } => {
                let source = match source {
                    SourcePos::Kafka {
                        topic,
                        partition,
                        offset,
                    } => json!({"topic": topic, "partition": partition, "offset": offset}),
                    SourcePos::File { file, line } => json!({"file": file, "line": line}),
                };
                let mut v = json!({"type": "deadletter", "reason": reason,
                                   "payload": String::from_utf8_lossy(payload), "source": source});
                // Lossless even when the payload is not UTF-8: the exact bytes, base64.
                if std::str::from_utf8(payload).is_err() {
                    v["payload_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(payload));
                }
                v
            }
        }
    }

    /// The record as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }
}

fn group_json(group: &[(Dim, String)]) -> Value {
    let mut m = Map::new();
    for (d, v) in group {
        m.insert(d.as_str().into(), json!(v));
    }
    Value::Object(m)
}
