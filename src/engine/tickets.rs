//! Ticket events (SPEC §3): creation, messages, solves, reopens, escalations, and the SLA
//! clocks with their timers.
//!
//! A ticket belongs to the customer that created it: an event naming a ticket of another
//! customer names an unknown ticket (SPEC §2). The events that act on an existing ticket share
//! one preamble ([`Shard::on_ticket`]): find the live ticket (or reject the event as an
//! orphan), touch the event's customer, note the ticket's last event, and move the ticket's
//! contribution to the current-state gauges from before the change to after it. Each handler
//! then measures and returns the after-sales input it holds (SPEC §5), if any.

use super::core::Core;
use super::partition::Shard;
use super::sched::{Input, What};
use super::ticket::{ticket_key, Clock, ClockState, Contribution, Ticket};
use crate::event::{Author, Category, Channel, Event, Priority, DEFAULT_TEAM};
use crate::kpi::{self, Dims, Kpi, Signal, SlaKind};
use crate::output::{Record, Rejection};
use crate::ts::Millis;

/// What a ticket event holds for the after-sales logic: the customer slot and the input.
type Held = Option<(u32, Input)>;

impl Shard {
    /// `ticket.created`: a new ticket with both SLA clocks running and their timers set.
    pub(super) fn ticket_created(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
        (channel, priority, category): (Channel, Priority, Category),
        team: Option<&str>,
    ) -> Result<Held, Rejection> {
        let t = ev.time;
        if self.ev_ticket(core, &ev.customer, ticket).is_some() {
            return Err(Rejection::TicketExists);
        }
        let cust = self.ev_customer(core, &ev.customer, t);
        let team = core.teams.intern(team.unwrap_or(DEFAULT_TEAM));
        let dims = Dims {
            team: Some(team),
            channel: Some(channel),
            priority: Some(priority),
            category: Some(category),
        };
        let sla = &core.cfg.sla;
        let w = core.watermark.get();
        let clock = |due: Millis| Clock {
            due,
            state: ClockState::Running,
            seq: 0,
            team_at_due: team,
            // A due already behind the watermark (a late ticket) makes its breach a late
            // after-sales input (SPEC §5).
            late5: due < w,
        };
        let (names, split) = Ticket::names(ev.customer.as_ref(), ticket);
        let tk = Ticket {
            names,
            split,
            dims,
            created: t,
            last_event: t,
            public_agent_messages: 0,
            first_response_seen: false,
            solved_once: false,
            open: true,
            first_response: clock(t.saturating_add(sla.first_response.get(priority))),
            resolution: clock(t.saturating_add(sla.resolution.get(priority))),
            ck: Default::default(),
        };
        core.gauges((Contribution::default(), dims), (tk.contribution(), dims));
        let key = self.ev_ticket_key(&ev.customer, ticket);
        let dues = SlaKind::ALL.map(|kind| tk.clock(kind).due);
        let idx = self.tickets.insert(key, tk);
        let seqs = dues.map(|due| self.timer(due, What::Sla { ticket: idx }));
        if let Some(tk) = self.tickets.get_mut(idx) {
            for (kind, seq) in SlaKind::ALL.into_iter().zip(seqs) {
                tk.clock_mut(kind).seq = seq;
            }
            self.log.touch_ticket(key, tk);
        }
        core.measure(t, dims, Kpi::Created);
        Ok(Some((cust, Input::TicketCreated)))
    }

    /// The preamble shared by the events that act on an existing ticket (see the module
    /// docs); `change` updates the ticket. Returns what it returned and the customer's slot.
    fn on_ticket<R>(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        id: &str,
        change: impl FnOnce(&mut Ticket, &mut Core) -> R,
    ) -> Result<(R, u32), Rejection> {
        let t = ev.time;
        let key = self.ev_ticket_key(&ev.customer, id);
        let idx = self
            .live_ticket_keyed(core, key)
            .ok_or(Rejection::UnknownTicket)?;
        let cust = self.ev_customer(core, &ev.customer, t);
        let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
        tk.last_event = tk.last_event.max(t);
        let before = (tk.contribution(), tk.dims);
        let r = change(tk, core);
        let after = (tk.contribution(), tk.dims);
        if before != after {
            core.gauges(before, after);
        }
        self.log.touch_ticket(key, tk);
        Ok((r, cust))
    }

    /// `ticket.message`: only a public agent message counts (SPEC §3) — the first one is the
    /// first response and stops the first-response clock; it also answers a recovery case.
    pub(super) fn ticket_message(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
        author: Author,
        public: bool,
    ) -> Result<Held, Rejection> {
        let t = ev.time;
        if author != Author::Agent || !public {
            // System authors and internal notes never count.
            self.on_ticket(core, ev, ticket, |_, _| ())?;
            return Ok(None);
        }
        let ((first, created, dims, stop), cust) = self.on_ticket(core, ev, ticket, |tk, _| {
            tk.public_agent_messages = tk.public_agent_messages.saturating_add(1);
            let first = !tk.first_response_seen;
            tk.first_response_seen = true;
            let stop = stop_clock(tk, SlaKind::FirstResponse, t);
            (first, tk.created, tk.dims, stop)
        })?;
        if first {
            core.measure(t, dims, Kpi::FirstResponse(kpi::elapsed(created, t)));
        }
        self.stopped(core, ev, ticket, dims, SlaKind::FirstResponse, stop, t);
        Ok(Some((cust, Input::Contact)))
    }

    /// `ticket.solved`: every solve is measured; the first also decides FCR and stops both
    /// clocks (the first-response clock too, if no reply did).
    pub(super) fn ticket_solved(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
    ) -> Result<Held, Rejection> {
        let t = ev.time;
        let ((first, solved, stops, dims, id), cust) =
            self.on_ticket(core, ev, ticket, |tk, _| {
                let first = !tk.solved_once;
                let solved = Kpi::Solved {
                    resolution: kpi::elapsed(tk.created, t),
                    first,
                    fcr: first && kpi::is_fcr(u32::from(tk.public_agent_messages)),
                };
                let mut stops = [Stop::None, Stop::None];
                if first {
                    tk.solved_once = true;
                    stops = [
                        stop_clock(tk, SlaKind::FirstResponse, t),
                        stop_clock(tk, SlaKind::Resolution, t),
                    ];
                }
                tk.open = false;
                (first, solved, stops, tk.dims, Box::<str>::from(tk.id()))
            })?;
        core.measure(t, dims, solved);
        for (kind, stop) in SlaKind::ALL.into_iter().zip(stops) {
            self.stopped(core, ev, ticket, dims, kind, stop, t);
        }
        Ok(first.then_some((cust, Input::FirstSolve(id))))
    }

    /// `ticket.reopened`: the ticket is open again.
    pub(super) fn ticket_reopened(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
    ) -> Result<Held, Rejection> {
        let (dims, cust) = self.on_ticket(core, ev, ticket, |tk, _| {
            tk.open = true;
            tk.dims
        })?;
        core.measure(ev.time, dims, Kpi::Reopened);
        Ok(Some((cust, Input::Reopen)))
    }

    /// `ticket.escalated`: counted under the team the ticket had before; the new team, when
    /// given, applies afterwards — and to a running clock's dimensions at its due only if the
    /// escalation's time is at or before that due (SPEC §3).
    pub(super) fn ticket_escalated(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
        team: Option<&str>,
    ) -> Result<Held, Rejection> {
        let t = ev.time;
        let (old_dims, cust) = self.on_ticket(core, ev, ticket, |tk, core| {
            let old = tk.dims;
            if let Some(tm) = team {
                let id = core.teams.intern(tm);
                tk.dims.team = Some(id);
                for kind in SlaKind::ALL {
                    let c = tk.clock_mut(kind);
                    if c.state == ClockState::Running && t <= c.due {
                        c.team_at_due = id;
                    }
                }
            }
            old
        })?;
        core.measure(t, old_dims, Kpi::Escalated);
        Ok(Some((cust, Input::Escalation)))
    }

    /// After a clock stopped: achieved is measured at the stop; a stop after the due is a
    /// breach found now — measured and reported at the due, its `sla_breach` signal held at
    /// the due like any after-sales input (SPEC §3, §5).
    #[allow(clippy::too_many_arguments)]
    fn stopped(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
        dims: Dims,
        kind: SlaKind,
        stop: Stop,
        t: Millis,
    ) {
        match stop {
            Stop::None => {}
            Stop::Achieved => core.measure(
                t,
                dims,
                Kpi::Sla {
                    kind,
                    breached: false,
                },
            ),
            Stop::Late(clock) => {
                let dims = Dims {
                    team: Some(clock.team_at_due),
                    ..dims
                };
                let cust = self.ev_customer(core, &ev.customer, t);
                self.breach(core, &ev.customer, ticket, dims, kind, clock, cust, false);
            }
        }
    }

    /// An SLA timer: the clock's due has passed with the clock still running — a breach at
    /// the due, reported now, while the customer still waits.
    pub(super) fn sla_due(&mut self, core: &mut Core, idx: u32, seq: u64, due: Millis) {
        let Some(tk) = self.tickets.get_mut(idx) else {
            return;
        };
        // The clock this timer was set for; none if the handle now holds another ticket.
        let Some(kind) = SlaKind::ALL.into_iter().find(|&k| tk.clock(k).seq == seq) else {
            return;
        };
        let clock = *tk.clock(kind);
        if clock.state != ClockState::Running || clock.due != due {
            return;
        }
        let before = (tk.contribution(), tk.dims);
        tk.clock_mut(kind).state = ClockState::Breached;
        let after = (tk.contribution(), tk.dims);
        let dims = Dims {
            team: Some(clock.team_at_due),
            ..tk.dims
        };
        let (customer, id) = (Box::<str>::from(tk.customer()), Box::<str>::from(tk.id()));
        self.log.touch_ticket(ticket_key(&customer, &id), tk);
        core.gauges(before, after);
        let cust = self.customer_at(core, &customer, due, false);
        self.breach(core, &customer, &id, dims, kind, clock, cust, true);
    }

    /// A breach (SPEC §3): measured at the due with the dimensions at the due, reported as
    /// `sla.breached`, and a `sla_breach` churn signal of the customer at the due (SPEC §5) —
    /// applied now when it comes from the timer (in the scheduler's order), held otherwise;
    /// not at all when the due was already late for the after-sales logic.
    #[allow(clippy::too_many_arguments)]
    fn breach(
        &mut self,
        core: &mut Core,
        customer: &str,
        ticket: &str,
        dims: Dims,
        kind: SlaKind,
        clock: Clock,
        cust: u32,
        from_timer: bool,
    ) {
        let due = clock.due;
        core.measure(
            due,
            dims,
            Kpi::Sla {
                kind,
                breached: true,
            },
        );
        core.emit(Record::SlaBreached {
            due,
            customer: customer.to_string(),
            ticket: ticket.to_string(),
            sla: kind,
            priority: dims.priority.unwrap_or(Priority::Normal),
            team: core.teams.name(dims.team.unwrap_or(0)).to_string(),
            channel: dims.channel.unwrap_or(Channel::Email),
        });
        if clock.late5 {
            core.stats.late_signal_inputs += 1;
        } else if from_timer {
            self.signal(core, cust, Signal::SlaBreach, due);
        } else {
            self.hold(due, cust, Input::SlaBreach);
        }
    }
}

/// What stopping a clock did.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// It was not running.
    None,
    /// Stopped at or before its due.
    Achieved,
    /// Stopped after its due: breached (the clock as it was).
    Late(Clock),
}

/// Stops an SLA clock at `t` if it is running: achieved if at or before its due, breached
/// otherwise.
fn stop_clock(tk: &mut Ticket, kind: SlaKind, t: Millis) -> Stop {
    let clock = tk.clock_mut(kind);
    if clock.state != ClockState::Running {
        return Stop::None;
    }
    if kpi::sla_achieved(t, clock.due) {
        clock.state = ClockState::Achieved;
        Stop::Achieved
    } else {
        clock.state = ClockState::Breached;
        Stop::Late(*clock)
    }
}
