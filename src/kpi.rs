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
    /// First-response SLA: stops at the first public agent message or the first solve.
    FirstResponse,
    /// Resolution SLA: stops at the first solve.
    Resolution,
}

impl SlaKind {
    /// Both clocks, first response first.
    pub const ALL: [SlaKind; 2] = [SlaKind::FirstResponse, SlaKind::Resolution];
    /// The `sla` field of `sla.breached` and the `sla` label (`first_response`, `resolution`).
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
    /// Score 9–10.
    Promoter,
    /// Score 7–8.
    Passive,
    /// Score 0–6.
    Detractor,
}

impl NpsClass {
    /// The class of an NPS `score` (0–10).
    pub fn of(score: u8) -> NpsClass {
        match score {
            9..=10 => NpsClass::Promoter,
            7..=8 => NpsClass::Passive,
            _ => NpsClass::Detractor,
        }
    }
    /// The `class` label of `cxstream_nps_responses_total` (SPEC §6).
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
    /// Latest CSAT ≥ 4.
    Satisfied,
    /// Latest CSAT 3.
    Neutral,
    /// Latest CSAT ≤ 2.
    Dissatisfied,
    /// No CSAT names the ticket at or before the outcome.
    Unrated,
}

impl Band {
    /// Every band, in the order of the `repurchase` block of `kpi.window`.
    pub const ALL: [Band; 4] = [
        Band::Satisfied,
        Band::Neutral,
        Band::Dissatisfied,
        Band::Unrated,
    ];
    /// The band of the latest CSAT score naming the ticket, if any.
    pub fn of(latest_csat: Option<u8>) -> Band {
        match latest_csat {
            None => Band::Unrated,
            Some(s) if s >= 4 => Band::Satisfied,
            Some(3) => Band::Neutral,
            Some(_) => Band::Dissatisfied,
        }
    }
    /// The key in the `repurchase` block and the `csat_band` label (SPEC §5, §6).
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
    /// `csat_negative`: `survey.csat` score ≤ 2 (default weight 3).
    CsatNegative,
    /// `nps_detractor`: `survey.nps` score ≤ 6 (default weight 3).
    NpsDetractor,
    /// `ces_high_effort`: `survey.ces` score ≤ 3 (default weight 2).
    CesHighEffort,
    /// `reopen`: `ticket.reopened` (default weight 2).
    Reopen,
    /// `sla_breach`: each SLA breach of the customer's ticket, at its due (default weight 2).
    SlaBreach,
    /// `repeat_contact`: a `ticket.created` when the customer created at least 2 other
    /// tickets in the preceding 7 days (default weight 2).
    RepeatContact,
    /// `return`: `order.returned` (default weight 2).
    Return,
    /// `escalation`: `ticket.escalated` (default weight 1).
    Escalation,
    /// `warranty_claim`: `warranty.claimed` (default weight 1).
    WarrantyClaim,
    /// `positive`: `survey.csat` 5 or `survey.nps` ≥ 9 (default weight −3/12); never a reason.
    Positive,
}

impl Signal {
    /// Every signal, in the SPEC §5 table's order (also the index of per-signal sums).
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
    /// The signal's name, as listed in the `reasons` of `churn.risk`.
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
    /// The signal's configured weight (`signals.weights`).
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
    /// The ticket's team, as an interned id.
    pub team: Option<u32>,
    /// The ticket's channel (a handled contact's own channel).
    pub channel: Option<Channel>,
    /// The ticket's priority.
    pub priority: Option<Priority>,
    /// The ticket's category.
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
        /// `solved.time − created.time` (ms, ≥ 0).
        resolution: Millis,
        /// The ticket's first solve (counts as first solved).
        first: bool,
        /// First contact resolution: a first solve after at most one public agent message.
        fcr: bool,
    },
    /// one per `ticket.reopened`.
    Reopened,
    /// one per `ticket.escalated`, under the team the ticket had before it.
    Escalated,
    /// handle time in seconds, as given by `contact.handled`.
    Handle(f64),
    /// a `survey.csat` answer (1–5).
    Csat(u8),
    /// a `survey.nps` answer (0–10).
    Nps(u8),
    /// a `survey.ces` answer (1–7).
    Ces(u8),
    /// the one outcome of an SLA clock: achieved at the stop, or breached at the due.
    Sla {
        /// Which clock.
        kind: SlaKind,
        /// `true` for a breach (event time = due), `false` when achieved.
        breached: bool,
    },
    /// an `order.placed` and its `amount` (revenue).
    OrderPlaced(f64),
    /// an `order.returned`.
    Returned,
    /// a `warranty.claimed`.
    WarrantyClaim,
    /// a `customer.churned`, as soon as it is applied: the `customers.churned` count (SPEC §3).
    Churned,
    // --- SPEC §5, `{}` group only ---
    /// a `churn.risk` record, at its time (`signalled`).
    ChurnSignalled,
    /// a `churn.risk` record confirmed by a churn within the effectiveness horizon.
    ChurnConfirmed,
    /// a `churn.risk` record expired without churn at its time + the horizon.
    ChurnExpired,
    /// a `customer.churned` applied in event-time order; whether the customer had a
    /// `churn.risk` in the preceding horizon.
    ChurnOutcome {
        /// Counts as `churned_after_signal` (the recall numerator).
        after_signal: bool,
    },
    /// a service-recovery case opened by a dissatisfied survey answer.
    RecoveryOpened,
    /// a recovery case answered in time; the answer time in ms (its time − the trigger's).
    RecoveryAnswered(Millis),
    /// a recovery case unanswered at its due (event time = due).
    RecoveryOverdue,
    /// the outcome of a repurchase cohort entry: converted at the order, or expired at the
    /// first solve + the horizon.
    Repurchase {
        /// The CSAT band at the outcome time.
        band: Band,
        /// `true` when the customer ordered within the horizon.
        converted: bool,
    },
}

/// A measurement: a KPI at an event time with the dimensions it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The measurement's event time (SPEC §3 table), which picks its windows.
    pub time: Millis,
    /// The ticket dimensions it carries, which pick its groups.
    pub dims: Dims,
    /// What is measured.
    pub kpi: Kpi,
}
