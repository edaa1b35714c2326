//! Every KPI definition of SPEC §3 and §5, in one place.
//!
//! The engine turns events into [`Measurement`]s: a KPI, its event time and the dimensions it
//! carries. Window aggregates, Prometheus metrics and alert records all consume the same
//! measurements, so each rule below is written once.

use crate::event::{Category, Channel, Priority};
use crate::ts::Millis;

/// Which SLA clock (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlaKind {
    FirstResponse,
    Resolution,
}

impl SlaKind {
    pub const ALL: [SlaKind; 2] = [SlaKind::FirstResponse, SlaKind::Resolution];
    pub fn as_str(self) -> &'static str {
        match self {
            SlaKind::FirstResponse => "first_response",
            SlaKind::Resolution => "resolution",
        }
    }
}

/// NPS classes: promoter 9–10, passive 7–8, detractor 0–6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpsClass {
    Promoter,
    Passive,
    Detractor,
}

impl NpsClass {
    pub fn of(score: u8) -> NpsClass {
        match score {
            9..=10 => NpsClass::Promoter,
            7..=8 => NpsClass::Passive,
            _ => NpsClass::Detractor,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            NpsClass::Promoter => "promoter",
            NpsClass::Passive => "passive",
            NpsClass::Detractor => "detractor",
        }
    }
}

/// CSAT: satisfied if score ≥ 4.
pub fn csat_satisfied(score: u8) -> bool {
    score >= 4
}

/// FCR: at a ticket's first solve, the ticket had at most one public agent message so far.
pub fn is_fcr(public_agent_messages: u32) -> bool {
    public_agent_messages <= 1
}

/// SLA outcome of a clock that stops at `stop` with due `due`: achieved if at or before due.
pub fn sla_achieved(stop: Millis, due: Millis) -> bool {
    stop <= due
}

/// A duration between two event times, in ms, never negative (SPEC §3: "seconds, ≥ 0").
pub fn elapsed(from: Millis, to: Millis) -> Millis {
    (to - from).max(0)
}

/// Repurchase CSAT band (SPEC §5): from the latest CSAT naming the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Band {
    Satisfied,
    Neutral,
    Dissatisfied,
    Unrated,
}

impl Band {
    pub const ALL: [Band; 4] = [
        Band::Satisfied,
        Band::Neutral,
        Band::Dissatisfied,
        Band::Unrated,
    ];
    pub fn of(latest_csat: Option<u8>) -> Band {
        match latest_csat {
            None => Band::Unrated,
            Some(s) if s >= 4 => Band::Satisfied,
            Some(3) => Band::Neutral,
            Some(_) => Band::Dissatisfied,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Satisfied => "satisfied",
            Band::Neutral => "neutral",
            Band::Dissatisfied => "dissatisfied",
            Band::Unrated => "unrated",
        }
    }
}

/// The churn-risk signals of SPEC §5, in the table's order (which is also the order in which
/// several signals of one event apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    CsatNegative,
    NpsDetractor,
    CesHighEffort,
    Reopen,
    SlaBreach,
    RepeatContact,
    Return,
    Escalation,
    WarrantyClaim,
    Positive,
}

impl Signal {
    pub const ALL: [Signal; 10] = [
        Signal::CsatNegative,
        Signal::NpsDetractor,
        Signal::CesHighEffort,
        Signal::Reopen,
        Signal::SlaBreach,
        Signal::RepeatContact,
        Signal::Return,
        Signal::Escalation,
        Signal::WarrantyClaim,
        Signal::Positive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::CsatNegative => "csat_negative",
            Signal::NpsDetractor => "nps_detractor",
            Signal::CesHighEffort => "ces_high_effort",
            Signal::Reopen => "reopen",
            Signal::SlaBreach => "sla_breach",
            Signal::RepeatContact => "repeat_contact",
            Signal::Return => "return",
            Signal::Escalation => "escalation",
            Signal::WarrantyClaim => "warranty_claim",
            Signal::Positive => "positive",
        }
    }
    pub fn weight(self, w: &crate::config::Weights) -> f64 {
        match self {
            Signal::CsatNegative => w.csat_negative,
            Signal::NpsDetractor => w.nps_detractor,
            Signal::CesHighEffort => w.ces_high_effort,
            Signal::Reopen => w.reopen,
            Signal::SlaBreach => w.sla_breach,
            Signal::RepeatContact => w.repeat_contact,
            Signal::Return => w.return_,
            Signal::Escalation => w.escalation,
            Signal::WarrantyClaim => w.warranty_claim,
            Signal::Positive => w.positive,
        }
    }
}

/// What opened a service-recovery case (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A dissatisfied `survey.csat`.
    Csat,
    /// An NPS detractor.
    Nps,
}

impl Trigger {
    /// The `trigger` field of `recovery.*` records.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Csat => "csat",
            Trigger::Nps => "nps",
        }
    }
}

/// The three survey kinds of SPEC §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survey {
    /// `survey.csat`, 1–5.
    Csat,
    /// `survey.nps`, 0–10.
    Nps,
    /// `survey.ces`, 1–7.
    Ces,
}

/// What one survey answer means for the after-sales logic (SPEC §5), applied in this order:
/// its negative signal, the `positive` signal, then a recovery case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurveyVerdict {
    /// `csat_negative` (CSAT ≤ 2), `nps_detractor` (NPS ≤ 6) or `ces_high_effort` (CES ≤ 3).
    pub negative: Option<Signal>,
    /// `positive`: CSAT 5 or NPS ≥ 9.
    pub positive: bool,
    /// A dissatisfied answer (CSAT ≤ 2, NPS ≤ 6) opens a service-recovery case.
    pub recovery: Option<Trigger>,
}

impl Survey {
    /// The after-sales verdict of `score` (SPEC §5 table and service recovery).
    pub fn verdict(self, score: u8) -> SurveyVerdict {
        match self {
            Survey::Csat => {
                let negative = score <= 2;
                SurveyVerdict {
                    negative: negative.then_some(Signal::CsatNegative),
                    positive: score == 5,
                    recovery: negative.then_some(Trigger::Csat),
                }
            }
            Survey::Nps => {
                let detractor = NpsClass::of(score) == NpsClass::Detractor;
                SurveyVerdict {
                    negative: detractor.then_some(Signal::NpsDetractor),
                    positive: score >= 9,
                    recovery: detractor.then_some(Trigger::Nps),
                }
            }
            Survey::Ces => SurveyVerdict {
                negative: (score <= 3).then_some(Signal::CesHighEffort),
                positive: false,
                recovery: None,
            },
        }
    }
}

/// Ticket dimensions a measurement carries. `team` is an interned id (see `engine::Interner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dims {
    pub team: Option<u32>,
    pub channel: Option<Channel>,
    pub priority: Option<Priority>,
    pub category: Option<Category>,
}

impl Dims {
    /// No ticket dimensions: the measurement appears only in the `{}` group.
    pub const NONE: Dims = Dims {
        team: None,
        channel: None,
        priority: None,
        category: None,
    };
}

/// One KPI measurement (SPEC §3, §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kpi {
    /// tickets created: one per `ticket.created`.
    Created,
    /// first response time (ms).
    FirstResponse(Millis),
    /// every `ticket.solved`: resolution time (ms); `first` on the ticket's first solve, with
    /// its FCR outcome.
    Solved {
        resolution: Millis,
        first: bool,
        fcr: bool,
    },
    Reopened,
    Escalated,
    /// handle time in seconds, as given by `contact.handled`.
    Handle(f64),
    Csat(u8),
    Nps(u8),
    Ces(u8),
    Sla {
        kind: SlaKind,
        breached: bool,
    },
    OrderPlaced(f64),
    Returned,
    WarrantyClaim,
    Churned,
    // --- SPEC §5, `{}` group only ---
    ChurnSignalled,
    ChurnConfirmed,
    ChurnExpired,
    /// a `customer.churned` applied in event-time order; whether the customer had a
    /// `churn.risk` in the preceding horizon.
    ChurnOutcome {
        after_signal: bool,
    },
    RecoveryOpened,
    RecoveryAnswered(Millis),
    RecoveryOverdue,
    Repurchase {
        band: Band,
        converted: bool,
    },
}

/// A measurement: a KPI at an event time with the dimensions it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub time: Millis,
    pub dims: Dims,
    pub kpi: Kpi,
}
