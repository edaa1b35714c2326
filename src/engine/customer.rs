//! Per-customer after-sales state (SPEC §5): the decaying churn-risk score and its per-signal
//! sums, churn-risk records awaiting an outcome, the open service-recovery case, the
//! repurchase cohort and the CSAT answers that decide its band.

use std::collections::VecDeque;

use crate::config::SignalsConfig;
use crate::kpi::Signal;
use crate::kpi::Trigger;
use crate::ts::Millis;

/// An open service-recovery case (SPEC §5).
#[derive(Debug, Clone)]
pub struct RecoveryCase {
    /// Its id within the customer (timers refer to it).
    pub id: u64,
    /// When the dissatisfied answer came.
    pub opened: Millis,
    /// `opened + recovery_due`: overdue after this.
    pub due: Millis,
    /// What opened it.
    pub trigger: Trigger,
    /// Sequence number of its due timer.
    pub seq: u64,
}

/// A ticket's first solve awaiting its repurchase outcome (SPEC §5).
#[derive(Debug, Clone)]
pub struct Cohort {
    /// Its id within the customer (timers refer to it).
    pub id: u64,
    /// The ticket solved.
    pub ticket: Box<str>,
    /// When it was first solved.
    pub solved: Millis,
    /// Sequence number of its expiry timer.
    pub seq: u64,
}

/// A `churn.risk` record awaiting its outcome (SPEC §5).
#[derive(Debug, Clone, Copy)]
pub struct PendingRisk {
    /// Its id within the customer (timers refer to it).
    pub id: u64,
    /// The record's time s.
    pub time: Millis,
    /// Sequence number of its expiry timer (s + horizon).
    pub seq: u64,
}

/// The decaying churn-risk score: S ← max(0, S · 2^(−(t−τ)/half_life) + w); each signal name
/// keeps its own sum, decayed at the same moments, without the floor. The per-signal sums are
/// allocated at the first signal (most customers never get one: 32 bytes instead of 104).
#[derive(Debug, Clone, Default)]
pub struct RiskScore {
    /// The score S (≥ 0), as of `tau`.
    pub score: f64,
    /// τ: the time of the last change, `None` before the first signal.
    pub tau: Option<Millis>,
    /// Each signal's own decayed sum (no floor), indexed by [`Signal`] (for `reasons`); `None`
    /// while all are 0.
    sums: Option<Box<[f64; Signal::ALL.len()]>>,
}

impl PartialEq for RiskScore {
    fn eq(&self, o: &RiskScore) -> bool {
        self.score == o.score && self.tau == o.tau && self.sums() == o.sums()
    }
}

impl RiskScore {
    /// No signal yet.
    pub const ZERO: RiskScore = RiskScore {
        score: 0.0,
        tau: None,
        sums: None,
    };

    /// Each signal's own decayed sum, indexed by [`Signal`].
    pub fn sums(&self) -> [f64; Signal::ALL.len()] {
        self.sums.as_deref().copied().unwrap_or_default()
    }

    /// Signal `signal`'s own decayed sum.
    pub fn sum(&self, signal: Signal) -> f64 {
        self.sums.as_ref().map_or(0.0, |s| s[signal as usize])
    }

    /// Sets the sum of the signal with index `i` (a restore).
    pub fn set_sum(&mut self, i: usize, v: f64) {
        if let Some(slot) = self.sums.get_or_insert_with(Default::default).get_mut(i) {
            *slot = v;
        }
    }

    /// Applies a signal of weight `w` at `t` (t ≥ τ: signals arrive in event-time order).
    pub fn apply(&mut self, signal: Signal, w: f64, t: Millis, half_life: Millis) {
        let factor = match self.tau {
            Some(tau) => (2f64).powf(-((t - tau) as f64) / half_life as f64),
            None => 1.0,
        };
        self.score = (self.score * factor + w).max(0.0);
        let sums = self.sums.get_or_insert_with(Default::default);
        for s in sums.iter_mut() {
            *s *= factor;
        }
        sums[signal as usize] += w;
        self.tau = Some(t);
    }

    /// Signal names whose own decayed sum is positive, largest first, ties by name;
    /// `positive` is never a reason.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut r: Vec<(f64, &'static str)> = Signal::ALL
            .iter()
            .filter(|s| **s != Signal::Positive)
            .map(|s| (self.sum(*s), s.as_str()))
            .filter(|(v, _)| *v > 0.0)
            .collect();
        r.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        r.into_iter().map(|(_, n)| n).collect()
    }
}

/// What only customers with after-sales activity hold (SPEC §5): the churn-risk score and
/// records, the recovery case, repurchase cohorts, CSAT by ticket.
#[derive(Debug, Clone, Default)]
pub struct AfterSales {
    /// The churn-risk score.
    pub risk: RiskScore,
    /// Time of the latest `churn.risk` record.
    pub last_risk: Option<Millis>,
    /// `churn.risk` records without an outcome yet.
    pub pending_risks: Vec<PendingRisk>,
    /// The open service-recovery case, if any (boxed: most customers with after-sales state
    /// have none open).
    pub recovery: Option<Box<RecoveryCase>>,
    /// First solves awaiting their repurchase outcome.
    pub cohorts: Vec<Cohort>,
    /// Latest CSAT score naming each of this customer's tickets.
    pub csat_by_ticket: Vec<(Box<str>, u8)>,
    /// The last id given to a case, risk or cohort entry.
    pub next_id: u64,
}

/// The after-sales state of a customer that never needed one.
static NO_AFTER_SALES: AfterSales = AfterSales {
    risk: RiskScore::ZERO,
    last_risk: None,
    pending_risks: Vec::new(),
    recovery: None,
    cohorts: Vec::new(),
    csat_by_ticket: Vec::new(),
    next_id: 0,
};

impl AfterSales {
    /// Nothing was ever recorded (a restored customer without after-sales state keeps none).
    pub fn is_empty(&self) -> bool {
        self.risk == RiskScore::ZERO
            && self.last_risk.is_none()
            && self.pending_risks.is_empty()
            && self.recovery.is_none()
            && self.cohorts.is_empty()
            && self.csat_by_ticket.is_empty()
            && self.next_id == 0
    }

    /// The latest CSAT naming `ticket`.
    pub fn latest_csat(&self, ticket: &str) -> Option<u8> {
        self.csat_by_ticket
            .iter()
            .find(|(t, _)| &**t == ticket)
            .map(|(_, s)| *s)
    }

    /// Notes a CSAT naming `ticket`.
    pub fn set_csat(&mut self, ticket: &str, score: u8) {
        match self.csat_by_ticket.iter_mut().find(|(t, _)| &**t == ticket) {
            Some(e) => e.1 = score,
            None => self.csat_by_ticket.push((ticket.into(), score)),
        }
    }
}

/// Times in arrival order (a customer's ticket creations): one inline, more in a boxed deque
/// (memory, issue 10: most customers have at most one ticket in the window; 16 bytes and no
/// allocation instead of a 32-byte deque and a 48-byte allocation).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Times {
    #[default]
    Empty,
    One(Millis),
    // Boxed on purpose: the enum stays 16 bytes (a deque is 32).
    #[allow(clippy::box_collection)]
    Many(Box<VecDeque<Millis>>),
}

impl Times {
    /// Appends a time.
    pub fn push(&mut self, t: Millis) {
        *self = match std::mem::take(self) {
            Times::Empty => Times::One(t),
            Times::One(a) => Times::Many(Box::new(VecDeque::from([a, t]))),
            Times::Many(mut d) => {
                d.push_back(t);
                Times::Many(d)
            }
        };
    }

    /// Drops the leading times before `from`.
    pub fn drop_before(&mut self, from: Millis) {
        match self {
            Times::Empty => {}
            Times::One(a) => {
                if *a < from {
                    *self = Times::Empty;
                }
            }
            Times::Many(d) => {
                while d.front().is_some_and(|&c| c < from) {
                    d.pop_front();
                }
                match d.len() {
                    0 => *self = Times::Empty,
                    1 => *self = Times::One(d[0]),
                    _ => {}
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Times::Empty => 0,
            Times::One(_) => 1,
            Times::Many(d) => d.len(),
        }
    }

    /// The times, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &Millis> {
        let (a, b): (&[Millis], &[Millis]) = match self {
            Times::Empty => (&[], &[]),
            Times::One(a) => (std::slice::from_ref(a), &[]),
            Times::Many(d) => d.as_slices(),
        };
        a.iter().chain(b)
    }
}

/// The after-sales state of one customer.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The customer id (inline up to 24 bytes: no allocation for ids of usual length; memory,
    /// issue 10).
    pub key: compact_str::CompactString,
    /// Time of the customer's latest event (retention).
    pub last_event: Millis,
    /// After-sales inputs held in the scheduler for this customer: the state is kept while
    /// any is (the scheduler refers to it by slot).
    pub held: u32,
    /// Creation times of this customer's tickets within the repeat-contact window.
    pub created: Times,
    /// The after-sales state ([`AfterSales`]), allocated at the customer's first signal, case,
    /// cohort or CSAT: most customers never need it (memory, issue 10).
    pub after: Option<Box<AfterSales>>,
    /// Checkpoint bookkeeping (see `engine::snapshot`).
    pub ck: super::snapshot::Durable,
}

impl Customer {
    /// A customer first seen at `t`.
    pub fn new(key: &str, t: Millis) -> Customer {
        Customer {
            key: key.into(),
            last_event: t,
            held: 0,
            created: Times::default(),
            after: None,
            ck: Default::default(),
        }
    }

    /// The after-sales state (empty if none was ever needed).
    pub fn after(&self) -> &AfterSales {
        self.after.as_deref().unwrap_or(&NO_AFTER_SALES)
    }

    /// The after-sales state, allocated if needed.
    pub fn after_mut(&mut self) -> &mut AfterSales {
        self.after.get_or_insert_with(Default::default)
    }

    /// A new id for a case, risk or cohort entry.
    pub fn next_id(&mut self) -> u64 {
        let a = self.after_mut();
        a.next_id += 1;
        a.next_id
    }

    /// An after-sales outcome is pending (SPEC §5: such state is never evicted), or an input
    /// is held for it.
    pub fn pending(&self) -> bool {
        let a = self.after();
        a.recovery.is_some()
            || !a.cohorts.is_empty()
            || !a.pending_risks.is_empty()
            || self.held > 0
    }

    /// Customer state is evicted `retention` after its last event unless something is
    /// pending.
    pub fn evictable(&self, watermark: Millis, retention: Millis) -> bool {
        // The time first: `pending` reads the after-sales state, elsewhere in memory.
        watermark > self.last_event.saturating_add(retention) && !self.pending()
    }

    /// Notes a CSAT naming `ticket`.
    pub fn set_csat(&mut self, ticket: &str, score: u8) {
        self.after_mut().set_csat(ticket, score);
    }

    /// `repeat_contact`: the customer created at least `min_others` other tickets at times in
    /// [t − window, t). Records this creation.
    pub fn note_ticket_created(&mut self, t: Millis, cfg: &SignalsConfig) -> bool {
        let from = t - cfg.repeat_contact_window.0;
        self.created.drop_before(from);
        let others = self.created.iter().filter(|&&c| c < t).count();
        self.created.push(t);
        others >= cfg.repeat_contact_min_others as usize
    }

    /// The customer had a `churn.risk` record in [t − horizon, t].
    pub fn signalled_within(&self, t: Millis, horizon: Millis) -> bool {
        self.after()
            .last_risk
            .is_some_and(|s| s >= t - horizon && s <= t)
    }

    /// A `churn.risk` record is due after a positive-weight signal at `t` when S ≥ threshold
    /// and there is no `churn.risk` at a time in (t − cooldown, t].
    pub fn risk_due(&self, t: Millis, cfg: &SignalsConfig) -> bool {
        let a = self.after();
        a.risk.score >= cfg.threshold
            && !a
                .last_risk
                .is_some_and(|s| s > t - cfg.cooldown.0 && s <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::DAY;

    const HL: Millis = 14 * DAY;

    /// Memory (issue 10): a customer is held for every id seen within retention; what only
    /// some customers need (per-signal sums, a recovery case) is allocated when they do.
    #[test]
    fn a_customer_stays_compact() {
        assert!(
            std::mem::size_of::<Customer>() <= 64,
            "{}",
            std::mem::size_of::<Customer>()
        );
        assert!(std::mem::size_of::<RiskScore>() <= 32);
        assert!(std::mem::size_of::<AfterSales>() <= 136);
    }

    #[test]
    fn times_keep_arrival_order_inline_and_boxed() {
        let mut t = Times::default();
        let all = |t: &Times| t.iter().copied().collect::<Vec<_>>();
        t.push(5);
        assert_eq!(t, Times::One(5));
        t.push(7);
        t.push(9);
        assert_eq!((all(&t), t.len()), (vec![5, 7, 9], 3));
        t.drop_before(8);
        assert_eq!(t, Times::One(9));
        t.push(11);
        t.drop_before(12);
        assert_eq!((t.len(), all(&t)), (0, vec![]));
        t.drop_before(20);
        assert_eq!(t, Times::Empty);
    }

    #[test]
    fn decay_halves_the_score_every_half_life() {
        let mut r = RiskScore::default();
        r.apply(Signal::CsatNegative, 3.0, 0, HL);
        r.apply(Signal::Reopen, 2.0, HL, HL);
        assert!((r.score - 3.5).abs() < 1e-12);
        assert!((r.sum(Signal::CsatNegative) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn score_never_goes_below_zero_but_sums_do() {
        let mut r = RiskScore::default();
        r.apply(Signal::Positive, -0.25, 0, HL);
        assert_eq!(r.score, 0.0);
        assert_eq!(r.sum(Signal::Positive), -0.25);
        assert!(r.reasons().is_empty());
    }

    #[test]
    fn twelve_positives_offset_one_negative_csat() {
        let mut r = RiskScore::default();
        r.apply(Signal::CsatNegative, 3.0, 0, HL);
        for _ in 0..12 {
            r.apply(Signal::Positive, -3.0 / 12.0, 0, HL);
        }
        assert!(r.score.abs() < 1e-12);
    }

    #[test]
    fn reasons_largest_first_ties_by_name() {
        let mut r = RiskScore::default();
        r.apply(Signal::Escalation, 1.0, 0, HL);
        r.apply(Signal::Return, 2.0, 0, HL);
        r.apply(Signal::Reopen, 2.0, 0, HL);
        r.apply(Signal::CsatNegative, 3.0, 0, HL);
        assert_eq!(
            r.reasons(),
            vec!["csat_negative", "reopen", "return", "escalation"]
        );
    }
}
