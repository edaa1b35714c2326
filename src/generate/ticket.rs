//! The life cycle of one ticket: `ticket.created` → optional `system` auto-reply and internal
//! note → first public agent reply → customer/agent exchanges → sometimes an escalation →
//! `ticket.solved` → sometimes `ticket.reopened` → solved again.
//!
//! A ticket's whole life is planned when it is created (which replies it gets, whether it is
//! escalated, stalled or never answered, when it is solved), but only its next event is on the
//! schedule at any time: each event, once written, schedules the one after it, at least 1 s
//! later. Whether a solve is final or the ticket will be reopened is decided here, from how
//! bad the experience was; what a final solve leads to (surveys, mood, repurchases, churn) is
//! in `surveys`.

use rand::Rng;

use super::aftersales::Contact;
use super::random::pick_weighted;
use super::sim::Ev;
use super::tables::{
    teams_for, Team, AGENTS_PER_TEAM, CATEGORY_W, CHANNEL_FRT, CHANNEL_W, ESCALATE_P, FRONT_TEAMS,
    FRT_TARGET, NEVER, PRIORITY_W, RES_TARGET,
};
use super::Generator;
use crate::event::{Author, Category, Channel, EventType, Priority};
use crate::ts::{DAY, HOUR, MINUTE, SECOND};

/// The kind of a ticket's next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    System,
    Note,
    Escalate,
    FirstReply,
    Message,
    Solve,
    Reopen,
}

/// A live ticket. Times are ms; `NEVER` means none.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    pub(super) no: u64,
    created: i64,
    priority: Priority,
    /// The customer's slot in the population.
    pub(super) slot: u32,
    /// The customer, the channel, and the team and agent (which change on escalation).
    pub(super) with: Contact,
    seen: Seen,
    /// What the pending schedule entry will write.
    next: Step,
    plan: Plan,
}

/// What has happened to a ticket so far.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When the first-response clock stopped (NEVER: still running).
    first_stop: i64,
    first_solve: i64,
    /// Public agent messages.
    agent_public: u8,
    reopens: u8,
    escalated: bool,
}

/// When a ticket's next events are due.
#[derive(Debug, Clone, Copy)]
struct Plan {
    solve_at: i64,
    system_at: i64,
    note_at: i64,
    escalate_at: i64,
    /// Next event of the main chain (replies, messages, solve, reopen).
    main_at: i64,
    main_kind: Step,
    /// Remaining messages before the next solve, LSB first: 1 = agent, 0 = customer.
    msgs_mask: u16,
    msgs_left: u8,
}

impl Ticket {
    /// How bad the experience was: 0 = flawless; each SLA breach, the escalation, each reopen
    /// and long back-and-forth make it worse.
    fn badness(&self) -> f64 {
        let p = self.priority as usize;
        let seen = &self.seen;
        let mut bad = 0.0;
        if seen.first_stop > self.created + FRT_TARGET[p] {
            bad += 1.0;
        }
        if seen.first_solve > self.created + RES_TARGET[p] {
            bad += 1.3;
        }
        if seen.escalated {
            bad += 0.5;
        }
        bad += seen.reopens as f64;
        bad += 0.25 * (seen.agent_public.saturating_sub(2)) as f64;
        bad
    }
}

impl Plan {
    /// Nothing planned yet.
    const NOTHING: Plan = Plan {
        solve_at: NEVER,
        system_at: NEVER,
        note_at: NEVER,
        escalate_at: NEVER,
        main_at: NEVER,
        main_kind: Step::Solve,
        msgs_mask: 0,
        msgs_left: 0,
    };
}

impl Generator {
    /// Opens a ticket for the customer in `slot` at `t` (of category `hint`, or a random one),
    /// writes its `ticket.created` and schedules its first event.
    pub(super) fn create_ticket(&mut self, t: i64, slot: u32, hint: Option<Category>) {
        let cust = self.customers[slot as usize].no;
        let vip = slot % 20 == 7;
        let category = match hint {
            Some(c) => c,
            None => Category::ALL[pick_weighted(&mut self.rng, &CATEGORY_W)],
        };
        let channel = Channel::ALL[pick_weighted(&mut self.rng, &CHANNEL_W)];
        let priority = Priority::ALL[pick_weighted(&mut self.rng, &PRIORITY_W)];
        let team = if vip && self.chance(0.7) {
            Team::Vip
        } else if self.chance(0.04) {
            Team::Unassigned
        } else {
            let (teams, w) = teams_for(category);
            teams[pick_weighted(&mut self.rng, w)]
        };
        let agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
        let mut tk = Ticket {
            no: self.next_ticket,
            created: t,
            priority,
            slot,
            with: Contact {
                cust,
                channel,
                team,
                agent,
            },
            seen: Seen {
                first_stop: NEVER,
                first_solve: NEVER,
                agent_public: 0,
                reopens: 0,
                escalated: false,
            },
            next: Step::Solve,
            plan: Plan::NOTHING,
        };
        self.next_ticket += 1;
        self.write_created(&tk, category);
        self.plan(&mut tk);
        let idx = match self.free.pop() {
            Some(i) => {
                self.tickets[i as usize] = tk;
                i
            }
            None => {
                self.tickets.push(tk);
                (self.tickets.len() - 1) as u32
            }
        };
        self.schedule_ticket(idx, tk, t);
    }

    /// Writes the `ticket.created` of a new ticket.
    fn write_created(&mut self, tk: &Ticket, category: Category) {
        self.begin(EventType::TicketCreated, tk.created, tk.with.cust);
        self.out.ticket(tk.no);
        self.out.str("channel", tk.with.channel.as_str());
        self.out.str("priority", tk.priority.as_str());
        if tk.with.team == Team::Unassigned {
            if self.chance(0.3) {
                self.out.raw("team", "null");
            }
        } else {
            self.out.str("team", tk.with.team.name());
        }
        // `other` is the default: often left out.
        if category != Category::Other || self.chance(0.5) {
            self.out.str("category", category.as_str());
        }
        self.end();
    }

    /// Plans the life of a new ticket: how many replies, whether it is never answered, stalled
    /// or escalated, when the first reply and the solve come; schedules the call or chat
    /// session of a live channel.
    fn plan(&mut self, tk: &mut Ticket) {
        let t = tk.created;
        let channel = tk.with.channel;
        let live = matches!(channel, Channel::Phone | Channel::Chat | Channel::InPerson);
        let never_answered = self.chance(0.012);
        // Public agent messages before the first solve.
        let k: u8 = if self.chance(0.04) {
            0
        } else if self.chance(if live { 0.62 } else { 0.45 }) {
            1
        } else {
            let mut k = 2;
            while k < 7 && self.chance(0.45) {
                k += 1;
            }
            k
        };
        let stalled = !never_answered && k > 0 && self.chance(0.02);
        let p = tk.priority as usize;
        let escalated = !never_answered && self.chance(ESCALATE_P[p]);
        let frt_at = if never_answered || k == 0 {
            NEVER
        } else {
            let med = FRT_TARGET[p] as f64 * 0.40 * CHANNEL_FRT[channel as usize];
            t + self.lognormal(med, 0.9).max(20 * SECOND)
        };
        let plan = &mut tk.plan;
        plan.solve_at = if never_answered || stalled {
            NEVER
        } else if k == 0 {
            // Spam, duplicate request, or solved by the customer: closed without a reply.
            t + self.lognormal(RES_TARGET[p] as f64 * 0.15, 1.0).max(MINUTE)
        } else {
            let med = RES_TARGET[p] as f64 * 0.36 * if escalated { 1.5 } else { 1.0 };
            let s = t + self.lognormal(med, 0.85);
            let min_after =
                (k as i64 - 1) * 10 * MINUTE + self.lognormal(20.0 * MINUTE as f64, 0.8);
            s.max(frt_at + min_after)
        };
        if never_answered {
            // The customer nudges, nobody answers.
            plan.msgs_left = self.rng.gen_range(0..3u8);
        } else if k > 0 {
            // (customer, agent) pairs, maybe a trailing "thanks" from the customer.
            plan.msgs_mask = agent_every_other(k - 1);
            plan.msgs_left = 2 * (k - 1) + u8::from(self.chance(0.3));
        }
        let first_public = frt_at.min(plan.solve_at);
        if !live && self.chance(0.7) {
            plan.system_at = t + self.rng.gen_range(SECOND..20 * SECOND);
        }
        if self.chance(0.25) {
            plan.note_at = if first_public != NEVER {
                t + ((first_public - t) as f64 * (0.05 + 0.9 * self.unif())) as i64
            } else {
                t + self.lognormal(30.0 * MINUTE as f64, 1.0)
            };
        }
        if escalated {
            plan.escalate_at = if plan.solve_at != NEVER {
                t + ((plan.solve_at - t) as f64 * (0.1 + 0.75 * self.unif())) as i64
            } else {
                t + self.lognormal(2.0 * HOUR as f64, 1.0)
            };
        }
        if frt_at != NEVER {
            plan.main_at = frt_at;
            plan.main_kind = Step::FirstReply;
        } else {
            self.advance_main(plan, t);
        }
        if live {
            // The call / chat session itself, reported when it ends.
            let handle_ms = self.handle_ms(channel);
            let session = Ev::Handled {
                with: tk.with,
                handle_ms,
                ticket: tk.no,
            };
            self.queue.push(t + handle_ms as i64, session);
        }
    }

    /// Next event of the main chain after an event at `t`.
    fn advance_main(&mut self, plan: &mut Plan, t: i64) {
        if plan.msgs_left > 0 {
            let end = if plan.solve_at != NEVER && plan.solve_at > t {
                plan.solve_at
            } else {
                t + self.lognormal(3.0 * HOUR as f64, 0.8) * plan.msgs_left as i64
            };
            // The earliest of `msgs_left` uniform points in (t, end).
            let u = self.unif();
            let frac = 1.0 - u.powf(1.0 / plan.msgs_left as f64);
            plan.main_at = t + ((end - t) as f64 * frac) as i64;
            plan.main_kind = Step::Message;
        } else if plan.solve_at != NEVER {
            plan.main_at = plan.solve_at;
            plan.main_kind = Step::Solve;
        } else {
            plan.main_at = NEVER;
        }
    }

    /// Schedules the ticket's next event (at least 1 s after `t`), or frees it.
    fn schedule_ticket(&mut self, idx: u32, mut tk: Ticket, t: i64) {
        let plan = &tk.plan;
        let mut best = (plan.main_at, plan.main_kind);
        for c in [
            (plan.escalate_at, Step::Escalate),
            (plan.note_at, Step::Note),
            (plan.system_at, Step::System),
        ] {
            if c.0 <= best.0 {
                best = c;
            }
        }
        if best.0 == NEVER {
            self.free.push(idx);
            return;
        }
        tk.next = best.1;
        self.tickets[idx as usize] = tk;
        self.queue.push(best.0.max(t + SECOND), Ev::Ticket(idx));
    }

    /// Writes the next event of the ticket at `idx` and schedules the one after.
    pub(super) fn fire_ticket(&mut self, t: i64, idx: u32) {
        let mut tk = self.tickets[idx as usize];
        match tk.next {
            Step::System => {
                self.begin_message(&tk, t, Author::System);
                if self.chance(0.5) {
                    self.out.raw("public", "true");
                }
                self.end();
                tk.plan.system_at = NEVER;
            }
            Step::Note => {
                self.begin_message(&tk, t, Author::Agent);
                self.out.agent(tk.with.team, tk.with.agent);
                self.out.raw("public", "false");
                self.end();
                tk.plan.note_at = NEVER;
            }
            Step::Escalate => self.escalate(&mut tk, t),
            Step::FirstReply => {
                self.agent_reply(&mut tk, t);
                let channel = tk.with.channel;
                if matches!(channel, Channel::Email | Channel::WebForm) && self.chance(0.25) {
                    // The email was worked as a handled contact.
                    let handle_ms = self.handle_ms(channel);
                    let worked = Ev::Handled {
                        with: tk.with,
                        handle_ms,
                        ticket: tk.no,
                    };
                    self.queue.push(t + 2 * SECOND, worked);
                }
                self.advance_main(&mut tk.plan, t);
            }
            Step::Message => {
                let plan = &mut tk.plan;
                let agent = plan.msgs_mask & 1 == 1;
                plan.msgs_mask >>= 1;
                plan.msgs_left -= 1;
                if agent {
                    self.agent_reply(&mut tk, t);
                } else {
                    self.begin_message(&tk, t, Author::Customer);
                    self.end();
                }
                self.advance_main(&mut tk.plan, t);
            }
            Step::Solve => self.solve(&mut tk, t),
            Step::Reopen => {
                self.begin(EventType::TicketReopened, t, tk.with.cust);
                self.out.ticket(tk.no);
                self.end();
                tk.seen.reopens += 1;
                // The customer writes again; one or two more agent answers, then solved again.
                let n: u8 = if self.chance(0.35) { 2 } else { 1 };
                tk.plan.msgs_mask = agent_every_other(n);
                tk.plan.msgs_left = 2 * n;
                let med = RES_TARGET[tk.priority as usize] as f64 * 0.25;
                tk.plan.solve_at = t + self.lognormal(med, 0.8).max(2 * n as i64 * 2 * MINUTE);
                self.advance_main(&mut tk.plan, t);
            }
        }
        self.schedule_ticket(idx, tk, t);
    }

    /// Writes a `ticket.escalated`, usually naming the new team (which gets the ticket).
    fn escalate(&mut self, tk: &mut Ticket, t: i64) {
        let team = tk.with.team;
        let new_team = if self.chance(0.65) || team == Team::Escalations {
            if team == Team::Escalations {
                Team::Tech
            } else {
                Team::Escalations
            }
        } else {
            let others: Vec<Team> = FRONT_TEAMS.into_iter().filter(|&x| x != team).collect();
            others[self.rng.gen_range(0..others.len())]
        };
        self.begin(EventType::TicketEscalated, t, tk.with.cust);
        self.out.ticket(tk.no);
        if self.chance(0.92) {
            self.out.str("team", new_team.name());
            tk.with.team = new_team;
            tk.with.agent = self.rng.gen_range(0..AGENTS_PER_TEAM);
        }
        self.end();
        tk.seen.escalated = true;
        tk.plan.escalate_at = NEVER;
    }

    /// Writes a `ticket.solved`; sometimes the ticket will be reopened, else this is the final
    /// solve (surveys and their consequences are in `surveys`).
    fn solve(&mut self, tk: &mut Ticket, t: i64) {
        self.begin(EventType::TicketSolved, t, tk.with.cust);
        self.out.ticket(tk.no);
        let x = self.unif();
        if x < 0.9 {
            self.out.agent(tk.with.team, tk.with.agent);
        } else if x < 0.92 {
            self.out.raw("agent", "null");
        }
        self.end();
        tk.plan.solve_at = NEVER;
        let first = tk.seen.first_solve == NEVER;
        if first {
            tk.seen.first_solve = t;
        }
        if tk.seen.first_stop == NEVER {
            tk.seen.first_stop = t;
        }
        let bad = tk.badness();
        let tier = if bad < 0.3 {
            0
        } else if bad < 1.5 {
            1
        } else {
            2
        };
        let reopen = tk.seen.reopens < 2 && self.chance((0.05 + 0.04 * bad).min(0.25));
        self.after_solve(tk, tier, first, reopen, t);
        if reopen {
            let d = self.lognormal(6.0 * HOUR as f64, 1.2);
            tk.plan.main_at = t + d.clamp(10 * MINUTE, 14 * DAY);
            tk.plan.main_kind = Step::Reopen;
        } else {
            tk.plan.main_at = NEVER;
        }
    }

    /// The envelope, ticket and author of a `ticket.message`.
    fn begin_message(&mut self, tk: &Ticket, t: i64, author: Author) {
        self.begin(EventType::TicketMessage, t, tk.with.cust);
        self.out.ticket(tk.no);
        self.out.str("author", author.as_str());
    }

    /// Writes a public agent reply; it stops the first-response clock.
    fn agent_reply(&mut self, tk: &mut Ticket, t: i64) {
        self.begin_message(tk, t, Author::Agent);
        let x = self.unif();
        if x < 0.97 {
            self.out.agent(tk.with.team, tk.with.agent);
        }
        if x > 0.85 {
            self.out.raw("public", "true");
        } else if x > 0.84 {
            self.out.raw("public", "null");
        }
        self.end();
        tk.seen.agent_public = tk.seen.agent_public.saturating_add(1);
        if tk.seen.first_stop == NEVER {
            tk.seen.first_stop = t;
        }
    }
}

/// A message mask of `n` (customer, agent) pairs: bits 1, 3, 5, … set.
fn agent_every_other(n: u8) -> u16 {
    let mut mask = 0u16;
    for j in 0..n {
        mask |= 1 << (2 * j + 1);
    }
    mask
}
