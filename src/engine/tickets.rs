//! Ticket events (SPEC §3): creation, messages, solves, reopens, escalations, and the SLA
//! clocks with their timers.
//!
//! The events that act on an existing ticket share one preamble ([`Partition::on_ticket`]):
//! find the live ticket (or reject the event as an orphan), touch the event's customer, note
//! the ticket's last event, and move the ticket's contribution to the current-state gauges
//! from before the change to after it. Each handler then measures and returns the
//! after-sales input it holds (SPEC §5), if any.

use super::core::Core;
use super::partition::{Holder, Partition};
use super::sched::{Input, What};
use super::ticket::{Clock, ClockState, Contribution, Ticket};
use crate::event::{Author, Category, Channel, Event, Priority, DEFAULT_TEAM};
use crate::kpi::{self, Dims, Kpi, Signal, SlaKind};
use crate::output::{Record, Rejection};
use crate::ts::Millis;

/// What a ticket event holds for the after-sales logic: the customer and the input.
type Held = Option<(Holder, Input)>;

impl Partition {
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
        if self.live_ticket(core, ticket).is_some() {
            return Err(Rejection::TicketExists);
        }
        let cust = self.customer(core, &ev.customer, t);
        let team = core.teams.intern(team.unwrap_or(DEFAULT_TEAM));
        let dims = Dims {
            team: Some(team),
            channel: Some(channel),
            priority: Some(priority),
            category: Some(category),
        };
        let sla = &core.cfg.sla;
        let fr_due = t.saturating_add(sla.first_response.get(priority));
        let res_due = t.saturating_add(sla.resolution.get(priority));
        let tk = Ticket {
            id: ticket.into(),
            customer: ev.customer.as_ref().into(),
            dims,
            created: t,
            last_event: t,
            public_agent_messages: 0,
            first_response_seen: false,
            solved_once: false,
            open: true,
            first_response: Clock {
                due: fr_due,
                state: ClockState::Running,
            },
            resolution: Clock {
                due: res_due,
                state: ClockState::Running,
            },
        };
        core.gauges((Contribution::default(), dims), (tk.contribution(), dims));
        let (idx, generation) = self.tickets.insert(tk);
        self.ticket_ids.insert(ticket.into(), idx);
        for (due, kind) in [
            (fr_due, SlaKind::FirstResponse),
            (res_due, SlaKind::Resolution),
        ] {
            let what = What::Sla {
                ticket: idx,
                generation,
                kind,
            };
            self.timer(due, what);
        }
        core.measure(t, dims, Kpi::Created, self.partition);
        Ok(Some((Holder::Slot(cust), Input::TicketCreated)))
    }

    /// The preamble shared by the events that act on an existing ticket (see the module
    /// docs); `change` updates the ticket. Returns what it returned and the ticket's owner.
    fn on_ticket<R>(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        id: &str,
        change: impl FnOnce(&mut Ticket, &mut Core) -> R,
    ) -> Result<(R, Box<str>), Rejection> {
        let t = ev.time;
        let idx = self.live_ticket(core, id).ok_or(Rejection::UnknownTicket)?;
        self.customer(core, &ev.customer, t);
        let tk = self.tickets.get_mut(idx).ok_or(Rejection::UnknownTicket)?;
        tk.last_event = tk.last_event.max(t);
        let before = (tk.contribution(), tk.dims);
        let r = change(tk, core);
        let after = (tk.contribution(), tk.dims);
        if before != after {
            core.gauges(before, after);
        }
        Ok((r, tk.customer.clone()))
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
        let ((first, created, dims, stop), owner) = self.on_ticket(core, ev, ticket, |tk, _| {
            tk.public_agent_messages += 1;
            let first = !tk.first_response_seen;
            tk.first_response_seen = true;
            let stop = stop_clock(tk, SlaKind::FirstResponse, t);
            (first, tk.created, tk.dims, stop)
        })?;
        if first {
            let m = Kpi::FirstResponse(kpi::elapsed(created, t));
            core.measure(t, dims, m, self.partition);
        }
        if let Some(m) = stop {
            core.measure(t, dims, m, self.partition);
        }
        Ok(Some((Holder::Owner(owner), Input::Contact)))
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
        let ((first, solved, stops, dims, id), owner) =
            self.on_ticket(core, ev, ticket, |tk, _| {
                let first = !tk.solved_once;
                let solved = Kpi::Solved {
                    resolution: kpi::elapsed(tk.created, t),
                    first,
                    fcr: first && kpi::is_fcr(tk.public_agent_messages),
                };
                let mut stops = [None, None];
                if first {
                    tk.solved_once = true;
                    stops = [
                        stop_clock(tk, SlaKind::FirstResponse, t),
                        stop_clock(tk, SlaKind::Resolution, t),
                    ];
                }
                tk.open = false;
                (first, solved, stops, tk.dims, tk.id.clone())
            })?;
        core.measure(t, dims, solved, self.partition);
        for m in stops.into_iter().flatten() {
            core.measure(t, dims, m, self.partition);
        }
        Ok(first.then_some((Holder::Owner(owner), Input::FirstSolve(id))))
    }

    /// `ticket.reopened`: the ticket is open again.
    pub(super) fn ticket_reopened(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
    ) -> Result<Held, Rejection> {
        let (dims, owner) = self.on_ticket(core, ev, ticket, |tk, _| {
            tk.open = true;
            tk.dims
        })?;
        core.measure(ev.time, dims, Kpi::Reopened, self.partition);
        Ok(Some((Holder::Owner(owner), Input::Reopen)))
    }

    /// `ticket.escalated`: counted under the team the ticket had before; the new team, when
    /// given, applies afterwards.
    pub(super) fn ticket_escalated(
        &mut self,
        core: &mut Core,
        ev: &Event<'_>,
        ticket: &str,
        team: Option<&str>,
    ) -> Result<Held, Rejection> {
        let (old_dims, owner) = self.on_ticket(core, ev, ticket, |tk, core| {
            let old = tk.dims;
            if let Some(tm) = team {
                tk.dims.team = Some(core.teams.intern(tm));
            }
            old
        })?;
        core.measure(ev.time, old_dims, Kpi::Escalated, self.partition);
        Ok(Some((Holder::Owner(owner), Input::Escalation)))
    }

    /// An SLA timer: the clock's due has passed with the clock still running (or stopped
    /// after its due) — a breach at the due, reported now, while the customer still waits.
    pub(super) fn sla_due(
        &mut self,
        core: &mut Core,
        idx: u32,
        generation: u32,
        kind: SlaKind,
        due: Millis,
    ) {
        let Some(tk) = self.tickets.get_gen_mut(idx, generation) else {
            return;
        };
        let clock = tk.clock(kind);
        if !clock.pending() || clock.due != due {
            return;
        }
        let before = (tk.contribution(), tk.dims);
        tk.clock_mut(kind).state = ClockState::Breached;
        let after = (tk.contribution(), tk.dims);
        let dims = tk.dims;
        let record = Record::SlaBreached {
            due,
            customer: tk.customer.to_string(),
            ticket: tk.id.to_string(),
            sla: kind,
            priority: dims.priority.unwrap_or(Priority::Normal),
            team: core.teams.name(dims.team.unwrap_or(0)).to_string(),
            channel: dims.channel.unwrap_or(Channel::Email),
        };
        let owner = tk.customer.clone();
        core.gauges(before, after);
        let m = Kpi::Sla {
            kind,
            breached: true,
        };
        core.measure(due, dims, m, self.partition);
        core.emit(record);
        // SPEC §5: each SLA breach of the customer's ticket is a signal at its due, applied in
        // event-time order. A breach due before after-sales time already applied (a late
        // ticket) is late for that logic.
        if due >= self.s5_clock {
            self.s5_clock = due;
            let cust = self.customer(core, &owner, due);
            self.signal(core, cust, Signal::SlaBreach, due);
        } else {
            core.stats.late_signal_inputs += 1;
        }
    }
}

/// Stops an SLA clock at `t` if it is running: achieved if at or before its due (a
/// measurement at the stop); otherwise the breach is left for the timer to report at the due.
fn stop_clock(tk: &mut Ticket, kind: SlaKind, t: Millis) -> Option<Kpi> {
    let clock = tk.clock_mut(kind);
    if clock.state != ClockState::Running {
        return None;
    }
    if kpi::sla_achieved(t, clock.due) {
        clock.state = ClockState::Achieved;
        Some(Kpi::Sla {
            kind,
            breached: false,
        })
    } else {
        clock.state = ClockState::StoppedLate;
        None
    }
}
