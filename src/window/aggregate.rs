//! What one window × group accumulates (SPEC §3 and §5 rows): exact counts and sums, three
//! duration summaries and the after-sales blocks. Aggregates are mergeable (counts add,
//! summaries merge), which is what lets window parts of several partitions or instances
//! combine exactly.

use super::duration::DurationAgg;
use crate::kpi::{csat_satisfied, Band, Kpi, NpsClass, SlaKind};
use crate::state::codec::{CodecError, Reader, Writer};

/// The `tickets` block of `kpi.window` (SPEC §3, §4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketCounts {
    /// One per `ticket.created`.
    pub created: u64,
    /// Every `ticket.solved`.
    pub solved: u64,
    /// Only each ticket's first solve.
    pub first_solved: u64,
    /// First solves with at most one public agent message so far (FCR ratio = fcr /
    /// first solved).
    pub fcr: u64,
    /// One per `ticket.reopened`.
    pub reopened: u64,
    /// One per `ticket.escalated`.
    pub escalated: u64,
}

/// Outcomes of one SLA clock (SPEC §3): each ticket gets exactly one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaCounts {
    /// Clocks stopped at or before the due (counted at the stop).
    pub achieved: u64,
    /// Clocks still running at the due (counted at the due).
    pub breached: u64,
}

/// The `churn_signals` block (SPEC §5, `{}` group only): how well `churn.risk` predicts
/// churn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChurnSignalCounts {
    /// `churn.risk` records, at their time.
    pub signalled: u64,
    /// `churn.risk` records followed by a churn within the horizon, at the churn.
    pub confirmed: u64,
    /// `churn.risk` records without a churn within the horizon, at their time + horizon.
    pub expired_without_churn: u64,
    /// `customer.churned` events, in event-time order (the recall denominator).
    pub churned: u64,
    /// Churns whose customer had a `churn.risk` in the preceding horizon (recall numerator).
    pub churned_after_signal: u64,
}

/// Repurchase outcomes of one CSAT band (SPEC §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Solved tickets whose customer ordered within the horizon after the first solve.
    pub converted: u64,
    /// Solved tickets whose horizon passed without an order.
    pub expired: u64,
}

/// Everything one window × group accumulates.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    /// Ticket counts: created, solved, first solved, FCR, reopened, escalated.
    pub tickets: TicketCounts,
    /// First response times (`first_response_seconds`).
    pub first_response: DurationAgg,
    /// Resolution times of every solve (`resolution_seconds`).
    pub resolution: DurationAgg,
    /// Handling times of `contact.handled` (`handle_seconds`; AHT = mean).
    pub handle: DurationAgg,
    /// `survey.csat` answers.
    pub csat_responses: u64,
    /// CSAT answers with score ≥ 4.
    pub csat_satisfied: u64,
    /// Sum of CSAT scores, for the mean.
    pub csat_sum: u64,
    /// NPS answers 9–10.
    pub nps_promoters: u64,
    /// NPS answers 7–8.
    pub nps_passives: u64,
    /// NPS answers 0–6.
    pub nps_detractors: u64,
    /// `survey.ces` answers.
    pub ces_responses: u64,
    /// Sum of CES scores, for the mean.
    pub ces_sum: u64,
    /// SLA outcomes: `[first_response, resolution]`.
    pub sla: [SlaCounts; 2],
    /// `order.placed` events.
    pub orders_placed: u64,
    /// Sum of the orders' `amount`.
    pub revenue: f64,
    /// `order.returned` events.
    pub returned: u64,
    /// `warranty.claimed` events.
    pub warranty_claims: u64,
    /// `customer.churned` events (`customers.churned`, SPEC §3).
    pub churned: u64,
    /// Churn-signal effectiveness (SPEC §5).
    pub churn_signals: ChurnSignalCounts,
    /// Service-recovery cases opened (SPEC §5).
    pub recovery_opened: u64,
    /// Recovery cases answered by their due.
    pub recovery_answered: u64,
    /// Recovery cases that reached their due unanswered.
    pub recovery_overdue: u64,
    /// Answer times of the answered cases (`answer_seconds`).
    pub recovery_answer: DurationAgg,
    /// Repurchase outcomes by CSAT band, in [`Band::ALL`] order.
    pub repurchase: [Outcomes; 4],
    /// Sorted input partitions whose events contributed.
    pub partitions: Vec<i32>,
}

pub(super) fn sla_idx(k: SlaKind) -> usize {
    match k {
        SlaKind::FirstResponse => 0,
        SlaKind::Resolution => 1,
    }
}

pub(super) fn band_idx(b: Band) -> usize {
    match b {
        Band::Satisfied => 0,
        Band::Neutral => 1,
        Band::Dissatisfied => 2,
        Band::Unrated => 3,
    }
}

impl Aggregate {
    /// How many of its duration summaries hold an HDR histogram.
    pub fn dense_summaries(&self) -> usize {
        [
            &self.first_response,
            &self.resolution,
            &self.handle,
            &self.recovery_answer,
        ]
        .into_iter()
        .filter(|d| d.is_dense())
        .count()
    }

    /// Adds one measurement (SPEC §3 and §5 table rows).
    pub fn apply(&mut self, kpi: &Kpi, partition: i32) {
        if let Err(i) = self.partitions.binary_search(&partition) {
            self.partitions.insert(i, partition);
        }
        let t = &mut self.tickets;
        match *kpi {
            Kpi::Created => t.created += 1,
            Kpi::FirstResponse(ms) => self.first_response.record_ms(ms),
            Kpi::Solved {
                resolution,
                first,
                fcr,
            } => {
                t.solved += 1;
                self.resolution.record_ms(resolution);
                if first {
                    t.first_solved += 1;
                    if fcr {
                        t.fcr += 1;
                    }
                }
            }
            Kpi::Reopened => t.reopened += 1,
            Kpi::Escalated => t.escalated += 1,
            Kpi::Handle(s) => self.handle.record_seconds(s),
            Kpi::Csat(score) => {
                self.csat_responses += 1;
                self.csat_sum += score as u64;
                if csat_satisfied(score) {
                    self.csat_satisfied += 1;
                }
            }
            Kpi::Nps(score) => match NpsClass::of(score) {
                NpsClass::Promoter => self.nps_promoters += 1,
                NpsClass::Passive => self.nps_passives += 1,
                NpsClass::Detractor => self.nps_detractors += 1,
            },
            Kpi::Ces(score) => {
                self.ces_responses += 1;
                self.ces_sum += score as u64;
            }
            Kpi::Sla { kind, breached } => {
                let c = &mut self.sla[sla_idx(kind)];
                if breached {
                    c.breached += 1
                } else {
                    c.achieved += 1
                }
            }
            Kpi::OrderPlaced(amount) => {
                self.orders_placed += 1;
                self.revenue += amount;
            }
            Kpi::Returned => self.returned += 1,
            Kpi::WarrantyClaim => self.warranty_claims += 1,
            Kpi::Churned => self.churned += 1,
            Kpi::ChurnSignalled => self.churn_signals.signalled += 1,
            Kpi::ChurnConfirmed => self.churn_signals.confirmed += 1,
            Kpi::ChurnExpired => self.churn_signals.expired_without_churn += 1,
            Kpi::ChurnOutcome { after_signal } => {
                self.churn_signals.churned += 1;
                if after_signal {
                    self.churn_signals.churned_after_signal += 1;
                }
            }
            Kpi::RecoveryOpened => self.recovery_opened += 1,
            Kpi::RecoveryAnswered(ms) => {
                self.recovery_answered += 1;
                self.recovery_answer.record_ms(ms);
            }
            Kpi::RecoveryOverdue => self.recovery_overdue += 1,
            Kpi::Repurchase { band, converted } => {
                let o = &mut self.repurchase[band_idx(band)];
                if converted {
                    o.converted += 1
                } else {
                    o.expired += 1
                }
            }
        }
    }

    /// Writes the aggregate for a checkpoint.
    pub fn encode(&self, w: &mut Writer) {
        let t = &self.tickets;
        for v in [
            t.created,
            t.solved,
            t.first_solved,
            t.fcr,
            t.reopened,
            t.escalated,
        ] {
            w.u64(v);
        }
        self.first_response.encode(w);
        self.resolution.encode(w);
        self.handle.encode(w);
        for v in [
            self.csat_responses,
            self.csat_satisfied,
            self.csat_sum,
            self.nps_promoters,
            self.nps_passives,
            self.nps_detractors,
            self.ces_responses,
            self.ces_sum,
        ] {
            w.u64(v);
        }
        for c in &self.sla {
            w.u64(c.achieved);
            w.u64(c.breached);
        }
        w.u64(self.orders_placed);
        w.f64(self.revenue);
        for v in [self.returned, self.warranty_claims, self.churned] {
            w.u64(v);
        }
        let c = &self.churn_signals;
        for v in [
            c.signalled,
            c.confirmed,
            c.expired_without_churn,
            c.churned,
            c.churned_after_signal,
        ] {
            w.u64(v);
        }
        for v in [
            self.recovery_opened,
            self.recovery_answered,
            self.recovery_overdue,
        ] {
            w.u64(v);
        }
        self.recovery_answer.encode(w);
        for o in &self.repurchase {
            w.u64(o.converted);
            w.u64(o.expired);
        }
        w.len(self.partitions.len());
        for p in &self.partitions {
            w.i64(i64::from(*p));
        }
    }

    /// Reads what [`Self::encode`] wrote.
    pub fn decode(r: &mut Reader<'_>) -> Result<Aggregate, CodecError> {
        Self::read(r, true)
    }

    /// Reads past what [`Self::encode`] wrote, checking its form without building the
    /// duration summaries' histograms ([`DurationAgg::skip`]).
    pub fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        Self::read(r, false).map(drop)
    }

    fn read(r: &mut Reader<'_>, build: bool) -> Result<Aggregate, CodecError> {
        let duration = |r: &mut Reader<'_>| {
            if build {
                DurationAgg::decode(r)
            } else {
                DurationAgg::skip(r).map(|()| DurationAgg::default())
            }
        };
        let mut a = Aggregate::default();
        let t = &mut a.tickets;
        for v in [
            &mut t.created,
            &mut t.solved,
            &mut t.first_solved,
            &mut t.fcr,
            &mut t.reopened,
            &mut t.escalated,
        ] {
            *v = r.u64()?;
        }
        a.first_response = duration(r)?;
        a.resolution = duration(r)?;
        a.handle = duration(r)?;
        for v in [
            &mut a.csat_responses,
            &mut a.csat_satisfied,
            &mut a.csat_sum,
            &mut a.nps_promoters,
            &mut a.nps_passives,
            &mut a.nps_detractors,
            &mut a.ces_responses,
            &mut a.ces_sum,
        ] {
            *v = r.u64()?;
        }
        for c in &mut a.sla {
            c.achieved = r.u64()?;
            c.breached = r.u64()?;
        }
        a.orders_placed = r.u64()?;
        a.revenue = r.f64()?;
        for v in [&mut a.returned, &mut a.warranty_claims, &mut a.churned] {
            *v = r.u64()?;
        }
        let c = &mut a.churn_signals;
        for v in [
            &mut c.signalled,
            &mut c.confirmed,
            &mut c.expired_without_churn,
            &mut c.churned,
            &mut c.churned_after_signal,
        ] {
            *v = r.u64()?;
        }
        for v in [
            &mut a.recovery_opened,
            &mut a.recovery_answered,
            &mut a.recovery_overdue,
        ] {
            *v = r.u64()?;
        }
        a.recovery_answer = duration(r)?;
        for o in &mut a.repurchase {
            o.converted = r.u64()?;
            o.expired = r.u64()?;
        }
        let n = r.len()?;
        for _ in 0..n {
            let p = i32::try_from(r.i64()?).map_err(|_| CodecError("partition".into()))?;
            a.partitions.push(p);
        }
        Ok(a)
    }

    /// Adds another aggregate of the same window × group (counts add, histograms merge).
    pub fn merge(&mut self, o: &Aggregate) {
        let t = &mut self.tickets;
        t.created += o.tickets.created;
        t.solved += o.tickets.solved;
        t.first_solved += o.tickets.first_solved;
        t.fcr += o.tickets.fcr;
        t.reopened += o.tickets.reopened;
        t.escalated += o.tickets.escalated;
        self.first_response.merge(&o.first_response);
        self.resolution.merge(&o.resolution);
        self.handle.merge(&o.handle);
        self.csat_responses += o.csat_responses;
        self.csat_satisfied += o.csat_satisfied;
        self.csat_sum += o.csat_sum;
        self.nps_promoters += o.nps_promoters;
        self.nps_passives += o.nps_passives;
        self.nps_detractors += o.nps_detractors;
        self.ces_responses += o.ces_responses;
        self.ces_sum += o.ces_sum;
        for i in 0..2 {
            self.sla[i].achieved += o.sla[i].achieved;
            self.sla[i].breached += o.sla[i].breached;
        }
        self.orders_placed += o.orders_placed;
        self.revenue += o.revenue;
        self.returned += o.returned;
        self.warranty_claims += o.warranty_claims;
        self.churned += o.churned;
        let c = &mut self.churn_signals;
        c.signalled += o.churn_signals.signalled;
        c.confirmed += o.churn_signals.confirmed;
        c.expired_without_churn += o.churn_signals.expired_without_churn;
        c.churned += o.churn_signals.churned;
        c.churned_after_signal += o.churn_signals.churned_after_signal;
        self.recovery_opened += o.recovery_opened;
        self.recovery_answered += o.recovery_answered;
        self.recovery_overdue += o.recovery_overdue;
        self.recovery_answer.merge(&o.recovery_answer);
        for i in 0..4 {
            self.repurchase[i].converted += o.repurchase[i].converted;
            self.repurchase[i].expired += o.repurchase[i].expired;
        }
        for p in &o.partitions {
            if let Err(i) = self.partitions.binary_search(p) {
                self.partitions.insert(i, *p);
            }
        }
    }

    /// CSAT ratio = satisfied / responses; `None` without responses.
    pub fn csat_ratio(&self) -> Option<f64> {
        (self.csat_responses > 0).then(|| self.csat_satisfied as f64 / self.csat_responses as f64)
    }

    /// FCR ratio = fcr / first solved; `None` without first solves.
    pub fn fcr_ratio(&self) -> Option<f64> {
        (self.tickets.first_solved > 0)
            .then(|| self.tickets.fcr as f64 / self.tickets.first_solved as f64)
    }

    /// `survey.nps` answers: promoters + passives + detractors.
    pub fn nps_responses(&self) -> u64 {
        self.nps_promoters + self.nps_passives + self.nps_detractors
    }

    /// NPS = 100 × (promoters − detractors) / responses.
    pub fn nps_score(&self) -> Option<f64> {
        let n = self.nps_responses();
        (n > 0).then(|| 100.0 * (self.nps_promoters as f64 - self.nps_detractors as f64) / n as f64)
    }
}
