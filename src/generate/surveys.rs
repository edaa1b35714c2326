//! How the experience of a ticket shows afterwards: CSAT and CES surveys after the last solve
//! (scores skewed by SLA breaches, escalation, reopens and back-and-forth), NPS answers skewed
//! by the customer's mood, the mood itself, service-recovery contacts after a bad answer (most
//! within 24 h, some late, some never), repurchases that are likelier after a good experience
//! and churn that is likelier after a bad one.
//!
//! This is where the simulated service's quality turns into the after-sales signals the engine
//! measures; the ticket's own events are in `ticket`.

use rand::Rng;

use super::aftersales::Contacted;
use super::random::pick_weighted;
use super::sim::{Customer, Ev};
use super::tables::{
    Team, AGENTS_PER_TEAM, FRT_TARGET, NEVER, RES_TARGET, T_BILLING, T_UNASSIGNED,
};
use super::ticket::{Step, Ticket};
use super::Generator;
use crate::event::{Channel, EventType};
use crate::ts::{DAY, HOUR, MINUTE};

/// How bad the experience was: 0 = flawless.
fn badness(tk: &Ticket) -> f64 {
    let p = tk.priority as usize;
    let mut bad = 0.0;
    if tk.first_stop > tk.created + FRT_TARGET[p] {
        bad += 1.0;
    }
    if tk.first_solve > tk.created + RES_TARGET[p] {
        bad += 1.3;
    }
    if tk.escalated {
        bad += 0.5;
    }
    bad += tk.reopens as f64;
    bad += 0.25 * (tk.agent_public.saturating_sub(2)) as f64;
    bad
}

impl Generator {
    /// After a `ticket.solved` at `t`: either plan a reopen, or (final solve) schedule surveys
    /// and update the mood; after the first solve, maybe a repurchase.
    pub(super) fn on_solve(&mut self, tk: &mut Ticket, t: i64) {
        tk.solves = tk.solves.saturating_add(1);
        tk.solve_at = NEVER;
        let first = tk.first_solve == NEVER;
        if first {
            tk.first_solve = t;
        }
        if tk.first_stop == NEVER {
            tk.first_stop = t;
        }
        let bad = badness(tk);
        let tier = if bad < 0.3 {
            0
        } else if bad < 1.5 {
            1
        } else {
            2
        };
        let reopen = tk.reopens < 2 && self.chance((0.05 + 0.04 * bad).min(0.25));
        let slot = tk.slot;
        let present = self.present(slot, tk.cust);

        let mut csat: Option<u8> = None;
        if !reopen {
            // Final solve: surveys, mood, sometimes churn.
            if self.chance(0.32) {
                let w: [u32; 5] = match tier {
                    0 => [2, 3, 8, 30, 57],
                    1 => [10, 14, 22, 30, 24],
                    _ => [32, 28, 20, 13, 7],
                };
                let score = pick_weighted(&mut self.rng, &w) as u8 + 1;
                csat = Some(score);
                let d = self
                    .lognormal(3.0 * HOUR as f64, 1.0)
                    .clamp(5 * MINUTE, 10 * DAY);
                let ev = Ev::Csat {
                    slot,
                    cust: tk.cust,
                    score,
                    team: tk.team,
                    ticket: tk.no,
                };
                self.queue.push(t + d, ev);
            }
            if self.chance(0.15) {
                let w: [u32; 7] = match tier {
                    0 => [1, 2, 4, 8, 20, 32, 33],
                    1 => [6, 9, 15, 20, 22, 16, 12],
                    _ => [22, 22, 20, 15, 10, 7, 4],
                };
                let score = pick_weighted(&mut self.rng, &w) as u8 + 1;
                let d = self
                    .lognormal(4.0 * HOUR as f64, 1.0)
                    .clamp(5 * MINUTE, 10 * DAY);
                let ev = Ev::Ces {
                    cust: tk.cust,
                    score,
                    ticket: tk.no,
                };
                self.queue.push(t + d, ev);
            }
            if present {
                let x = [1.0f32, 0.0, -1.0][tier];
                let m = &mut self.customers[slot as usize].mood;
                *m = 0.8 * *m + 0.2 * x;
                if tier == 2 && self.chance(0.03) {
                    let d = self.lognormal(10.0 * DAY as f64, 0.8).clamp(HOUR, 60 * DAY);
                    self.schedule_churn(t + d, slot, tk.cust);
                }
            }
        }
        if first && present {
            // Repurchase after service: likelier after a good experience.
            let p = match csat {
                Some(s) if s >= 4 => 0.40,
                Some(3) => 0.20,
                Some(_) => 0.05,
                None => [0.30, 0.18, 0.07][tier],
            };
            if self.chance(p) {
                let d = self.lognormal(7.0 * DAY as f64, 0.8).max(MINUTE);
                if d < 60 * DAY {
                    let cust = tk.cust;
                    self.queue.push(t + d, Ev::Order { slot, cust });
                }
            }
        }
        if reopen {
            tk.main_at = t + self
                .lognormal(6.0 * HOUR as f64, 1.2)
                .clamp(10 * MINUTE, 14 * DAY);
            tk.main_kind = Step::Reopen;
        } else {
            tk.main_at = NEVER;
        }
    }

    /// Writes a `survey.csat` (answered at `t`, stamped with clock skew) and applies it.
    pub(super) fn write_csat(
        &mut self,
        t: i64,
        slot: u32,
        cust: u32,
        score: u8,
        team: Team,
        ticket: u64,
    ) {
        let ts = self.skew(t);
        self.begin(EventType::SurveyCsat, ts, cust);
        self.out.num("score", score as u64);
        if ticket != 0 {
            let x = self.unif();
            if x < 0.95 {
                self.out.ticket(ticket);
            } else if x < 0.96 {
                self.out.raw("ticket", "null");
            }
        }
        self.end();
        self.after_survey(t, slot, cust, score <= 2, score >= 5, team, 0.10);
    }

    /// Writes a `survey.ces`, usually naming its ticket.
    pub(super) fn write_ces(&mut self, t: i64, cust: u32, score: u8, ticket: u64) {
        let t = self.skew(t);
        self.begin(EventType::SurveyCes, t, cust);
        self.out.num("score", score as u64);
        if ticket != 0 && self.chance(0.9) {
            self.out.ticket(ticket);
        }
        self.end();
    }

    /// Writes a `survey.nps` of the customer in `slot`, skewed by their mood, and applies it.
    pub(super) fn write_nps(&mut self, t: i64, slot: u32, c: Customer) {
        let w: [u32; 11] = if c.mood > 0.3 {
            [1, 1, 1, 1, 2, 3, 4, 10, 20, 27, 30]
        } else if c.mood < -0.3 {
            [10, 8, 10, 10, 10, 12, 12, 10, 8, 5, 5]
        } else {
            [2, 2, 3, 4, 5, 8, 10, 18, 20, 15, 13]
        };
        let score = pick_weighted(&mut self.rng, &w) as u8;
        let ts = self.skew(t);
        self.begin(EventType::SurveyNps, ts, c.no);
        self.out.num("score", score as u64);
        self.end();
        let churn_p = if score <= 3 { 0.12 } else { 0.05 };
        self.after_survey(t, slot, c.no, score <= 6, score >= 9, T_BILLING, churn_p);
    }

    /// Consequences of a survey answer at `t`: mood, service-recovery follow-up, churn.
    #[allow(clippy::too_many_arguments)]
    fn after_survey(
        &mut self,
        t: i64,
        slot: u32,
        cust: u32,
        negative: bool,
        positive: bool,
        team: Team,
        churn_p: f64,
    ) {
        if !self.present(slot, cust) {
            return;
        }
        let x = if negative {
            -1.0
        } else if positive {
            1.0
        } else {
            0.2
        };
        let m = &mut self.customers[slot as usize].mood;
        *m = 0.7 * *m + 0.3 * x;
        let mood = *m as f64;
        if !negative {
            return;
        }
        // Service recovery: most get a call-back, some too late (> 24 h), some never.
        if self.chance(0.7) {
            let d = self
                .lognormal(8.0 * HOUR as f64, 1.1)
                .clamp(5 * MINUTE, 7 * DAY);
            let team = if team == T_UNASSIGNED {
                T_BILLING
            } else {
                team
            };
            let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
            let channel = match self.rng.gen_range(0..20) {
                0..=13 => Channel::Phone,
                14..=18 => Channel::Email,
                _ => Channel::Messenger,
            };
            let contact = Contacted {
                cust,
                team,
                agent,
                channel,
            };
            self.queue.push(t + d, Ev::Contacted(contact));
        }
        if self.chance(churn_p * (1.0 + (-mood).max(0.0))) {
            let d = self.lognormal(6.0 * DAY as f64, 0.9).clamp(HOUR, 60 * DAY);
            self.schedule_churn(t + d, slot, cust);
        }
    }

    /// Schedules the churn of `cust` at `t`, with a random reason.
    fn schedule_churn(&mut self, t: i64, slot: u32, cust: u32) {
        let reason = self.churn_reason();
        self.queue.push(t, Ev::Churn { slot, cust, reason });
    }
}
