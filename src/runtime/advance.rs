//! Idle advances (SPEC §2 live mode, §7): a partition caught up and quiet moves its
//! watermark with the wall clock; the advance is written to the state topic and applied once
//! acknowledged; after a restore, the recorded advances are applied again at their input
//! positions, so what they made late stays late.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::pipeline::{now_ms, pause, resume_at, Phase, Pipeline, BEGINNING};
use super::{Consumer, IDLE_AFTER};
use crate::state::{self, Key, StateRecord};
use crate::ts::Millis;

/// An idle advance recorded in the state topic, waiting to be applied at its position.
#[derive(Debug, Clone)]
pub(super) struct Advance {
    /// Its sequence number.
    pub(super) seq: u64,
    /// The input position it happened at (next offset per topic).
    pub(super) positions: Vec<(String, i64)>,
    /// The watermark it moved to.
    pub(super) watermark: Millis,
}

impl Pipeline {
    /// Applies the recorded idle advances of `p` whose position the input has reached (before
    /// processing a message of `topic` at `offset`, if given).
    pub(super) fn replay_advances(&mut self, p: i32, at: Option<(&str, i64)>) {
        loop {
            let Some(part) = self.parts.get_mut(&p) else {
                return;
            };
            let Some(a) = part.replay.front() else {
                return;
            };
            let reached = a.positions.iter().all(|(t, pos)| {
                let next = match at {
                    Some((mt, off)) if mt == t => off,
                    _ => part.next.get(t).copied().unwrap_or(BEGINNING),
                };
                next >= *pos
            });
            if !reached {
                return;
            }
            let a = part.replay.pop_front().expect("front exists");
            part.advance_seq = a.seq;
            part.changed = true;
            self.engine.advance_partition(p, a.watermark);
        }
    }

    /// SPEC §2 live mode: a partition caught up and quiet moves its watermark with the wall
    /// clock (never past now − lateness). The advance is a fact of the partition's history:
    /// it is written to the state topic and applied only once acknowledged, the partition
    /// paused meanwhile ([`Pipeline::check_advances`]).
    pub(super) fn idle_advance(&mut self, consumer: &Consumer) {
        if self.opts.until.is_some() {
            return;
        }
        let w = now_ms().saturating_sub(self.cfg.engine.allowed_lateness.0);
        let marks: BTreeMap<i32, Millis> = self.engine.partition_watermarks().into_iter().collect();
        let eligible: Vec<i32> = self
            .parts
            .iter()
            .filter(|(p, part)| {
                part.phase == Phase::Active
                    && part.at_eof
                    && part.awaiting.is_none()
                    && part.replay.is_empty()
                    && part.last_message.elapsed() >= IDLE_AFTER
                    && marks.get(p).is_none_or(|m| w > *m)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in eligible {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let a = Advance {
                seq: part.next_advance,
                positions: part.positions(),
                watermark: w,
            };
            part.next_advance += 1;
            let rec = StateRecord {
                key: Key::Advance(a.seq).bytes(),
                value: Some(state::encode_advance(&a.positions, a.watermark)),
            };
            let seq = self.send_state(p, &[rec]);
            if let Some(part) = self.parts.get_mut(&p) {
                part.awaiting = Some((a, seq));
                pause(consumer, p, &part.topics);
            }
        }
    }

    /// Applies the idle advances whose record is acknowledged, and resumes their partitions.
    pub(super) fn check_advances(&mut self, consumer: &Consumer) {
        let acked = self.sink.acked_through();
        let ready: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, part)| part.awaiting.as_ref().is_some_and(|(_, s)| *s <= acked))
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let Some((a, _)) = part.awaiting.take() else {
                continue;
            };
            part.advance_seq = a.seq;
            part.changed = true;
            part.last_message = Instant::now();
            let positions = part.positions();
            self.engine.advance_partition(p, a.watermark);
            resume_at(consumer, p, &positions);
        }
    }

    /// Waits (until `deadline`) for the idle advances sent but not acknowledged yet and
    /// applies them, so that a final checkpoint (shutdown, revoke) includes them. A partition
    /// whose advance is not acknowledged in time gets no final checkpoint: its record may or
    /// may not be in the state topic, and the checkpoint would have to say which.
    pub(super) fn settle_advances(&mut self, consumer: &Consumer, deadline: Instant) {
        while self.parts.values().any(|part| part.awaiting.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.sink.flush(left.min(Duration::from_millis(50)));
            self.check_advances(consumer);
        }
    }
}

pub(super) fn decode_advances(raw: &[(u64, Vec<u8>)]) -> VecDeque<Advance> {
    raw.iter()
        .filter_map(|(seq, v)| {
            let (positions, watermark) = state::decode_advance(v).ok()?;
            Some(Advance {
                seq: *seq,
                positions,
                watermark,
            })
        })
        .collect()
}
