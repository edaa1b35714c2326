//! Input events (SPEC §1): the event model, and ([`decode()`]) the one decode path shared by
//! every source.
//!
//! A source hands raw bytes plus a [`SourcePos`] to [`decode()`]; the result is either an
//! [`Event`] borrowing from those bytes (no allocation for strings without escapes) or a
//! [`DecodeError`] that names the field and the problem and carries a short, stable
//! [`InvalidReason`] used as the `reason` label of `cxstream_events_invalid_total`.

mod decode;

pub use decode::decode;

use std::borrow::Cow;
use std::fmt;

use crate::ts::Millis;

/// Where an input came from: Kafka coordinates or a file line. Goes into dead-letter records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePos {
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    File {
        file: String,
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
    pub id: Cow<'a, str>,
    pub time: Millis,
    pub customer: Cow<'a, str>,
    pub body: Body<'a>,
}

/// The type-specific part of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    TicketCreated {
        ticket: Cow<'a, str>,
        channel: Channel,
        priority: Priority,
        team: Option<Cow<'a, str>>,
        category: Category,
    },
    TicketMessage {
        ticket: Cow<'a, str>,
        author: Author,
        agent: Option<Cow<'a, str>>,
        public: bool,
    },
    TicketSolved {
        ticket: Cow<'a, str>,
        agent: Option<Cow<'a, str>>,
    },
    TicketReopened {
        ticket: Cow<'a, str>,
    },
    TicketEscalated {
        ticket: Cow<'a, str>,
        team: Option<Cow<'a, str>>,
    },
    ContactHandled {
        agent: Cow<'a, str>,
        channel: Channel,
        handle_seconds: f64,
        ticket: Option<Cow<'a, str>>,
    },
    CustomerContacted {
        agent: Cow<'a, str>,
        channel: Channel,
    },
    SurveyCsat {
        score: u8,
        ticket: Option<Cow<'a, str>>,
    },
    SurveyNps {
        score: u8,
    },
    SurveyCes {
        score: u8,
        ticket: Option<Cow<'a, str>>,
    },
    OrderPlaced {
        order: Cow<'a, str>,
        amount: f64,
    },
    OrderReturned {
        order: Cow<'a, str>,
        reason: Option<Cow<'a, str>>,
    },
    WarrantyClaimed {
        order: Option<Cow<'a, str>>,
        product: Option<Cow<'a, str>>,
    },
    CustomerChurned {
        reason: Option<Cow<'a, str>>,
    },
}

impl Body<'_> {
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
    InvalidJson,
    MissingField,
    WrongType,
    UnknownType,
    InvalidEnum,
    OutOfRange,
    BadTimestamp,
    BadLength,
}

impl InvalidReason {
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
