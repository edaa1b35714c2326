//! The event-time scheduler of one shard: SLA timers, after-sales timers and held after-sales
//! inputs, in one queue ordered as SPEC §2 and §5 require — by time; at equal times inputs (in
//! arrival order) before timers (in the order they were set).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

use crate::ts::Millis;

/// An after-sales input (SPEC §5), held until the watermark is strictly past its time.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Csat {
        score: u8,
        /// The ticket the survey names, if any.
        ticket: Option<Box<str>>,
        /// Whether that ticket is known and belongs to the survey's customer.
        known: bool,
    },
    Nps(u8),
    Ces(u8),
    Reopen,
    Escalation,
    TicketCreated,
    FirstSolve(Box<str>),
    Return,
    WarrantyClaim,
    Churn,
    Order,
    /// `customer.contacted` or a public agent `ticket.message`: answers a recovery case.
    Contact,
    /// An SLA breach found when its clock stopped after the due (a reply or solve that came
    /// late): the `sla_breach` signal, held at its due like any input (SPEC §5).
    SlaBreach,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    Input {
        customer: u32,
        /// Boxed: held inputs are few and short-lived, timers many (memory, issue 10: a
        /// scheduled item's slot is 16 bytes instead of 32).
        input: Box<Input>,
    },
    /// An SLA clock's due: the ticket's slab handle. Which clock is told by the timer's
    /// sequence number, which the clock keeps (a ticket that since took the handle has clocks
    /// with other numbers: the timer is stale).
    Sla {
        ticket: u32,
    },
    RecoveryDue {
        customer: u32,
        case: u64,
    },
    RiskExpiry {
        customer: u32,
        risk: u64,
    },
    CohortExpiry {
        customer: u32,
        cohort: u64,
    },
}

/// Held inputs come before timers at equal times.
pub const INPUT: u8 = 0;
/// Timers come after held inputs at equal times.
pub const TIMER: u8 = 1;

/// The state a scheduled item reads when it fires (see [`Scheduler::peek_target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A ticket's slab handle.
    Ticket(u32),
    /// A customer's slab handle.
    Customer(u32),
}

/// One scheduled item.
#[derive(Debug)]
pub struct Item {
    /// When it is due (event time).
    pub time: Millis,
    /// [`INPUT`] or [`TIMER`].
    pub class: u8,
    /// Order of setting: ties fire in this order.
    pub seq: u64,
    /// What to do.
    pub what: What,
}

impl Item {
    fn order_key(&self) -> (Millis, u8, u64) {
        (self.time, self.class, self.seq)
    }
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.order_key() == o.order_key()
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // BinaryHeap is a max-heap: reverse for earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.order_key().cmp(&self.order_key())
    }
}

/// The scheduler of one partition: order keys in two levels — a min-heap of the keys whose
/// time falls before `near_end` (in buckets of 2^[`BUCKET_BITS`] ms), the later ones in
/// per-bucket lists until their bucket comes up — and the items themselves in a slab beside
/// them. One big heap of whole items cost ~12 % of a replay in cache misses.
#[derive(Debug, Default)]
pub struct Scheduler {
    near: BinaryHeap<Reverse<Key>>,
    /// Keys whose bucket is below this are in `near`; the others in `far`.
    near_end: Option<i64>,
    far: BTreeMap<i64, Vec<Reverse<Key>>>,
    /// What each key stands for (its time, class and sequence number are in the key), except
    /// SLA timers (see [`SLA`]).
    slab: Vec<Option<What>>,
    free: Vec<u32>,
    len: usize,
    seq: u64,
}

/// A key's slot with this bit is an SLA timer of the ticket with the handle below it: no slab
/// entry (memory, issue 10: 16 bytes less for each of the two timers of an open ticket).
const SLA: u32 = 1 << 31;

/// Far keys are grouped in buckets of 2^16 ms (about a minute).
const BUCKET_BITS: u32 = 16;

/// An item's order key and its slot: time (sign flipped so that it orders as unsigned), then
/// class (top bit) and sequence number (below 2^63), then the slot (never a tie-breaker:
/// sequence numbers are unique). 24 bytes.
type Key = (u64, u64, u32);

/// The order key of an item.
fn order_key(time: Millis, class: u8, seq: u64) -> (u64, u64) {
    (
        (time as u64) ^ (1 << 63),
        (u64::from(class & 1) << 63) | (seq & !(1 << 63)),
    )
}

/// The item (time, class, sequence number) of a key.
fn key_item(key: &Key) -> (Millis, u8, u64) {
    (
        (key.0 ^ (1 << 63)) as Millis,
        (key.1 >> 63) as u8,
        key.1 & !(1 << 63),
    )
}

impl Scheduler {
    fn insert(&mut self, item: Item) {
        let (hi, lo) = order_key(item.time, item.class, item.seq);
        let slot = match item.what {
            // The bulk of the timers (two per open ticket) need no slot.
            What::Sla { ticket } if ticket < SLA => SLA | ticket,
            what => self.store(what),
        };
        let bucket = item.time >> BUCKET_BITS;
        if self.near_end.is_some_and(|end| bucket < end) {
            self.near.push(Reverse((hi, lo, slot)));
        } else {
            self.far
                .entry(bucket)
                .or_default()
                .push(Reverse((hi, lo, slot)));
        }
        self.len += 1;
    }

    /// Stores what an item stands for; returns its slot.
    fn store(&mut self, what: What) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(what);
                slot
            }
            None => {
                self.slab.push(Some(what));
                (self.slab.len() - 1) as u32
            }
        }
    }

    /// What the item with `slot` stands for, taken out of the slab.
    fn take(&mut self, slot: u32) -> Option<What> {
        if slot & SLA != 0 {
            return Some(What::Sla {
                ticket: slot & !SLA,
            });
        }
        let what = self.slab.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(what)
    }

    fn push(&mut self, time: Millis, class: u8, what: What) -> u64 {
        self.seq += 1;
        self.insert(Item {
            time,
            class,
            seq: self.seq,
            what,
        });
        self.seq
    }

    /// The first item if `pred` holds for its time and class.
    fn pop_if(&mut self, pred: impl FnOnce(Millis, u8) -> bool) -> Option<Item> {
        if self.near.is_empty() {
            // Every far bucket is at or after `near_end`: the first one becomes near.
            let (bucket, keys) = self.far.pop_first()?;
            self.near = BinaryHeap::from(keys);
            self.near_end = Some(bucket + 1);
        }
        let (time, class, seq) = key_item(&self.near.peek()?.0);
        if !pred(time, class) {
            return None;
        }
        let Reverse((_, _, slot)) = self.near.pop()?;
        let what = self.take(slot)?;
        self.len -= 1;
        Some(Item {
            time,
            class,
            seq,
            what,
        })
    }

    /// Holds an after-sales input; returns its sequence number.
    pub fn push_input(&mut self, time: Millis, customer: u32, input: Input) -> u64 {
        self.push(
            time,
            INPUT,
            What::Input {
                customer,
                input: Box::new(input),
            },
        )
    }

    /// Sets a timer; returns its sequence number.
    pub fn push_timer(&mut self, due: Millis, what: What) -> u64 {
        self.push(due, TIMER, what)
    }

    /// Puts back an item with the sequence number it had (restore).
    pub fn push_restored(&mut self, time: Millis, class: u8, seq: u64, what: What) {
        self.seq = self.seq.max(seq);
        self.insert(Item {
            time,
            class,
            seq,
            what,
        });
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }

    /// Continues numbering after `seq` (restore).
    pub fn set_last_seq(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// The held inputs, in no particular order (checkpoints).
    pub fn held_inputs(&self) -> impl Iterator<Item = Item> + '_ {
        self.near
            .iter()
            .chain(self.far.values().flatten())
            .filter_map(|Reverse(key)| {
                let (time, class, seq) = key_item(key);
                if class != INPUT {
                    return None;
                }
                let what = self.slab.get(key.2 as usize)?.as_ref()?;
                Some(Item {
                    time,
                    class,
                    seq,
                    what: what.clone(),
                })
            })
    }

    /// The next item with time strictly before `watermark`.
    pub fn pop_before(&mut self, watermark: Millis) -> Option<Item> {
        self.pop_if(|time, _| time < watermark)
    }

    /// What the next item (in order, if it is already among the near ones) will read: a
    /// ticket's or a customer's slab handle. For a prefetch: it may not be due yet.
    pub fn peek_target(&self) -> Option<Target> {
        let Reverse((_, _, slot)) = *self.near.peek()?;
        if slot & SLA != 0 {
            return Some(Target::Ticket(slot & !SLA));
        }
        match self.slab.get(slot as usize)?.as_ref()? {
            What::Sla { ticket } => Some(Target::Ticket(*ticket)),
            What::Input { customer, .. }
            | What::RecoveryDue { customer, .. }
            | What::RiskExpiry { customer, .. }
            | What::CohortExpiry { customer, .. } => Some(Target::Customer(*customer)),
        }
    }

    /// The next held input at exactly `time` (end of a replay: inputs at the final watermark
    /// are applied, timers there stay pending).
    pub fn pop_input_at(&mut self, time: Millis) -> Option<Item> {
        self.pop_if(|t, class| t == time && class == INPUT)
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_timers_keep_their_ticket_without_a_slot() {
        let mut s = Scheduler::default();
        let a = s.push_timer(7, What::Sla { ticket: 3 });
        s.push_timer(5, What::Sla { ticket: SLA + 1 });
        s.push_input(6, 2, Input::Order);
        assert_eq!(s.slab.iter().flatten().count(), 2);
        let got: Vec<_> = std::iter::from_fn(|| s.pop_before(8))
            .map(|i| (i.time, i.seq, i.what))
            .collect();
        assert_eq!(got[0].2, What::Sla { ticket: SLA + 1 });
        assert_eq!(got[2], (7, a, What::Sla { ticket: 3 }));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn inputs_before_timers_at_equal_times_then_by_order_set() {
        let mut s = Scheduler::default();
        s.push_timer(
            10,
            What::RecoveryDue {
                customer: 1,
                case: 1,
            },
        );
        s.push_input(10, 2, Input::Order);
        s.push_timer(
            5,
            What::RecoveryDue {
                customer: 3,
                case: 3,
            },
        );
        s.push_timer(
            10,
            What::RecoveryDue {
                customer: 4,
                case: 4,
            },
        );
        s.push_input(10, 5, Input::Churn);
        let order: Vec<u32> = std::iter::from_fn(|| s.pop_before(11))
            .map(|i| match i.what {
                What::RecoveryDue { customer, .. } | What::Input { customer, .. } => customer,
                _ => 0,
            })
            .collect();
        assert_eq!(order, vec![3, 2, 5, 1, 4]);
    }

    /// Memory (issue 10): an SLA timer costs its 24-byte key, another item a 16-byte slot
    /// besides.
    #[test]
    fn keys_and_slots_are_small() {
        assert_eq!(std::mem::size_of::<Reverse<Key>>(), 24);
        assert_eq!(std::mem::size_of::<Option<What>>(), 16);
    }

    #[test]
    fn order_keys_order_as_time_class_seq() {
        let mut items = Vec::new();
        for time in [i64::MIN, -1_000, -1, 0, 1, 7, i64::MAX] {
            for class in [INPUT, TIMER] {
                for seq in [0, 1, 2, (1 << 62) + 5] {
                    items.push((time, class, seq));
                }
            }
        }
        for a in &items {
            for b in &items {
                let (ka, kb) = (order_key(a.0, a.1, a.2), order_key(b.0, b.1, b.2));
                assert_eq!(key_item(&(ka.0, ka.1, 0)), *a);
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn pops_in_order_across_buckets() {
        let mut s = Scheduler::default();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        // The reference: one ordered set of (time, class, seq).
        let mut reference = std::collections::BTreeSet::new();
        let mut w = -5_000_000i64;
        let mut popped = 0;
        for step in 0..20_000 {
            let t = w + next(30_000_000) as i64 - 1_000_000;
            let seq = if next(2) == 0 {
                reference.insert((t, INPUT, s.last_seq() + 1));
                s.push_input(t, 0, Input::Order)
            } else {
                reference.insert((t, TIMER, s.last_seq() + 1));
                s.push_timer(
                    t,
                    What::RecoveryDue {
                        customer: 0,
                        case: 0,
                    },
                )
            };
            assert_eq!(seq, s.last_seq());
            if next(3) == 0 || step == 19_999 {
                w += next(400_000) as i64;
                if step == 19_999 {
                    w = Millis::MAX;
                }
                while let Some(i) = s.pop_before(w) {
                    let r = reference.pop_first().unwrap();
                    assert_eq!((i.time, i.class, i.seq), r);
                    popped += 1;
                }
                assert!(reference.first().is_none_or(|r| r.0 >= w));
                assert_eq!(s.len(), reference.len());
            }
        }
        assert_eq!(popped, 20_000);
    }

    #[test]
    fn strictly_before_the_watermark() {
        let mut s = Scheduler::default();
        s.push_timer(
            10,
            What::RecoveryDue {
                customer: 1,
                case: 1,
            },
        );
        assert!(s.pop_before(10).is_none());
        assert!(s.pop_input_at(10).is_none());
        assert!(s.pop_before(11).is_some());
    }
}
