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
    UnknownTicket,
    TicketExists,
}

impl Rejection {
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
    pub window: ClosedWindow,
    /// `(dimension, value)` in the group's configured order.
    pub group: Vec<(Dim, String)>,
}

#[derive(Debug, Clone)]
pub enum Record {
    Window(Box<WindowRecord>),
    SlaBreached {
        due: Millis,
        customer: String,
        ticket: String,
        sla: SlaKind,
        priority: Priority,
        team: String,
        channel: Channel,
    },
    ChurnRisk {
        time: Millis,
        customer: String,
        score: f64,
        reasons: Vec<&'static str>,
    },
    RecoveryNeeded {
        time: Millis,
        customer: String,
        due: Millis,
        trigger: Trigger,
        score: u8,
        ticket: Option<String>,
    },
    RecoveryOverdue {
        time: Millis,
        customer: String,
        due: Millis,
        trigger: Trigger,
    },
    DeadLetter {
        reason: String,
        payload: Vec<u8>,
        source: SourcePos,
    },
}

impl Record {
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
