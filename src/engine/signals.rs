//! The after-sales logic of SPEC §5, applied in event-time order as the scheduler releases
//! held inputs and timers: the churn-risk score and its `churn.risk` records, their
//! effectiveness, service-recovery cases, and repurchase after service.

use super::core::Core;
use super::customer::{Cohort, PendingRisk, RecoveryCase};
use super::partition::Shard;
use super::sched::{Input, What};
use crate::kpi::{Band, Dims, Kpi, Signal, Survey, SurveyVerdict, Trigger};
use crate::output::Record;
use crate::ts::Millis;

impl Shard {
    /// Applies one after-sales input (SPEC §5) in event-time order.
    pub(super) fn apply_input(&mut self, core: &mut Core, cust: u32, input: Input, t: Millis) {
        let cfg = &core.cfg.signals;
        match input {
            Input::Csat {
                score,
                ticket,
                known,
            } => {
                if known {
                    if let (Some(c), Some(tk)) = (self.customer_mut(cust), ticket.as_deref()) {
                        c.set_csat(tk, score);
                    }
                }
                let verdict = Survey::Csat.verdict(score);
                self.survey(core, cust, verdict, score, ticket, t);
            }
            Input::Nps(score) => {
                self.survey(core, cust, Survey::Nps.verdict(score), score, None, t)
            }
            Input::Ces(score) => {
                self.survey(core, cust, Survey::Ces.verdict(score), score, None, t)
            }
            Input::Reopen => self.signal(core, cust, Signal::Reopen, t),
            Input::SlaBreach => self.signal(core, cust, Signal::SlaBreach, t),
            Input::Escalation => self.signal(core, cust, Signal::Escalation, t),
            Input::Return => self.signal(core, cust, Signal::Return, t),
            Input::WarrantyClaim => self.signal(core, cust, Signal::WarrantyClaim, t),
            Input::TicketCreated => {
                let repeat = self
                    .customers
                    .get_mut(cust)
                    .is_some_and(|c| c.note_ticket_created(t, cfg));
                if repeat {
                    self.signal(core, cust, Signal::RepeatContact, t);
                }
            }
            Input::FirstSolve(ticket) => {
                let horizon = cfg.repurchase_horizon.0;
                let Some(c) = self.customer_mut(cust) else {
                    return;
                };
                let id = c.next_id();
                let what = What::CohortExpiry {
                    customer: cust,
                    cohort: id,
                };
                let seq = self.timer(t.saturating_add(horizon), what);
                if let Some(c) = self.customer_mut(cust) {
                    c.after_mut().cohorts.push(Cohort {
                        id,
                        ticket,
                        solved: t,
                        seq,
                    });
                }
            }
            Input::Order => {
                let Some(a) = self.customer_mut(cust).and_then(|c| c.after.as_deref_mut()) else {
                    return;
                };
                // Converted at the customer's first order in (t_solve, t_solve + horizon].
                let mut i = 0;
                while i < a.cohorts.len() {
                    if a.cohorts[i].solved < t {
                        let k = a.cohorts.swap_remove(i);
                        let band = Band::of(a.latest_csat(&k.ticket));
                        let m = Kpi::Repurchase {
                            band,
                            converted: true,
                        };
                        core.measure(t, Dims::NONE, m);
                    } else {
                        i += 1;
                    }
                }
            }
            Input::Churn => {
                let Some(c) = self.customer_mut(cust) else {
                    return;
                };
                let after_signal = c.signalled_within(t, cfg.effectiveness_horizon.0);
                core.measure(t, Dims::NONE, Kpi::ChurnOutcome { after_signal });
                // Each pending churn.risk record is confirmed by the first churn in [s, s + 90 d].
                let confirmed = match c.after.as_deref_mut() {
                    Some(a) => {
                        let n = a.pending_risks.iter().filter(|r| r.time <= t).count();
                        a.pending_risks.retain(|r| r.time > t);
                        if n > 0 && a.pending_risks.is_empty() {
                            core.stats.customers_at_risk -= 1;
                        }
                        n
                    }
                    None => 0,
                };
                for _ in 0..confirmed {
                    core.measure(t, Dims::NONE, Kpi::ChurnConfirmed);
                }
            }
            Input::Contact => {
                let Some(a) = self.customer_mut(cust).and_then(|c| c.after.as_deref_mut()) else {
                    return;
                };
                if let Some(case) = a.recovery.as_ref() {
                    if case.opened <= t && t <= case.due {
                        let opened = case.opened;
                        a.recovery = None;
                        core.stats.recovery_open_cases -= 1;
                        core.measure(t, Dims::NONE, Kpi::RecoveryAnswered(t - opened));
                    }
                }
            }
        }
    }

    /// A survey answer: its negative signal, `positive`, then a recovery case (SPEC §5).
    fn survey(
        &mut self,
        core: &mut Core,
        cust: u32,
        verdict: SurveyVerdict,
        score: u8,
        ticket: Option<Box<str>>,
        t: Millis,
    ) {
        if let Some(s) = verdict.negative {
            self.signal(core, cust, s, t);
        }
        if verdict.positive {
            self.signal(core, cust, Signal::Positive, t);
        }
        if let Some(trigger) = verdict.recovery {
            self.open_recovery(core, cust, trigger, score, ticket, t);
        }
    }

    /// A churn-risk signal (SPEC §5): decays and adds to the score; a positive-weight signal
    /// that takes the score to the threshold outside the cooldown emits `churn.risk`.
    pub(super) fn signal(&mut self, core: &mut Core, cust: u32, signal: Signal, t: Millis) {
        let cfg = &core.cfg.signals;
        let w = signal.weight(&cfg.weights);
        let Some(c) = self.customer_mut(cust) else {
            return;
        };
        c.after_mut().risk.apply(signal, w, t, cfg.half_life.0);
        if w > 0.0 && c.risk_due(t, cfg) {
            let id = c.next_id();
            let a = c.after_mut();
            a.last_risk = Some(t);
            let (score, reasons) = (a.risk.score, a.risk.reasons());
            let record = Record::ChurnRisk {
                time: t,
                customer: c.key.to_string(),
                score,
                reasons,
            };
            let expiry = t.saturating_add(cfg.effectiveness_horizon.0);
            core.emit(record);
            core.measure(t, Dims::NONE, Kpi::ChurnSignalled);
            let what = What::RiskExpiry {
                customer: cust,
                risk: id,
            };
            let seq = self.timer(expiry, what);
            if let Some(c) = self.customer_mut(cust) {
                let a = c.after_mut();
                if a.pending_risks.is_empty() {
                    core.stats.customers_at_risk += 1;
                }
                a.pending_risks.push(PendingRisk { id, time: t, seq });
            }
        }
    }

    /// Opens a service-recovery case unless one is open: `recovery.needed`, due later.
    fn open_recovery(
        &mut self,
        core: &mut Core,
        cust: u32,
        trigger: Trigger,
        score: u8,
        ticket: Option<Box<str>>,
        t: Millis,
    ) {
        let due_in = core.cfg.signals.recovery_due.0;
        let Some(c) = self.customer_mut(cust) else {
            return;
        };
        if c.after().recovery.is_some() {
            return;
        }
        let id = c.next_id();
        let due = t.saturating_add(due_in);
        let record = Record::RecoveryNeeded {
            time: t,
            customer: c.key.to_string(),
            due,
            trigger,
            score,
            ticket: ticket.map(|t| t.to_string()),
        };
        core.emit(record);
        core.measure(t, Dims::NONE, Kpi::RecoveryOpened);
        let what = What::RecoveryDue {
            customer: cust,
            case: id,
        };
        let seq = self.timer(due, what);
        core.stats.recovery_open_cases += 1;
        if let Some(c) = self.customer_mut(cust) {
            c.after_mut().recovery = Some(Box::new(RecoveryCase {
                id,
                opened: t,
                due,
                trigger,
                seq,
            }));
        }
    }

    /// A recovery case reached its due unanswered: `recovery.overdue`.
    pub(super) fn recovery_due(&mut self, core: &mut Core, cust: u32, case: u64, due: Millis) {
        let Some(c) = self.customer_mut(cust) else {
            return;
        };
        // The id *and* the due: a timer outlives the entry it was set for (a case closed by an
        // answer), and a customer started afresh after retention counts ids from 1 again.
        let Some(open) = c
            .after()
            .recovery
            .as_ref()
            .filter(|r| r.id == case && r.due == due)
        else {
            return;
        };
        let trigger = open.trigger;
        c.after_mut().recovery = None;
        core.stats.recovery_open_cases -= 1;
        let record = Record::RecoveryOverdue {
            time: due,
            customer: c.key.to_string(),
            due,
            trigger,
        };
        core.emit(record);
        core.measure(due, Dims::NONE, Kpi::RecoveryOverdue);
    }

    /// A `churn.risk` record reached its horizon without a churn: `expired_without_churn`.
    pub(super) fn risk_expiry(&mut self, core: &mut Core, cust: u32, risk: u64, time: Millis) {
        let horizon = core.cfg.signals.effectiveness_horizon.0;
        let Some(a) = self.customer_mut(cust).and_then(|c| c.after.as_deref_mut()) else {
            return;
        };
        let before = a.pending_risks.len();
        // The id and the horizon (see `recovery_due`): a stale timer matches nothing.
        a.pending_risks
            .retain(|r| !(r.id == risk && r.time.saturating_add(horizon) == time));
        if a.pending_risks.len() < before {
            if a.pending_risks.is_empty() {
                core.stats.customers_at_risk -= 1;
            }
            core.measure(time, Dims::NONE, Kpi::ChurnExpired);
        }
    }

    /// A repurchase cohort entry reached its horizon without an order: `expired`, in the band
    /// of the ticket's latest CSAT.
    pub(super) fn cohort_expiry(&mut self, core: &mut Core, cust: u32, cohort: u64, time: Millis) {
        let horizon = core.cfg.signals.repurchase_horizon.0;
        let Some(a) = self.customer_mut(cust).and_then(|c| c.after.as_deref_mut()) else {
            return;
        };
        // The id and the horizon (see `recovery_due`): a stale timer matches nothing.
        if let Some(i) = a
            .cohorts
            .iter()
            .position(|k| k.id == cohort && k.solved.saturating_add(horizon) == time)
        {
            let k = a.cohorts.swap_remove(i);
            let band = Band::of(a.latest_csat(&k.ticket));
            let m = Kpi::Repurchase {
                band,
                converted: false,
            };
            core.measure(time, Dims::NONE, m);
        }
    }
}
