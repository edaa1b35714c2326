//! The simulated world outside single tickets: the customer population, what can be
//! scheduled, and the background processes (ticket arrivals, calls without a ticket, NPS
//! answers, orders, proactive contacts, churn, returns and warranty claims of old orders).
//!
//! This is the dispatch point of the simulation: [`Generator::fire`] turns one event popped
//! from the schedule into a line (or into nothing, when its customer has churned meanwhile) and
//! schedules what follows from it. Ticket life cycles are in `ticket`, survey answers and their
//! consequences in `surveys`, after-sales lines in `aftersales`.

use rand::Rng;
use rand_distr::Exp1;

use super::aftersales::Contact;
use super::tables::{
    Team, AGENTS_PER_TEAM, DIURNAL_AMPLITUDE, FIRST_ORDER, FRONT_TEAMS, PROC_ARRIVAL, PROC_CHURN,
    PROC_CONTACT, PROC_HANDLED, PROC_NPS, PROC_ORDER, PROC_RATE, PROC_RETURN, PROC_WARRANTY,
    PRODUCTS,
};
use super::Generator;
use crate::event::{Category, Channel};
use crate::ts::{DAY, HOUR, SECOND};

/// A member of the population. A churned customer's slot goes to a new customer (new `no`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Customer {
    /// The customer number (`c0000042`).
    pub(super) no: u32,
    /// From -1 (unhappy) to 1 (happy); steers surveys, orders and churn.
    pub(super) mood: f32,
}

impl Customer {
    /// A new customer with a mildly positive, random mood.
    pub(super) fn new<R: Rng>(no: u32, rng: &mut R) -> Self {
        let mood = (0.2 + 0.4 * (rng.gen::<f64>() - 0.5)) as f32;
        Customer { no, mood }
    }
}

/// Something scheduled to happen. `slot` is an index into the population, `cust` the customer
/// who was there when the event was scheduled.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ev {
    /// The next firing of background process `PROC_*`.
    Proc(u8),
    /// A ticket opened as a consequence (of a return or a warranty claim).
    NewTicket {
        slot: u32,
        cust: u32,
        category: Category,
    },
    /// The next event of the ticket at this index of `Generator::tickets`.
    Ticket(u32),
    /// A `contact.handled` (`ticket` 0: none).
    Handled {
        with: Contact,
        handle_ms: u32,
        ticket: u64,
    },
    Csat {
        slot: u32,
        cust: u32,
        score: u8,
        team: Team,
        ticket: u64,
    },
    Ces {
        cust: u32,
        score: u8,
        ticket: u64,
    },
    Order {
        slot: u32,
        cust: u32,
    },
    Return {
        slot: u32,
        cust: u32,
        order: u64,
    },
    Warranty {
        slot: u32,
        cust: u32,
        /// 0: no order named.
        order: u64,
        /// `u8::MAX`: no product named.
        product: u8,
    },
    /// A `customer.contacted`.
    Contacted(Contact),
    Churn {
        slot: u32,
        cust: u32,
        /// `u8::MAX`: no reason given.
        reason: u8,
    },
}

impl Generator {
    /// Writes the line of `ev`, due at `t`, and schedules what follows. `false` when the event
    /// writes nothing (its customer is gone, or a process decided to skip this firing).
    pub(super) fn fire(&mut self, t: i64, ev: Ev) -> bool {
        match ev {
            Ev::Proc(p) => return self.fire_proc(t, p as usize),
            Ev::NewTicket {
                slot,
                cust,
                category,
            } => {
                if !self.present(slot, cust) {
                    return false; // the customer churned meanwhile
                }
                self.create_ticket(t, slot, Some(category));
            }
            Ev::Ticket(idx) => self.fire_ticket(t, idx),
            Ev::Handled {
                with,
                handle_ms,
                ticket,
            } => self.write_handled(t, with, handle_ms, ticket),
            Ev::Csat {
                slot,
                cust,
                score,
                team,
                ticket,
            } => self.write_csat(t, slot, cust, score, team, ticket),
            Ev::Ces {
                cust,
                score,
                ticket,
            } => self.write_ces(t, cust, score, ticket),
            Ev::Order { slot, cust } => {
                if !self.present(slot, cust) {
                    return false;
                }
                self.write_order(t, slot, cust);
            }
            Ev::Return { slot, cust, order } => self.write_return(t, slot, cust, order),
            Ev::Warranty {
                slot,
                cust,
                order,
                product,
            } => self.write_warranty(t, slot, cust, order, product),
            Ev::Contacted(c) => self.write_contacted(t, c),
            Ev::Churn { slot, cust, reason } => {
                if !self.present(slot, cust) {
                    return false; // already gone
                }
                self.write_churn(t, slot, cust, reason);
            }
        }
        true
    }

    /// Whether customer `cust` still holds `slot` (has not churned).
    pub(super) fn present(&self, slot: u32, cust: u32) -> bool {
        self.customers[slot as usize].no == cust
    }

    /// A random slot of the population; a tenth of the customers are heavy users and produce
    /// ~37 % of the traffic.
    pub(super) fn pick_slot(&mut self) -> u32 {
        let n = self.customers.len() as u32;
        if n >= 10 && self.chance(0.3) {
            self.rng.gen_range(0..n / 10)
        } else {
            self.rng.gen_range(0..n)
        }
    }

    /// Producer clock skew: a quarter of the non-ticket events are stamped up to 4 s early.
    pub(super) fn skew(&mut self, t: i64) -> i64 {
        if self.chance(0.25) {
            t - self.rng.gen_range(0..4 * SECOND)
        } else {
            t
        }
    }

    /// Schedules the next firing of background process `p`: a Poisson process whose rate
    /// follows a daily cycle (thinning of the peak rate), peaking in the afternoon.
    pub(super) fn schedule_proc(&mut self, p: usize) {
        let max = 1.0 + DIURNAL_AMPLITUDE;
        let lam = self.rate_per_ms * PROC_RATE[p] * max;
        let mut t = self.proc_clock[p];
        loop {
            let e: f64 = self.rng.sample(Exp1);
            t += e / lam;
            let hour = t.rem_euclid(DAY as f64) / HOUR as f64;
            let f = 1.0 + DIURNAL_AMPLITUDE * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
            if self.unif() * max < f {
                break;
            }
        }
        self.proc_clock[p] = t;
        self.queue.push(t.min(9e15) as i64, Ev::Proc(p as u8));
    }

    /// One firing of background process `p` at `t` (and the scheduling of its next one).
    fn fire_proc(&mut self, t: i64, p: usize) -> bool {
        self.schedule_proc(p);
        let slot = self.pick_slot();
        let c = self.customers[slot as usize];
        match p {
            PROC_ARRIVAL => self.create_ticket(t, slot, None),
            PROC_HANDLED => {
                // A call or chat that needed no ticket.
                let channel = [
                    Channel::Phone,
                    Channel::Phone,
                    Channel::Phone,
                    Channel::Chat,
                    Channel::Chat,
                    Channel::InPerson,
                ][self.rng.gen_range(0..6)];
                let team = FRONT_TEAMS[self.rng.gen_range(0..4)];
                let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                let handle_ms = self.handle_ms(channel);
                let with = Contact {
                    cust: c.no,
                    channel,
                    team,
                    agent,
                };
                self.write_handled(t, with, handle_ms, 0);
            }
            PROC_NPS => self.write_nps(t, slot, c),
            PROC_ORDER => {
                // Unhappy customers buy much less.
                let m = (c.mood as f64 + 1.0) / 2.0;
                if !self.chance((m * m).max(0.1)) {
                    return false;
                }
                self.write_order(t, slot, c.no);
            }
            PROC_CONTACT => {
                // Proactive outbound contact (welcome call, check-in).
                let team = [Team::Billing, Team::Vip, Team::Tech][self.rng.gen_range(0..3)];
                let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
                let channel = if self.chance(0.7) {
                    Channel::Phone
                } else {
                    Channel::Email
                };
                let contact = Contact {
                    cust: c.no,
                    team,
                    agent,
                    channel,
                };
                self.write_contacted(t, contact);
            }
            PROC_CHURN => {
                // Churn without a service reason visible here; unhappy customers more often.
                if !self.chance(0.3 + 0.7 * (1.0 - c.mood as f64) / 2.0) {
                    return false;
                }
                let reason = self.churn_reason();
                self.write_churn(t, slot, c.no, reason);
            }
            PROC_RETURN => {
                // A return of an order placed before the stream started.
                let order = self.rng.gen_range(1..FIRST_ORDER);
                self.write_return(t, slot, c.no, order);
            }
            PROC_WARRANTY => {
                let order = if self.chance(0.7) {
                    self.rng.gen_range(1..FIRST_ORDER)
                } else {
                    0
                };
                let product = self.rng.gen_range(0..PRODUCTS.len()) as u8;
                self.write_warranty(t, slot, c.no, order, product);
            }
            _ => return false,
        }
        true
    }
}
