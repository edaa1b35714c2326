//! How the experience of a ticket shows afterwards: CSAT and CES surveys after the last solve
//! (scores skewed by SLA breaches, escalation, reopens and back-and-forth), NPS answers skewed
//! by the customer's mood, the mood itself, service-recovery contacts after a bad answer (most
//! within 24 h, some late, some never), repurchases that are likelier after a good experience
//! and churn that is likelier after a bad one.
//!
//! This is where the simulated service's quality turns into the after-sales signals the engine
//! measures; the ticket's own events are in `ticket`.

use rand::Rng;

use super::aftersales::Contact;
use super::random::pick_weighted;
use super::sim::{Customer, Ev};
use super::tables::{Team, AGENTS_PER_TEAM, CES_W, CSAT_W, NPS_W};
use super::ticket::Ticket;
use super::Generator;
use crate::event::{Channel, EventType};
use crate::ts::{DAY, HOUR, MINUTE};

impl Generator {
    /// After a `ticket.solved` at `t` (the ticket's `first`, with an experience `tier` 0: good,
    /// 1: mixed, 2: bad): unless it will be `reopened`, surveys and a change of mood; after
    /// the first solve, maybe a repurchase.
    pub(super) fn after_solve(
        &mut self,
        tk: &Ticket,
        tier: usize,
        first: bool,
        reopened: bool,
        t: i64,
    ) {
        let slot = tk.slot;
        let cust = tk.with.cust;
        let present = self.present(slot, cust);

        let mut csat: Option<u8> = None;
        if !reopened {
            // Final solve: surveys, mood, sometimes churn.
            if self.chance(0.32) {
                let (score, d) = self.answer(&CSAT_W[tier], 3 * HOUR);
                csat = Some(score);
                let ev = Ev::Csat {
                    slot,
                    cust,
                    score,
                    team: tk.with.team,
                    ticket: tk.no,
                };
                self.queue.push(t + d, ev);
            }
            if self.chance(0.15) {
                let (score, d) = self.answer(&CES_W[tier], 4 * HOUR);
                let ticket = tk.no;
                self.queue.push(
                    t + d,
                    Ev::Ces {
                        cust,
                        score,
                        ticket,
                    },
                );
            }
            if present {
                let x = [1.0f32, 0.0, -1.0][tier];
                let m = &mut self.customers[slot as usize].mood;
                *m = 0.8 * *m + 0.2 * x;
                if tier == 2 && self.chance(0.03) {
                    let d = self.lognormal(10.0 * DAY as f64, 0.8).clamp(HOUR, 60 * DAY);
                    self.schedule_churn(t + d, slot, cust);
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
                    self.queue.push(t + d, Ev::Order { slot, cust });
                }
            }
        }
    }

    /// A survey answer to a solved ticket: a score (from 1) drawn from `weights`, and how
    /// long after the solve it comes (log-normal around `median`, 5 min to 10 days).
    fn answer(&mut self, weights: &[u32], median: i64) -> (u8, i64) {
        let score = pick_weighted(&mut self.rng, weights) as u8 + 1;
        let d = self.lognormal(median as f64, 1.0);
        (score, d.clamp(5 * MINUTE, 10 * DAY))
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
        let mood = if c.mood > 0.3 {
            0
        } else if c.mood < -0.3 {
            2
        } else {
            1
        };
        let score = pick_weighted(&mut self.rng, &NPS_W[mood]) as u8;
        let ts = self.skew(t);
        self.begin(EventType::SurveyNps, ts, c.no);
        self.out.num("score", score as u64);
        self.end();
        let churn_p = if score <= 3 { 0.12 } else { 0.05 };
        self.after_survey(
            t,
            slot,
            c.no,
            score <= 6,
            score >= 9,
            Team::Billing,
            churn_p,
        );
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
            let team = if team == Team::Unassigned {
                Team::Billing
            } else {
                team
            };
            let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
            let channel = match self.rng.gen_range(0..20) {
                0..=13 => Channel::Phone,
                14..=18 => Channel::Email,
                _ => Channel::Messenger,
            };
            let contact = Contact {
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
