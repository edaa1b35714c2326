//! Fault injection: invalid lines of every SPEC §1 class (orphan ticket events are in
//! `orphans`, verbatim duplicates in `duplicates`).
//!
//! The invalid lines are a table, [`CLASSES`]: per class of `InvalidReason`, a list of
//! [`Case`]s, each a small description of a line (the event it starts from, one envelope field
//! left out or replaced, the fields after the envelope, and how the line is finished or
//! mangled). [`Generator::write_case`] is the one piece of code that writes any case, so a new
//! kind of bad input is one row. Injected lines carry a time just before the current stream
//! time and have no side effects on the simulation (ticket numbers they name are never used).

use std::fmt::Write as _;

use rand::Rng;

use super::json::{push_padded, Line};
use super::tables::Team;
use super::Generator;
use crate::event::{Author, Channel, EventType, InvalidReason, Priority};
use crate::ts::SECOND;
use EventType::*;
use Field::{Agent, Long, Num, Order, Raw, Str};

/// One way to write an invalid line.
#[derive(Clone, Copy)]
struct Case {
    base: Base,
    edit: Edit,
    fields: &'static [Field],
    finish: Finish,
}

/// What the line starts as.
#[derive(Clone, Copy)]
enum Base {
    /// The envelope of a known event type.
    Event(EventType),
    /// The envelope with this text as the `type`.
    Type(&'static str),
    /// A complete, valid NPS answer or order (chosen at random), without its closing brace.
    Plain,
}

/// A change to the envelope (`{"id":…,"type":…,"time":…,"customer":…`).
#[derive(Clone, Copy)]
enum Edit {
    Keep,
    Drop(Key),
    Set(Key, Value),
}

/// An envelope field.
#[derive(Clone, Copy)]
enum Key {
    Id,
    Type,
    Time,
    Customer,
}

impl Key {
    /// The member's name as it starts in the envelope: `"time":`.
    fn member(self) -> &'static str {
        match self {
            Key::Id => "\"id\":",
            Key::Type => "\"type\":",
            Key::Time => "\"time\":",
            Key::Customer => "\"customer\":",
        }
    }
}

/// A JSON value written into an envelope field.
#[derive(Clone, Copy)]
enum Value {
    /// A string.
    Text(Repeat),
    /// The line's time as a bare number of milliseconds.
    Millis,
    /// The customer number as a bare number.
    CustomerNo,
    /// A broken timestamp string made from the line's good time in UTC (`good`, always 24
    /// characters like `2026-11-22T10:00:00.250Z`): `good[..a] + b + good[c..]`.
    Spliced(usize, &'static str, usize),
}

/// A string: `prefix` and then `unit` repeated `n` times.
#[derive(Clone, Copy)]
struct Repeat(&'static str, &'static str, usize);

/// A field after the envelope.
#[derive(Clone, Copy)]
enum Field {
    Str(&'static str, &'static str),
    Raw(&'static str, &'static str),
    Num(&'static str, u64),
    Long(&'static str, Repeat),
    Channel(Channel),
    Priority(Priority),
    Author(Author),
    Team(Team),
    Agent(Team, u8),
    Ticket(TicketNo),
    /// The next order number (used up).
    Order,
}

/// The ticket an invalid line names.
#[derive(Clone, Copy)]
enum TicketNo {
    /// The next ticket number plus this offset: never created.
    Unseen(u64),
    /// Like `Unseen`, plus the case's random number `v`.
    UnseenPlusV(u64),
    /// The last ticket created (or `t0000000001`).
    Latest,
}

/// How the line ends.
#[derive(Clone, Copy)]
enum Finish {
    /// `}`.
    Close,
    /// `,}`.
    TrailingComma,
    /// `}`, then every `"` becomes `'`.
    SingleQuotes,
    /// `}`, then the object is wrapped in `[` `]`.
    InArray,
    /// `}`, then the line is cut at a random place.
    Truncated,
    /// The whole line is replaced by this text.
    Text(&'static str),
    /// The whole line is replaced by the first text, the customer id, the second text.
    AroundCustomer(&'static str, &'static str),
}

// Constructors that keep the rows of `CLASSES` short.

/// An event of type `ty` with `fields`, closed.
const fn ev(ty: EventType, fields: &'static [Field]) -> Case {
    Case {
        base: Base::Event(ty),
        edit: Edit::Keep,
        fields,
        finish: Finish::Close,
    }
}

/// A random valid line, finished by `finish`.
const fn plain(finish: Finish) -> Case {
    Case {
        base: Base::Plain,
        edit: Edit::Keep,
        fields: &[],
        finish,
    }
}

/// An event of type `ty` (for its id and key) whose text is replaced by `finish`.
const fn replaced(ty: EventType, finish: Finish) -> Case {
    Case {
        finish,
        ..ev(ty, &[])
    }
}

/// An NPS answer without the envelope member `key`.
const fn drop(key: Key, fields: &'static [Field]) -> Case {
    Case {
        edit: Edit::Drop(key),
        ..ev(EventType::SurveyNps, fields)
    }
}

/// An event whose envelope member `key` is `v`.
const fn set(ty: EventType, key: Key, v: Value, fields: &'static [Field]) -> Case {
    Case {
        edit: Edit::Set(key, v),
        ..ev(ty, fields)
    }
}

/// A ticket event with the type text `ty`.
const fn unknown_type(ty: &'static str) -> Case {
    Case {
        base: Base::Type(ty),
        ..ev(EventType::TicketCreated, &[Field::Ticket(TicketNo::Latest)])
    }
}

/// A CSAT answer with the timestamp `good[..a] + b + good[c..]` (see [`Value::Spliced`]).
const fn bad_time(a: usize, b: &'static str, c: usize) -> Case {
    let v = Value::Spliced(a, b, c);
    set(EventType::SurveyCsat, Key::Time, v, &[Num("score", 4)])
}

const LATEST: Field = Field::Ticket(TicketNo::Latest);
const EMAIL: Field = Field::Channel(Channel::Email);
const PHONE: Field = Field::Channel(Channel::Phone);
const CHAT: Field = Field::Channel(Channel::Chat);
const HIGH: Field = Field::Priority(Priority::High);
const NORMAL: Field = Field::Priority(Priority::Normal);
const LOW: Field = Field::Priority(Priority::Low);
const BILLING: Field = Field::Team(Team::Billing);
const BY_AGENT: Field = Field::Author(Author::Agent);

/// A ticket number that is never created: the next one plus `offset`.
const fn unseen(offset: u64) -> Field {
    Field::Ticket(TicketNo::Unseen(offset))
}

/// Like [`unseen`], plus the case number `v`.
const fn unseen_plus_v(offset: u64) -> Field {
    Field::Ticket(TicketNo::UnseenPlusV(offset))
}

/// A string of `n` times `unit` after `prefix`.
const fn long(prefix: &'static str, unit: &'static str, n: usize) -> Value {
    Value::Text(Repeat(prefix, unit, n))
}

/// The invalid lines, by class; a line picks a class and then a case by a random number `v`
/// (`cases[v % cases.len()]`). Ids and customers take 1–128 characters, teams 1–64, reasons
/// up to 256.
#[rustfmt::skip]
const CLASSES: [(InvalidReason, &[Case]); 9] = [
    (InvalidReason::InvalidJson, &[
        replaced(TicketCreated,
            Finish::Text("ERROR upstream timeout while exporting ticket events")),
        replaced(TicketCreated, Finish::AroundCustomer("{type:ticket.created,customer:", "}")),
        plain(Finish::TrailingComma),
        plain(Finish::SingleQuotes),
        ev(SurveyCsat, &[Raw("score", "04")]),
        ev(OrderPlaced, &[Order, Raw("amount", "NaN")]),
        plain(Finish::InArray),
        replaced(SurveyNps,
            Finish::AroundCustomer("<event type=\"survey.nps\" customer=\"", "\" score=\"9\"/>")),
    ]),
    (InvalidReason::InvalidJson, &[plain(Finish::Truncated)]),
    (InvalidReason::MissingField, &[
        ev(TicketCreated, &[unseen(5_000_000_000), EMAIL]),
        ev(SurveyCsat, &[]),
        ev(SurveyNps, &[Raw("score", "null")]),
        ev(OrderPlaced, &[Order]),
        ev(ContactHandled, &[Agent(Team::Tech, 3), PHONE]),
        ev(TicketMessage, &[LATEST]),
        drop(Key::Customer, &[Num("score", 8)]),
        drop(Key::Time, &[Num("score", 8)]),
        drop(Key::Id, &[Num("score", 8)]),
        drop(Key::Type, &[Num("score", 8)]),
    ]),
    (InvalidReason::WrongType, &[
        ev(SurveyCsat, &[Str("score", "4")]),
        ev(SurveyCsat, &[Raw("score", "4.0")]),
        ev(SurveyNps, &[Raw("score", "8.5")]),
        ev(OrderPlaced, &[Order, Str("amount", "19.99")]),
        ev(TicketMessage, &[LATEST, BY_AGENT, Agent(Team::Billing, 1), Str("public", "false")]),
        ev(ContactHandled, &[Agent(Team::Tech, 2), CHAT, Str("handle_seconds", "300")]),
        ev(TicketReopened, &[Raw("ticket", "12345")]),
        set(SurveyNps, Key::Time, Value::Millis, &[Num("score", 7)]),
        set(CustomerChurned, Key::Customer, Value::CustomerNo, &[]),
    ]),
    (InvalidReason::UnknownType, &[
        unknown_type("ticket.deleted"),
        unknown_type("order.cancelled"),
        unknown_type("Ticket.Created"),
        unknown_type("survey.Csat"),
        unknown_type("ticket_created"),
        unknown_type(""),
    ]),
    (InvalidReason::InvalidEnum, &[
        ev(TicketCreated, &[unseen_plus_v(5_000_000_000), Str("channel", "fax"), NORMAL, BILLING]),
        ev(TicketCreated, &[unseen_plus_v(5_000_000_000), Str("channel", "Email"), HIGH, BILLING]),
        ev(TicketCreated, &[unseen_plus_v(5_000_000_000), EMAIL, Str("priority", "URGENT"), BILLING]),
        ev(TicketCreated, &[unseen(6_000_000_000), CHAT, Str("priority", "critical")]),
        ev(TicketCreated, &[unseen(7_000_000_000), PHONE, LOW, Str("category", "refund")]),
        ev(TicketMessage, &[LATEST, Str("author", "bot")]),
        ev(ContactHandled, &[Agent(Team::Logistics, 4), Str("channel", "sms"), Raw("handle_seconds", "120.5")]),
    ]),
    (InvalidReason::OutOfRange, &[
        ev(SurveyCsat, &[Raw("score", "0")]),
        ev(SurveyCsat, &[Raw("score", "6")]),
        ev(SurveyNps, &[Raw("score", "11")]),
        ev(SurveyNps, &[Raw("score", "-1")]),
        ev(SurveyCes, &[Raw("score", "0")]),
        ev(SurveyCes, &[Raw("score", "8")]),
        ev(ContactHandled, &[Agent(Team::Billing, 5), PHONE, Raw("handle_seconds", "-12.5")]),
        ev(OrderPlaced, &[Order, Raw("amount", "-5.00")]),
    ]),
    // From the good time 2026-11-22T10:00:00.250Z:
    (InvalidReason::BadTimestamp, &[
        bad_time(23, "", 24),         // 2026-11-22T10:00:00.250
        bad_time(10, " ", 11),        // 2026-11-22 10:00:00.250Z
        bad_time(4, "-13", 7),        // 2026-13-22T10:00:00.250Z
        bad_time(4, "-02-30", 10),    // 2026-02-30T10:00:00.250Z
        bad_time(10, "T25", 13),      // 2026-11-22T25:00:00.250Z
        bad_time(23, "+0200", 24),    // 2026-11-22T10:00:00.250+0200
        bad_time(10, "", 24),         // 2026-11-22
        bad_time(0, "yesterday", 24), // yesterday
    ]),
    (InvalidReason::BadLength, &[
        set(SurveyNps, Key::Id, long("e", "9", 128), &[Num("score", 9)]),
        set(SurveyNps, Key::Id, long("", "", 0), &[Num("score", 9)]),
        set(SurveyNps, Key::Customer, long("", "c", 129), &[Num("score", 9)]),
        ev(TicketCreated, &[unseen(8_000_000_000), EMAIL, NORMAL,
            Long("team", Repeat("", "customer-care-", 5))]),
        ev(CustomerChurned, &[Long("reason", Repeat("", "too expensive; ", 18))]),
        ev(OrderReturned, &[Long("order", Repeat("o", "1", 128))]),
    ]),
];

impl Generator {
    /// Event time of an injected line: just before the current stream time.
    pub(super) fn inject_time(&mut self) -> i64 {
        (self.now - self.rng.gen_range(0..2 * SECOND)).max(self.start_ms)
    }

    /// Writes an invalid line: a random case of a random class.
    pub(super) fn write_invalid(&mut self) {
        let t = self.inject_time();
        let slot = self.pick_slot();
        let cust = self.customers[slot as usize].no;
        let class = self.rng.gen_range(0..CLASSES.len() as u32);
        let v = self.rng.gen_range(0..100u32);
        let cases = CLASSES[class as usize].1;
        self.write_case(&cases[v as usize % cases.len()], t, cust, v);
    }

    /// Writes one invalid case at `t` for `cust`; `v` is the number that chose it.
    fn write_case(&mut self, case: &Case, t: i64, cust: u32, v: u32) {
        match case.base {
            Base::Event(ty) => self.begin(ty, t, cust),
            Base::Type(ty) => self.out.begin(&mut self.rng, ty, t, cust),
            Base::Plain => self.begin_plain(t, cust),
        }
        match case.edit {
            Edit::Keep => {}
            Edit::Drop(key) => {
                let (start, _, end) = member(&self.out.text, key);
                // Take one comma with the member: the one after `id`, the one before the others.
                let span = match key {
                    Key::Id => start..end + 1,
                    _ => start - 1..end,
                };
                self.out.text.replace_range(span, "");
            }
            Edit::Set(key, value) => {
                let mut json = String::with_capacity(160);
                self.write_value(&mut json, value, t, cust);
                let (_, at, end) = member(&self.out.text, key);
                self.out.text.replace_range(at..end, &json);
            }
        }
        for &f in case.fields {
            self.write_field(f, v);
        }
        let line = &mut self.out.text;
        match case.finish {
            Finish::Close => line.push('}'),
            Finish::TrailingComma => line.push_str(",}"),
            Finish::SingleQuotes => *line = format!("{line}}}").replace('"', "'"),
            Finish::InArray => *line = format!("[{line}}}]"),
            Finish::Truncated => {
                line.push('}');
                let cut = self.rng.gen_range(1..line.len() - 1);
                line.truncate(cut);
            }
            Finish::Text(s) => {
                line.clear();
                line.push_str(s);
            }
            Finish::AroundCustomer(a, b) => {
                line.clear();
                line.push_str(a);
                line.push_str(&self.out.key);
                line.push_str(b);
            }
        }
        self.out.time_ms = t;
    }

    /// The envelope of a valid NPS answer or order at `t`.
    fn begin_plain(&mut self, t: i64, cust: u32) {
        if self.chance(0.5) {
            self.begin(EventType::SurveyNps, t, cust);
            let s = self.rng.gen_range(0..=10u64);
            self.out.num("score", s);
        } else {
            self.begin(EventType::OrderPlaced, t, cust);
            self.out.order(self.next_order);
            self.next_order += 1;
            self.out.raw("amount", "39.90");
        }
    }

    /// Writes the JSON text of an envelope value into `json`.
    fn write_value(&mut self, json: &mut String, value: Value, t: i64, cust: u32) {
        match value {
            Value::Text(r) => {
                json.push('"');
                r.push_to(json);
                json.push('"');
            }
            Value::Millis => {
                let _ = write!(json, "{t}");
            }
            Value::CustomerNo => push_padded(json, cust as u64, 1),
            Value::Spliced(a, b, c) => {
                let mut good = String::with_capacity(32);
                self.out.write_utc(&mut good, t);
                json.push('"');
                json.push_str(&good[..a]);
                json.push_str(b);
                json.push_str(&good[c..]);
                json.push('"');
            }
        }
    }

    /// Appends one field after the envelope.
    fn write_field(&mut self, f: Field, v: u32) {
        let out: &mut Line = &mut self.out;
        match f {
            Field::Str(name, s) => out.str(name, s),
            Field::Raw(name, s) => out.raw(name, s),
            Field::Num(name, n) => out.num(name, n),
            Field::Long(name, r) => {
                let mut s = String::new();
                r.push_to(&mut s);
                out.str(name, &s);
            }
            Field::Channel(c) => out.str("channel", c.as_str()),
            Field::Priority(p) => out.str("priority", p.as_str()),
            Field::Author(a) => out.str("author", a.as_str()),
            Field::Team(team) => out.str("team", team.name()),
            Field::Agent(team, agent) => out.agent(team, agent),
            Field::Ticket(no) => out.ticket(match no {
                TicketNo::Unseen(off) => self.next_ticket + off,
                TicketNo::UnseenPlusV(off) => self.next_ticket + off + v as u64,
                TicketNo::Latest => self.next_ticket.saturating_sub(1).max(1),
            }),
            Field::Order => {
                out.order(self.next_order);
                self.next_order += 1;
            }
        }
    }
}

impl Repeat {
    /// Appends the string (without quotes) to `s`.
    fn push_to(self, s: &mut String) {
        s.push_str(self.0);
        for _ in 0..self.2 {
            s.push_str(self.1);
        }
    }
}

/// Where the envelope member `key` is in `line`: (start of `"key":`, start of the value, end
/// of the value). Values in the envelope are strings without quotes inside.
fn member(line: &str, key: Key) -> (usize, usize, usize) {
    let m = key.member();
    let start = line.find(m).expect("the envelope has every member");
    let at = start + m.len();
    let end = at + 1 + line[at + 1..].find('"').expect("a closed string") + 1;
    (start, at, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode;
    use crate::generate::GenerateOptions;

    #[test]
    fn every_case_is_rejected_for_the_reason_of_its_class() {
        let mut g = Generator::new(GenerateOptions::default());
        let t = g.start_ms + 7_250;
        for (reason, cases) in CLASSES {
            for v in 0..100 {
                g.write_case(&cases[v as usize % cases.len()], t, 42, v);
                let line = &g.out.text;
                let err = decode(line.as_bytes()).expect_err(line);
                assert_eq!(err.reason, reason, "{line}: {}", err.message);
            }
        }
    }
}
