//! Sources: where input bytes come from, and the one decode path (GUIDE §1).
//!
//! ```text
//! mod.rs   feed(): bytes + source position → decoded event into the engine, or a dead letter
//! file.rs  JSON Lines files (`replay`): one line, one input
//! kafka.rs Kafka input topics (`run`): the consumer, its configuration and callbacks
//! ```
//!
//! Every source hands each input to [`feed`]: it is decoded exactly once; a valid event goes
//! to the engine, an invalid one is dead-lettered with the reason and its position. The
//! engine never sees bytes.

pub mod file;
pub mod kafka;
pub mod partitioner;

use crate::config::Config;
use crate::engine::{Disposition, Engine, StateKeys};
use crate::event::{decode, DecodeError, Event, InvalidReason, SourcePos};
use crate::ts::{self, Millis};

pub use partitioner::Partitioner;

/// Which partition an input belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// This one (a Kafka message's own partition; a plain file is partition 0).
    Fixed(i32),
    /// By its customer id among `n` partitions (`replay --partitions N`); inputs that do not
    /// decode go to partition 0 (they change no state, so where is not observable).
    ByCustomer(Partitioner, i32),
}

/// What became of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// What the engine did with it.
    pub disposition: Disposition,
    /// Its event time, when it decoded.
    pub time: Option<Millis>,
}

/// What an input may be beyond its fields (SPEC §1), and the reference clock it is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Larger inputs are invalid (`bad_length`).
    pub max_event_bytes: usize,
    /// Events more than this ahead of `now` are invalid (`bad_timestamp`).
    pub max_future: Millis,
    /// The reference clock: the Kafka message's timestamp, or `replay --now`; `None` (a
    /// message without a timestamp) skips the future check.
    pub now: Option<Millis>,
}

impl Admission {
    /// The configured bounds, judged against `now`.
    pub fn new(cfg: &Config, now: Option<Millis>) -> Admission {
        Admission {
            max_event_bytes: cfg.input.max_event_bytes,
            max_future: cfg.input.max_future.0,
            now,
        }
    }

    /// No bounds beyond the fields (tests of other rules).
    pub fn unbounded() -> Admission {
        Admission {
            max_event_bytes: usize::MAX,
            max_future: Millis::MAX,
            now: None,
        }
    }

    /// The same bounds with another reference clock.
    pub fn at(self, now: Option<Millis>) -> Admission {
        Admission { now, ..self }
    }
}

/// Decodes one input from `partition` and processes it; `pos` says where it came from (asked
/// only if the input is dead-lettered). No bounds beyond the fields: see [`feed_routed`].
pub fn feed(
    engine: &mut Engine,
    partition: i32,
    payload: &[u8],
    pos: impl FnOnce() -> SourcePos,
) -> Fed {
    feed_routed(
        engine,
        Route::Fixed(partition),
        payload,
        pos,
        &Admission::unbounded(),
    )
}

/// Decodes one input and processes it in the partition chosen by `route`, with the bounds of
/// `adm` (SPEC §1: size first, then the fields, then time from the future).
pub fn feed_routed(
    engine: &mut Engine,
    route: Route,
    payload: &[u8],
    pos: impl FnOnce() -> SourcePos,
    adm: &Admission,
) -> Fed {
    let prepared = prepare(route, payload, adm);
    feed_prepared(engine, &prepared, payload, pos, adm)
}

/// An input judged by everything [`feed_routed`] asks before the engine (size, fields, time
/// from the future) and the partition it goes to: what needs no engine, so that a replay can
/// run it ahead on another thread.
#[derive(Debug)]
pub enum Prepared<'a> {
    /// Larger than `input.max_event_bytes`.
    Oversized(i32),
    /// A valid event, its partition, and its state keys.
    Event(Event<'a>, i32, StateKeys),
    /// An invalid input, and the partition it is counted in.
    Invalid(DecodeError, i32),
}

/// The engine-free part of [`feed_routed`].
pub fn prepare<'a>(route: Route, payload: &'a [u8], adm: &Admission) -> Prepared<'a> {
    let fallback = match route {
        Route::Fixed(p) => p,
        Route::ByCustomer(..) => 0,
    };
    if payload.len() > adm.max_event_bytes {
        return Prepared::Oversized(fallback);
    }
    let decoded = decode(payload).and_then(|ev| match adm.now {
        Some(now) if ev.time.saturating_sub(now) > adm.max_future => Err(DecodeError {
            reason: InvalidReason::BadTimestamp,
            message: format!(
                "field \"time\" is {}, more than {} after the reference clock {}: in the future",
                ts::format_ms(ev.time),
                ts::duration_label(adm.max_future),
                ts::format_ms(now)
            ),
        }),
        _ => Ok(ev),
    });
    match decoded {
        Ok(ev) => {
            let partition = match route {
                Route::Fixed(p) => p,
                Route::ByCustomer(how, n) => how.partition(ev.customer.as_bytes(), n),
            };
            let keys = StateKeys::of(&ev);
            Prepared::Event(ev, partition, keys)
        }
        Err(e) => Prepared::Invalid(e, fallback),
    }
}

/// The rest of [`feed_routed`]: hands a prepared input (of `payload`) to the engine.
pub fn feed_prepared(
    engine: &mut Engine,
    prepared: &Prepared<'_>,
    payload: &[u8],
    pos: impl FnOnce() -> SourcePos,
    adm: &Admission,
) -> Fed {
    match prepared {
        &Prepared::Oversized(p) => Fed {
            disposition: engine.oversized(p, payload, adm.max_event_bytes, pos()),
            time: None,
        },
        Prepared::Event(ev, p, keys) => Fed {
            disposition: engine.process_event(*p, ev, keys, || (payload.to_vec(), pos())),
            time: Some(ev.time),
        },
        Prepared::Invalid(e, p) => Fed {
            disposition: engine.invalid(*p, e, payload, pos()),
            time: None,
        },
    }
}
