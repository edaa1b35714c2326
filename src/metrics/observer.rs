//! The engine hook ([`Metrics::observer`]): turns each measurement and current-state change
//! into metric updates.
//!
//! It is called once per measurement, so it never touches the registry's label maps on the
//! way: it caches the resolved series per dimension combination (the engine owns it and is
//! single-threaded, so the caches need no locks), and an update is a small hash-map lookup
//! plus an atomic add. Label values pass the per-label caps once per combination; a folded
//! value still counts one overflow per update.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};
use std::sync::Arc;

use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::{Counter, Histogram, IntCounter};
use rustc_hash::FxHasher;

use super::defs::{Id, NO_LABELS};
use super::labels::{LabelCap, OTHER};
use super::registry::{Families, Metrics};
use super::{StateGauge, NO_TEAM};
use crate::engine::{Interner, Observer};
use crate::kpi::{Band, Kpi, Measurement, NpsClass, SlaKind};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

impl Metrics {
    /// The engine hook: every measurement and current-state gauge change.
    pub fn observer(self: &Arc<Self>) -> Box<dyn Observer> {
        Box::new(MetricsObserver::new(self.clone()))
    }
}

/// A resolved label value: the value itself, or `__other__` (then `folded`).
struct Lv {
    value: Box<str>,
    folded: bool,
}

impl Lv {
    fn of(cap: &LabelCap, v: &str) -> Lv {
        if cap.admit(v) {
            Lv {
                value: v.into(),
                folded: false,
            }
        } else {
            Lv {
                value: OTHER.into(),
                folded: true,
            }
        }
    }

    /// The label value for one update, counted in `label_overflow_total` if folded.
    fn touch(&self, cap: &LabelCap) -> &str {
        if self.folded {
            cap.count_overflow();
        }
        &self.value
    }
}

/// The cached resolution of `key` for `cap` (resolved once, with `name` giving the value).
fn lv<'a, K: Hash + Eq>(
    map: &'a mut FxMap<K, Lv>,
    key: K,
    cap: &LabelCap,
    name: impl FnOnce() -> String,
) -> &'a Lv {
    map.entry(key).or_insert_with(|| Lv::of(cap, &name()))
}

/// The series of one (team, channel, priority), created on first use.
#[derive(Default)]
struct TicketSeries {
    created: Option<IntCounter>,
    solved: Option<IntCounter>,
    first_solved: Option<IntCounter>,
    fcr: Option<IntCounter>,
    reopened: Option<IntCounter>,
    escalated: Option<IntCounter>,
    first_response: Option<Histogram>,
    resolution: Option<Histogram>,
}

/// The series in `slot`, resolved from `family()` with label values `l` on first use (the
/// family is looked up only then: this is the hot path).
fn cached<'a, 'f, T: MetricVecBuilder + 'f>(
    slot: &'a mut Option<T::M>,
    family: impl FnOnce() -> &'f MetricVec<T>,
    l: &[&str],
) -> &'a T::M {
    slot.get_or_insert_with(|| family().with_label_values(l))
}

/// The series whose label values do not come from the data, resolved once.
struct Fixed {
    /// By [`NpsClass`]: promoter, passive, detractor.
    nps: [IntCounter; 3],
    orders: IntCounter,
    order_revenue: Counter,
    returns: IntCounter,
    warranty_claims: IntCounter,
    /// `[false, true]` by `signalled`.
    customers_churned: [IntCounter; 2],
    churn_signals: IntCounter,
    churn_confirmed: IntCounter,
    churn_expired: IntCounter,
    recovery_opened: IntCounter,
    recovery_answered: IntCounter,
    recovery_overdue: IntCounter,
    recovery_answer_seconds: Histogram,
    /// By `Band` index, then `[converted, expired]`.
    post_service: [[IntCounter; 2]; 4],
}

impl Fixed {
    fn new(f: &Families) -> Fixed {
        let c = |id, l: &[&str]| f.counter(id).with_label_values(l);
        let nps = |class: NpsClass| c(Id::NpsResponses, &[class.as_str()]);
        Fixed {
            nps: [NpsClass::Promoter, NpsClass::Passive, NpsClass::Detractor].map(nps),
            orders: c(Id::Orders, &[]),
            order_revenue: f
                .float_counter(Id::OrderRevenue)
                .with_label_values(NO_LABELS),
            returns: c(Id::Returns, &[]),
            warranty_claims: c(Id::WarrantyClaims, &[]),
            customers_churned: ["false", "true"].map(|s| c(Id::CustomersChurned, &[s])),
            churn_signals: c(Id::ChurnSignals, &[]),
            churn_confirmed: c(Id::ChurnSignalOutcomes, &["confirmed"]),
            churn_expired: c(Id::ChurnSignalOutcomes, &["expired_without_churn"]),
            recovery_opened: c(Id::RecoveryCases, &["opened"]),
            recovery_answered: c(Id::RecoveryCases, &["answered"]),
            recovery_overdue: c(Id::RecoveryCases, &["overdue"]),
            recovery_answer_seconds: f
                .histogram(Id::RecoveryAnswerSeconds)
                .with_label_values(NO_LABELS),
            post_service: Band::ALL.map(|b| {
                ["converted", "expired"].map(|o| c(Id::PostServiceOutcomes, &[o, b.as_str()]))
            }),
        }
    }
}

/// Team ids are interned per engine; `u32::MAX` stands for "no team".
const NO_TEAM_ID: u32 = u32::MAX;
/// Enumeration index standing for "absent".
const ABSENT: u8 = u8::MAX;

fn team_name(id: u32, names: &Interner) -> String {
    if id == NO_TEAM_ID {
        NO_TEAM.to_string()
    } else {
        names.name(id).to_string()
    }
}

/// Feeds [`Metrics`] from one engine. Owned by the engine (single-threaded), so its caches
/// need no locks; each measurement costs a few small hash lookups and atomic adds.
struct MetricsObserver {
    m: Arc<Metrics>,
    fixed: Fixed,
    open_tickets: StateGauge,
    sla_breached_open: StateGauge,
    teams: FxMap<u32, Lv>,
    channels: FxMap<u8, Lv>,
    priorities: FxMap<u8, Lv>,
    scores: FxMap<u8, Lv>,
    tickets: FxMap<(u32, u8, u8), TicketSeries>,
    sla: FxMap<(u8, u32, u8), [Option<IntCounter>; 2]>,
    csat: FxMap<(u32, u8), IntCounter>,
    ces: FxMap<u8, IntCounter>,
    handle: FxMap<u8, Histogram>,
}

impl MetricsObserver {
    fn new(m: Arc<Metrics>) -> MetricsObserver {
        MetricsObserver {
            fixed: Fixed::new(&m.families),
            open_tickets: m.families.state(Id::OpenTickets).clone(),
            sla_breached_open: m.families.state(Id::SlaBreachedOpenTickets).clone(),
            m,
            teams: FxMap::default(),
            channels: FxMap::default(),
            priorities: FxMap::default(),
            scores: FxMap::default(),
            tickets: FxMap::default(),
            sla: FxMap::default(),
            csat: FxMap::default(),
            ces: FxMap::default(),
            handle: FxMap::default(),
        }
    }

    /// A ticket KPI: `f` updates the series of the measurement's (team, channel, priority).
    fn ticket(
        &mut self,
        mm: &Measurement,
        names: &Interner,
        f: impl FnOnce(&Families, &mut TicketSeries, &[&str]),
    ) {
        let m = &*self.m;
        let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
        let c = mm.dims.channel.map_or(ABSENT, |c| c.index() as u8);
        let p = mm.dims.priority.map_or(ABSENT, |p| p.index() as u8);
        let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
        let channel = lv(&mut self.channels, c, &m.caps.channel, || {
            mm.dims.channel.map_or(NO_TEAM, |c| c.as_str()).to_string()
        });
        let prio = lv(&mut self.priorities, p, &m.caps.priority, || {
            mm.dims.priority.map_or(NO_TEAM, |p| p.as_str()).to_string()
        });
        let labels = [
            team.touch(&m.caps.team),
            channel.touch(&m.caps.channel),
            prio.touch(&m.caps.priority),
        ];
        let series = self.tickets.entry((t, c, p)).or_default();
        f(&m.families, series, &labels);
    }
}

impl Observer for MetricsObserver {
    fn fork(&self) -> Option<Box<dyn Observer>> {
        Some(Box::new(MetricsObserver::new(Arc::clone(&self.m))))
    }

    fn measurement(&mut self, mm: &Measurement, names: &Interner) {
        match mm.kpi {
            Kpi::Created => self.ticket(mm, names, |f, s, l| {
                cached(&mut s.created, || f.counter(Id::TicketsCreated), l).inc()
            }),
            Kpi::FirstResponse(ms) => self.ticket(mm, names, |f, s, l| {
                cached(
                    &mut s.first_response,
                    || f.histogram(Id::FirstResponseSeconds),
                    l,
                )
                .observe(ms as f64 / 1000.0)
            }),
            Kpi::Solved {
                resolution,
                first,
                fcr,
            } => self.ticket(mm, names, |f, s, l| {
                cached(&mut s.solved, || f.counter(Id::TicketsSolved), l).inc();
                cached(&mut s.resolution, || f.histogram(Id::ResolutionSeconds), l)
                    .observe(resolution as f64 / 1000.0);
                if first {
                    cached(&mut s.first_solved, || f.counter(Id::TicketsFirstSolved), l).inc();
                    if fcr {
                        cached(&mut s.fcr, || f.counter(Id::TicketsFcr), l).inc();
                    }
                }
            }),
            Kpi::Reopened => self.ticket(mm, names, |f, s, l| {
                cached(&mut s.reopened, || f.counter(Id::TicketsReopened), l).inc()
            }),
            Kpi::Escalated => self.ticket(mm, names, |f, s, l| {
                cached(&mut s.escalated, || f.counter(Id::TicketsEscalated), l).inc()
            }),
            Kpi::Handle(secs) => {
                let m = &*self.m;
                let c = mm.dims.channel.map_or(ABSENT, |c| c.index() as u8);
                let channel = lv(&mut self.channels, c, &m.caps.channel, || {
                    mm.dims.channel.map_or(NO_TEAM, |c| c.as_str()).to_string()
                });
                let label = channel.touch(&m.caps.channel);
                if secs.is_finite() && secs >= 0.0 {
                    let f = &m.families;
                    self.handle
                        .entry(c)
                        .or_insert_with(|| {
                            f.histogram(Id::HandleSeconds).with_label_values(&[label])
                        })
                        .observe(secs);
                }
            }
            Kpi::Sla { kind, breached } => {
                let m = &*self.m;
                let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
                let p = mm.dims.priority.map_or(ABSENT, |p| p.index() as u8);
                let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
                let prio = lv(&mut self.priorities, p, &m.caps.priority, || {
                    mm.dims.priority.map_or(NO_TEAM, |p| p.as_str()).to_string()
                });
                let labels = [
                    kind.as_str(),
                    team.touch(&m.caps.team),
                    prio.touch(&m.caps.priority),
                ];
                let k = match kind {
                    SlaKind::FirstResponse => 0,
                    SlaKind::Resolution => 1,
                };
                let slots = self.sla.entry((k, t, p)).or_default();
                let (slot, id) = if breached {
                    (&mut slots[1], Id::SlaBreached)
                } else {
                    (&mut slots[0], Id::SlaAchieved)
                };
                cached(slot, || m.families.counter(id), &labels).inc();
            }
            Kpi::Csat(score) => {
                let m = &*self.m;
                let t = mm.dims.team.unwrap_or(NO_TEAM_ID);
                let team = lv(&mut self.teams, t, &m.caps.team, || team_name(t, names));
                let sc = lv(&mut self.scores, score, &m.caps.score, || score.to_string());
                let labels = [team.touch(&m.caps.team), sc.touch(&m.caps.score)];
                let f = &m.families;
                self.csat
                    .entry((t, score))
                    .or_insert_with(|| f.counter(Id::CsatResponses).with_label_values(&labels))
                    .inc();
            }
            Kpi::Nps(score) => {
                let i = match NpsClass::of(score) {
                    NpsClass::Promoter => 0,
                    NpsClass::Passive => 1,
                    NpsClass::Detractor => 2,
                };
                self.fixed.nps[i].inc();
            }
            Kpi::Ces(score) => {
                let m = &*self.m;
                let sc = lv(&mut self.scores, score, &m.caps.score, || score.to_string());
                let label = sc.touch(&m.caps.score);
                let f = &m.families;
                self.ces
                    .entry(score)
                    .or_insert_with(|| f.counter(Id::CesResponses).with_label_values(&[label]))
                    .inc();
            }
            Kpi::OrderPlaced(amount) => {
                self.fixed.orders.inc();
                if amount.is_finite() && amount > 0.0 {
                    self.fixed.order_revenue.inc_by(amount);
                }
            }
            Kpi::Returned => self.fixed.returns.inc(),
            Kpi::WarrantyClaim => self.fixed.warranty_claims.inc(),
            // Counted through ChurnOutcome, which also says whether the churn was signalled
            // (the engine sends exactly one per customer.churned, late or not).
            Kpi::Churned => {}
            Kpi::ChurnOutcome { after_signal } => {
                self.fixed.customers_churned[after_signal as usize].inc()
            }
            Kpi::ChurnSignalled => self.fixed.churn_signals.inc(),
            Kpi::ChurnConfirmed => self.fixed.churn_confirmed.inc(),
            Kpi::ChurnExpired => self.fixed.churn_expired.inc(),
            Kpi::RecoveryOpened => self.fixed.recovery_opened.inc(),
            Kpi::RecoveryAnswered(ms) => {
                self.fixed.recovery_answered.inc();
                self.fixed
                    .recovery_answer_seconds
                    .observe(ms.max(0) as f64 / 1000.0);
            }
            Kpi::RecoveryOverdue => self.fixed.recovery_overdue.inc(),
            Kpi::Repurchase { band, converted } => {
                let b = Band::ALL.iter().position(|x| *x == band).unwrap_or(3);
                self.fixed.post_service[b][usize::from(!converted)].inc();
            }
        }
    }

    fn open_tickets(&mut self, team: &str, priority: &str, delta: i64) {
        let caps = &self.m.caps;
        let team = caps.team.resolve(team);
        let priority = caps.priority.resolve(priority);
        self.open_tickets.add(&[team, priority], delta);
    }

    fn breached_open(&mut self, sla: SlaKind, team: &str, priority: &str, delta: i64) {
        let caps = &self.m.caps;
        let team = caps.team.resolve(team);
        let priority = caps.priority.resolve(priority);
        self.sla_breached_open
            .add(&[sla.as_str(), team, priority], delta);
    }
}
