//! The event-time scheduler of one shard: SLA timers, after-sales timers and held after-sales
//! inputs, in one queue ordered as SPEC §2 and §5 require — by time; at equal times inputs (in
//! arrival order) before timers (in the order they were set).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::kpi::SlaKind;
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
        input: Input,
    },
    Sla {
        ticket: u32,
        generation: u32,
        kind: SlaKind,
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

/// The scheduler of one partition.
#[derive(Debug, Default)]
pub struct Scheduler {
    heap: BinaryHeap<Item>,
    seq: u64,
}

impl Scheduler {
    fn push(&mut self, time: Millis, class: u8, what: What) -> u64 {
        self.seq += 1;
        self.heap.push(Item {
            time,
            class,
            seq: self.seq,
            what,
        });
        self.seq
    }

    /// Holds an after-sales input; returns its sequence number.
    pub fn push_input(&mut self, time: Millis, customer: u32, input: Input) -> u64 {
        self.push(time, INPUT, What::Input { customer, input })
    }

    /// Sets a timer; returns its sequence number.
    pub fn push_timer(&mut self, due: Millis, what: What) -> u64 {
        self.push(due, TIMER, what)
    }

    /// Puts back an item with the sequence number it had (restore).
    pub fn push_restored(&mut self, time: Millis, class: u8, seq: u64, what: What) {
        self.seq = self.seq.max(seq);
        self.heap.push(Item {
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
    pub fn held_inputs(&self) -> impl Iterator<Item = &Item> {
        self.heap.iter().filter(|i| i.class == INPUT)
    }

    /// The next item with time strictly before `watermark`.
    pub fn pop_before(&mut self, watermark: Millis) -> Option<Item> {
        if self.heap.peek()?.time < watermark {
            self.heap.pop()
        } else {
            None
        }
    }

    /// The next held input at exactly `time` (end of a replay: inputs at the final watermark
    /// are applied, timers there stay pending).
    pub fn pop_input_at(&mut self, time: Millis) -> Option<Item> {
        let top = self.heap.peek()?;
        if top.time == time && top.class == INPUT {
            self.heap.pop()
        } else {
            None
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
