//! Input events (SPEC §1): the event model, and ([`decode()`]) the one decode path shared by
//! every source.
//!
//! A source hands raw bytes plus a [`SourcePos`] to [`decode()`]; the result is either an
//! [`Event`] borrowing from those bytes (no allocation for strings without escapes) or a
//! [`DecodeError`] that names the field and the problem and carries a short, stable
//! [`InvalidReason`] used as the `reason` label of `cxstream_events_invalid_total`.

mod decode;
mod number;
mod scan;
pub(crate) use scan::special;

pub use decode::decode;
pub use number::{MAX_AMOUNT, MAX_HANDLE_SECONDS};

use std::borrow::Cow;
use std::fmt;

use crate::ts::Millis;

/// Where an input came from: Kafka coordinates or a file line. Goes into dead-letter records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePos {
    /// A Kafka message (`cxstream run` and `demo`).
    Kafka {
        /// The input topic.
        topic: String,
        /// The input partition.
        partition: i32,
        /// The message's offset in that partition.
        offset: i64,
    },
    /// A line of a JSON Lines file (`cxstream replay`).
    File {
        /// The input file as named on the command line (`<stdin>` for standard input).
        file: String,
        /// The line number, counting from 1.
        line: u64,
    },
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $(#[doc = concat!("`", $s, "`")] $var),+ }
        impl $name {
            /// Every value, in declaration order (the order of [`Self::index`]).
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The value as written in events and labels.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            /// The value written `s` (case-sensitive), if any.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$var),)+ _ => None } }
            /// A small dense index (window keys, arrays of counters).
            pub fn index(self) -> u32 { self as u32 }
            /// The value of an [`Self::index`].
            pub fn from_index(i: u32) -> Option<Self> { Self::ALL.get(i as usize).copied() }
            /// The accepted values, for error messages.
            pub fn expected() -> String { Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ") }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

str_enum!(
    /// `channel` (SPEC §1).
    Channel { Email = "email", Phone = "phone", Chat = "chat", Social = "social", WebForm = "web_form", InPerson = "in_person", Messenger = "messenger" }
);
str_enum!(
    /// `priority` (SPEC §1).
    Priority { Urgent = "urgent", High = "high", Normal = "normal", Low = "low" }
);
str_enum!(
    /// `category` (SPEC §1), default `other`.
    Category { Warranty = "warranty", Return = "return", Complaint = "complaint", Question = "question", TechSupport = "tech_support", Consultation = "consultation", Other = "other" }
);
str_enum!(
    /// `author` of a `ticket.message`.
    Author { Agent = "agent", Customer = "customer", System = "system" }
);
str_enum!(
    /// The event types of SPEC §1.
    EventType {
        TicketCreated = "ticket.created",
        TicketMessage = "ticket.message",
        TicketSolved = "ticket.solved",
        TicketReopened = "ticket.reopened",
        TicketEscalated = "ticket.escalated",
        ContactHandled = "contact.handled",
        CustomerContacted = "customer.contacted",
        SurveyCsat = "survey.csat",
        SurveyNps = "survey.nps",
        SurveyCes = "survey.ces",
        OrderPlaced = "order.placed",
        OrderReturned = "order.returned",
        WarrantyClaimed = "warranty.claimed",
        CustomerChurned = "customer.churned",
    }
);

/// The team a ticket has when `ticket.created` names none.
pub const DEFAULT_TEAM: &str = "unassigned";

/// A valid input event. Strings borrow from the decoded bytes where possible.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// `id` (1–128 chars): unique per event; a repeat within the dedup horizon is a
    /// duplicate and changes nothing (SPEC §1).
    pub id: Cow<'a, str>,
    /// `time`: the event time, digits beyond the millisecond dropped (SPEC §1).
    pub time: Millis,
    /// `customer` (1–128 chars): the customer the event concerns.
    pub customer: Cow<'a, str>,
    /// The `type` and the fields that belong to it.
    pub body: Body<'a>,
}

/// The type-specific part of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// `ticket.created`: a request is opened; its SLA clocks start at the event's `time`.
    TicketCreated {
        /// The new ticket's id (1–128 chars).
        ticket: Cow<'a, str>,
        /// The channel the request came in on; a ticket dimension.
        channel: Channel,
        /// Decides the SLA targets (SPEC §3); a ticket dimension.
        priority: Priority,
        /// The owning team (1–64 chars); absent means [`DEFAULT_TEAM`].
        team: Option<Cow<'a, str>>,
        /// The request's category; `other` when absent.
        category: Category,
    },
    /// `ticket.message`: a message on the ticket. Only a public agent message counts as a
    /// response (SPEC §3).
    TicketMessage {
        /// The ticket written on.
        ticket: Cow<'a, str>,
        /// Who wrote it: `agent`, `customer` or `system`.
        author: Author,
        /// The agent's id (1–128 chars), if given.
        agent: Option<Cow<'a, str>>,
        /// `false` for an internal note, which never counts as a response; default `true`.
        public: bool,
    },
    /// `ticket.solved`: the ticket is marked solved (resolution time, FCR, SLA stop).
    TicketSolved {
        /// The ticket solved.
        ticket: Cow<'a, str>,
        /// The solving agent's id, if given.
        agent: Option<Cow<'a, str>>,
    },
    /// `ticket.reopened`: a solved ticket is opened again.
    TicketReopened {
        /// The ticket reopened.
        ticket: Cow<'a, str>,
    },
    /// `ticket.escalated`: escalated or transferred. Counted under the team the ticket had
    /// before it (SPEC §3).
    TicketEscalated {
        /// The ticket escalated.
        ticket: Cow<'a, str>,
        /// The ticket's team from now on (1–64 chars), if given.
        team: Option<Cow<'a, str>>,
    },
    /// `contact.handled`: one handled interaction (call, chat session, email worked) and its
    /// handling time (AHT, SPEC §3).
    ContactHandled {
        /// The agent who handled it.
        agent: Cow<'a, str>,
        /// The contact's own channel (not its ticket's).
        channel: Channel,
        /// Handling time in seconds (finite, ≥ 0).
        handle_seconds: f64,
        /// The ticket worked on, if any: a known one lends its other dimensions.
        ticket: Option<Cow<'a, str>>,
    },
    /// `customer.contacted`: an outbound contact by the company; feeds only SPEC §5 (it can
    /// answer a service-recovery case).
    CustomerContacted {
        /// The agent who made the contact.
        agent: Cow<'a, str>,
        /// The channel used.
        channel: Channel,
    },
    /// `survey.csat`: satisfaction, 5 = excellent, 1 = poor.
    SurveyCsat {
        /// The answer, an integer 1–5 (satisfied if ≥ 4).
        score: u8,
        /// The ticket rated, if any: a known one lends its dimensions and decides the
        /// repurchase band (SPEC §5).
        ticket: Option<Cow<'a, str>>,
    },
    /// `survey.nps`: likelihood to recommend.
    SurveyNps {
        /// The answer, an integer 0–10 (promoter 9–10, passive 7–8, detractor 0–6).
        score: u8,
    },
    /// `survey.ces`: "it was easy to handle my issue", 7 = strongly agree.
    SurveyCes {
        /// The answer, an integer 1–7.
        score: u8,
        /// The ticket rated, if any: a known one lends its dimensions.
        ticket: Option<Cow<'a, str>>,
    },
    /// `order.placed`: a purchase.
    OrderPlaced {
        /// The order id (1–128 chars).
        order: Cow<'a, str>,
        /// The order's value (finite, ≥ 0), summed as revenue.
        amount: f64,
    },
    /// `order.returned`: a return or exchange.
    OrderReturned {
        /// The order returned.
        order: Cow<'a, str>,
        /// Why, in free text (at most 256 chars), if given.
        reason: Option<Cow<'a, str>>,
    },
    /// `warranty.claimed`: a warranty claim or repair request.
    WarrantyClaimed {
        /// The order concerned, if given.
        order: Option<Cow<'a, str>>,
        /// The product concerned (at most 256 chars), if given.
        product: Option<Cow<'a, str>>,
    },
    /// `customer.churned`: the customer left (cancelled, closed account).
    CustomerChurned {
        /// Why, in free text (at most 256 chars), if given.
        reason: Option<Cow<'a, str>>,
    },
}

impl Body<'_> {
    /// The event's `type`.
    pub fn event_type(&self) -> EventType {
        match self {
            Body::TicketCreated { .. } => EventType::TicketCreated,
            Body::TicketMessage { .. } => EventType::TicketMessage,
            Body::TicketSolved { .. } => EventType::TicketSolved,
            Body::TicketReopened { .. } => EventType::TicketReopened,
            Body::TicketEscalated { .. } => EventType::TicketEscalated,
            Body::ContactHandled { .. } => EventType::ContactHandled,
            Body::CustomerContacted { .. } => EventType::CustomerContacted,
            Body::SurveyCsat { .. } => EventType::SurveyCsat,
            Body::SurveyNps { .. } => EventType::SurveyNps,
            Body::SurveyCes { .. } => EventType::SurveyCes,
            Body::OrderPlaced { .. } => EventType::OrderPlaced,
            Body::OrderReturned { .. } => EventType::OrderReturned,
            Body::WarrantyClaimed { .. } => EventType::WarrantyClaimed,
            Body::CustomerChurned { .. } => EventType::CustomerChurned,
        }
    }

    /// The ticket an event names, if any: the one it acts on, creates, rates or was handled
    /// for.
    pub fn ticket(&self) -> Option<&str> {
        match self {
            Body::TicketCreated { ticket, .. } => Some(ticket),
            Body::SurveyCsat { ticket, .. }
            | Body::SurveyCes { ticket, .. }
            | Body::ContactHandled { ticket, .. } => ticket.as_deref(),
            _ => self.acted_ticket(),
        }
    }

    /// The ticket a ticket event (`ticket.message|solved|reopened|escalated`) acts on.
    /// These are the events that are orphans when the ticket is unknown.
    pub fn acted_ticket(&self) -> Option<&str> {
        match self {
            Body::TicketMessage { ticket, .. }
            | Body::TicketSolved { ticket, .. }
            | Body::TicketReopened { ticket }
            | Body::TicketEscalated { ticket, .. } => Some(ticket),
            _ => None,
        }
    }
}

/// Short, stable classes of invalid input: the `reason` label of
/// `cxstream_events_invalid_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    /// `invalid_json`: not UTF-8, not valid JSON, or not a JSON object.
    InvalidJson,
    /// `missing_field`: a required field is absent or `null`.
    MissingField,
    /// `wrong_type`: a field has the wrong JSON type (e.g. a score of `4.0`).
    WrongType,
    /// `unknown_type`: `type` is not one of the SPEC §1 event types.
    UnknownType,
    /// `invalid_enum`: an enumeration field has an unknown value (they are case-sensitive).
    InvalidEnum,
    /// `out_of_range`: a score outside its scale, or a negative or non-finite number.
    OutOfRange,
    /// `bad_timestamp`: `time` is not RFC 3339 with `T` and an offset.
    BadTimestamp,
    /// `bad_length`: an identifier or text field has too few or too many characters.
    BadLength,
}

impl InvalidReason {
    /// Every reason, in declaration order (the index of the `invalid` counters in
    /// [`crate::engine::Stats`]).
    pub const ALL: &'static [InvalidReason] = &[
        InvalidReason::InvalidJson,
        InvalidReason::MissingField,
        InvalidReason::WrongType,
        InvalidReason::UnknownType,
        InvalidReason::InvalidEnum,
        InvalidReason::OutOfRange,
        InvalidReason::BadTimestamp,
        InvalidReason::BadLength,
    ];
    /// The `reason` label value, e.g. `bad_timestamp`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::InvalidJson => "invalid_json",
            InvalidReason::MissingField => "missing_field",
            InvalidReason::WrongType => "wrong_type",
            InvalidReason::UnknownType => "unknown_type",
            InvalidReason::InvalidEnum => "invalid_enum",
            InvalidReason::OutOfRange => "out_of_range",
            InvalidReason::BadTimestamp => "bad_timestamp",
            InvalidReason::BadLength => "bad_length",
        }
    }
}

/// Why an input is invalid: a class plus the error in words (naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The class (the `reason` label of `cxstream_events_invalid_total`).
    pub reason: InvalidReason,
    /// The error in words, naming the field.
    pub message: String,
}
