//! The producer's side of the sink: what its delivery callbacks (run inside `poll`/`flush`)
//! record — acknowledgements, failed records, and what the producer's queue holds (records
//! and bytes, in all and of state records) — shared with the [`Sink`](super::kafka::Sink)
//! across producer replacements.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

use super::kinds::{Owned, STATE_KIND};
use crate::logs::LogLimiter;

/// A record whose delivery failed.
pub(super) struct Failed {
    pub(super) rec: Owned,
    pub(super) error: KafkaError,
}

/// The delivery opaque: the sequence number, and in the top byte the record's kind and
/// whether it was sent after its parts (bit 7).
pub(super) fn opaque(seq: u64, kind: u8, after: bool) -> usize {
    let top = u64::from(kind) | if after { 0x80 } else { 0 };
    ((top << 56) | (seq & ((1 << 56) - 1))) as usize
}

fn split_opaque(o: usize) -> (u64, u8, bool) {
    let top = (o as u64 >> 56) as u8;
    (o as u64 & ((1 << 56) - 1), top & 0x7f, top & 0x80 != 0)
}

/// The bytes a record takes in the producer's queue, as counted here: key + value.
pub(super) fn record_bytes(key: Option<&[u8]>, payload: Option<&[u8]>) -> u64 {
    (key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len)) as u64
}

/// cxstream's default for the producer's `queue.buffering.max.kbytes` (librdkafka's is 1 GiB):
/// the most key + value bytes its local queue holds. With backpressure (`run`), a full queue
/// pauses the input, so this bounds the memory outputs and checkpoints in flight take.
pub const QUEUE_KBYTES: u64 = 8 * 1024;

/// How many state records (and bytes of them) may be handed to the producer now
/// ([`Sink::room`]).
#[derive(Debug, Clone, Copy)]
pub struct Room {
    records: usize,
    bytes: u64,
    /// No state record is in the producer's queue: the next one goes whatever its size (so a
    /// record larger than the state records' share still goes, alone).
    empty: bool,
}

impl Room {
    /// No room.
    pub const NONE: Room = Room {
        records: 0,
        bytes: 0,
        empty: false,
    };

    /// Room for at most `records` records (and no more than the bytes there are).
    pub fn at_most(mut self, records: usize) -> Room {
        self.records = self.records.min(records);
        self
    }

    /// Takes room for one record of `bytes` bytes (key + value): `false` when there is none.
    pub fn take(&mut self, bytes: u64) -> bool {
        if self.records == 0 || (bytes > self.bytes && !self.empty) {
            return false;
        }
        self.records -= 1;
        self.bytes = self.bytes.saturating_sub(bytes);
        self.empty = false;
        true
    }
}

/// What the producer's queue holds, against its capacity.
pub(super) struct Occupancy {
    pub(super) cap: usize,
    pub(super) used: usize,
    pub(super) state: usize,
    pub(super) cap_bytes: u64,
    pub(super) bytes: u64,
    pub(super) state_bytes: u64,
}

impl Occupancy {
    /// State records get half of the queue (records and bytes) to themselves, and never more
    /// than it has room for.
    pub(super) fn room_for_state(&self) -> Room {
        Room {
            records: (self.cap / 2)
                .saturating_sub(self.state)
                .min(self.cap.saturating_sub(self.used)),
            bytes: (self.cap_bytes / 2)
                .saturating_sub(self.state_bytes)
                .min(self.cap_bytes.saturating_sub(self.bytes)),
            empty: self.state == 0,
        }
    }

    /// Records other than state records take more than half of the queue.
    pub(super) fn outputs_over_half(&self) -> bool {
        self.used.saturating_sub(self.state) > self.cap / 2
            || self.bytes.saturating_sub(self.state_bytes) > self.cap_bytes / 2
    }
}

/// State shared by the producer's delivery callbacks and the sink.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) failed: Mutex<Vec<Failed>>,
    /// Sequence numbers handed to the producer and not acknowledged yet.
    pub(super) outstanding: Mutex<BTreeSet<u64>>,
    pub(super) acked: AtomicU64,
    /// State records in the producer's queue (handed over, no delivery report yet).
    pub(super) state_in_flight: AtomicU64,
    /// Key + value bytes of every record in the producer's queue.
    pub(super) bytes_in_flight: AtomicU64,
    /// Key + value bytes of the state records among them.
    pub(super) state_bytes_in_flight: AtomicU64,
    pub(super) delivery_errors: AtomicU64,
    pub(super) warn: LogLimiter,
}

fn take(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Shared {
    /// A record of `kind` with `bytes` of key and value entered the producer's queue.
    pub(super) fn handed(&self, kind: u8, bytes: u64) {
        self.bytes_in_flight.fetch_add(bytes, Ordering::Relaxed);
        if kind == STATE_KIND {
            self.state_in_flight.fetch_add(1, Ordering::Relaxed);
            self.state_bytes_in_flight
                .fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A record left the producer's queue (its delivery report: acknowledged or failed).
    fn left(&self, kind: u8, bytes: u64) {
        take(&self.bytes_in_flight, bytes);
        if kind == STATE_KIND {
            take(&self.state_in_flight, 1);
            take(&self.state_bytes_in_flight, bytes);
        }
    }
}

/// The producer's context: counts acknowledgements and keeps failed records.
pub struct SinkContext {
    pub(super) shared: Arc<Shared>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        crate::logs::log_librdkafka("producer", &self.shared.warn, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(n) = self.shared.warn.allow() {
            tracing::warn!(suppressed = n, "kafka producer: {error}: {reason}");
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (seq, kind, after) = split_opaque(opaque);
        // Acknowledged or failed, the record has left the producer's queue.
        let msg = match result {
            Ok(m) => m,
            Err((_, m)) => m,
        };
        self.shared
            .left(kind, record_bytes(msg.key(), msg.payload()));
        match result {
            Ok(_) => {
                self.shared.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut o) = self.shared.outstanding.lock() {
                    o.remove(&seq);
                }
            }
            Err((error, msg)) => {
                self.shared.delivery_errors.fetch_add(1, Ordering::Relaxed);
                let f = Failed {
                    rec: Owned {
                        seq,
                        kind,
                        topic: msg.topic().to_string(),
                        partition: (msg.partition() >= 0).then_some(msg.partition()),
                        key: msg.key().map(<[u8]>::to_vec),
                        payload: msg.payload().map(<[u8]>::to_vec),
                        after,
                    },
                    error: error.clone(),
                };
                if let Ok(mut v) = self.shared.failed.lock() {
                    v.push(f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(used: usize, state: usize, bytes: u64, state_bytes: u64) -> Occupancy {
        Occupancy {
            cap: 100,
            used,
            state,
            cap_bytes: 1000,
            bytes,
            state_bytes,
        }
    }

    #[test]
    fn state_records_get_half_of_the_queue_in_records_and_bytes() {
        // Empty queue: 50 records or 500 bytes, whichever comes first.
        let mut r = queue(0, 0, 0, 0).room_for_state();
        assert!(r.take(300));
        assert!(r.take(200));
        assert!(!r.take(1), "500 bytes taken");
        let mut r = queue(0, 0, 0, 0).room_for_state().at_most(2);
        assert!(r.take(1) && r.take(1) && !r.take(1), "at most 2 records");
        // Outputs fill 900 of the 1000 bytes: only what is left, though state has its half.
        let mut r = queue(10, 0, 900, 0).room_for_state();
        assert!(r.take(60));
        assert!(!r.take(60));
        // State records already hold their half.
        let mut r = queue(10, 5, 600, 500).room_for_state();
        assert!(!r.take(1));
        assert!(!Room::NONE.clone().take(0));
    }

    #[test]
    fn a_state_record_larger_than_the_share_goes_alone() {
        let mut r = queue(0, 0, 0, 0).room_for_state();
        assert!(r.take(5_000), "nothing of state in the queue: it goes");
        assert!(!r.take(1), "and nothing goes with it");
        let mut r = queue(1, 1, 10, 10).room_for_state();
        assert!(!r.take(5_000), "not while another state record is queued");
    }

    #[test]
    fn outputs_over_half_in_records_or_in_bytes() {
        assert!(!queue(50, 0, 500, 0).outputs_over_half());
        assert!(queue(51, 0, 10, 0).outputs_over_half());
        assert!(queue(10, 0, 501, 0).outputs_over_half());
        assert!(!queue(60, 20, 900, 450).outputs_over_half());
    }

    #[test]
    fn a_delivery_report_takes_its_bytes_out_of_the_queue() {
        let s = Shared::default();
        s.handed(STATE_KIND, 100);
        s.handed(0, 40);
        assert_eq!(s.bytes_in_flight.load(Ordering::Relaxed), 140);
        assert_eq!(s.state_bytes_in_flight.load(Ordering::Relaxed), 100);
        s.left(STATE_KIND, 100);
        s.left(0, 40);
        s.left(0, 40);
        assert_eq!(
            s.bytes_in_flight.load(Ordering::Relaxed),
            0,
            "never below zero"
        );
        assert_eq!(s.state_in_flight.load(Ordering::Relaxed), 0);
    }
}
