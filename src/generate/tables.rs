//! The generator's calibration: how often each channel, priority, category and team occurs,
//! the SLA targets the simulated service answers against, the rates of the background
//! processes, and the texts of reasons and products.
//!
//! It lives apart from the simulation so the numbers can be reviewed and tuned in one place,
//! while `sim`, `ticket` and `surveys` read as behaviour. Tables per channel, priority or
//! category are indexed by the `crate::event` enums (in their `ALL` order), so the enum is the
//! only list of those names; the array lengths are tied to the enums at compile time.

use crate::event::{Category, Channel, Priority};
use crate::ts::{HOUR, MINUTE};

/// 2026-11-22T08:00:00Z in ms since the UNIX epoch: the default start of the stream.
pub(super) const DEFAULT_START_MS: i64 = 1_795_334_400_000;

/// Marks a planned time that never comes.
pub(super) const NEVER: i64 = i64::MAX;

/// Weight of each channel among new tickets.
pub(super) const CHANNEL_W: [u32; Channel::ALL.len()] = [34, 20, 20, 5, 12, 3, 6];
/// Scale of the first-reply delay per channel (live channels are answered at once).
pub(super) const CHANNEL_FRT: [f64; Channel::ALL.len()] = [1.25, 0.30, 0.35, 1.0, 1.25, 0.25, 0.8];

/// Weight of each priority among new tickets.
pub(super) const PRIORITY_W: [u32; Priority::ALL.len()] = [5, 20, 55, 20];
/// First-response target per priority (ms).
pub(super) const FRT_TARGET: [i64; Priority::ALL.len()] = [15 * MINUTE, HOUR, 4 * HOUR, 24 * HOUR];
/// Resolution target per priority (ms).
pub(super) const RES_TARGET: [i64; Priority::ALL.len()] =
    [4 * HOUR, 8 * HOUR, 24 * HOUR, 72 * HOUR];
/// Probability that a ticket of each priority gets escalated.
pub(super) const ESCALATE_P: [f64; Priority::ALL.len()] = [0.22, 0.14, 0.08, 0.05];

/// Weight of each category among tickets that arrive on their own.
pub(super) const CATEGORY_W: [u32; Category::ALL.len()] = [10, 14, 12, 28, 20, 8, 8];

/// A team of agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Team {
    Billing,
    Tech,
    Logistics,
    Returns,
    Vip,
    Escalations,
    /// Not a team: the pool of agents of tickets without one (`agent-general-…`).
    Unassigned,
}

impl Team {
    /// The name in `team` fields and agent ids.
    pub(super) fn name(self) -> &'static str {
        match self {
            Team::Billing => "billing",
            Team::Tech => "tech",
            Team::Logistics => "logistics",
            Team::Returns => "returns",
            Team::Vip => "vip",
            Team::Escalations => "escalations",
            Team::Unassigned => "general",
        }
    }
}

/// The front-line teams: calls without a ticket, orphan events and reassignments pick one.
pub(super) const FRONT_TEAMS: [Team; 4] =
    [Team::Billing, Team::Tech, Team::Logistics, Team::Returns];
/// Agents per team (`agent-<team>-01` … `-12`).
pub(super) const AGENTS_PER_TEAM: u8 = 12;

/// The candidate teams of a new ticket of each category, with their weights.
pub(super) fn teams_for(category: Category) -> (&'static [Team], &'static [u32]) {
    match category {
        Category::Warranty => (&[Team::Tech, Team::Returns], &[60, 40]),
        Category::Return => (&[Team::Returns, Team::Logistics], &[75, 25]),
        Category::Complaint => (&[Team::Billing, Team::Logistics, Team::Tech], &[45, 35, 20]),
        Category::Question => (&[Team::Billing, Team::Logistics, Team::Tech], &[50, 35, 15]),
        Category::TechSupport => (&[Team::Tech], &[100]),
        Category::Consultation => (&[Team::Billing, Team::Tech], &[60, 40]),
        Category::Other => (&[Team::Billing, Team::Logistics, Team::Tech], &[40, 30, 30]),
    }
}

/// Weights of CSAT scores 1–5 after a good, a mixed and a bad experience.
pub(super) const CSAT_W: [[u32; 5]; 3] =
    [[2, 3, 8, 30, 57], [10, 14, 22, 30, 24], [32, 28, 20, 13, 7]];
/// Weights of CES scores 1–7 after a good, a mixed and a bad experience.
pub(super) const CES_W: [[u32; 7]; 3] = [
    [1, 2, 4, 8, 20, 32, 33],
    [6, 9, 15, 20, 22, 16, 12],
    [22, 22, 20, 15, 10, 7, 4],
];
/// Weights of NPS scores 0–10 of a happy, a neutral and an unhappy customer.
pub(super) const NPS_W: [[u32; 11]; 3] = [
    [1, 1, 1, 1, 2, 3, 4, 10, 20, 27, 30],
    [2, 2, 3, 4, 5, 8, 10, 18, 20, 15, 13],
    [10, 8, 10, 10, 10, 12, 12, 10, 8, 5, 5],
];

/// UTC offsets (minutes) of the few producers that do not write `Z`.
pub(super) const OFFSETS_MIN: [i32; 8] = [120, -300, 60, 330, -180, 540, -420, -210];

/// `reason` texts of `order.returned`.
pub(super) const RETURN_REASONS: [&str; 6] = [
    "wrong size",
    "damaged in transit",
    "not as described",
    "changed mind",
    "defective",
    "arrived too late",
];
/// `reason` texts of `customer.churned`.
pub(super) const CHURN_REASONS: [&str; 6] = [
    "cancelled subscription",
    "closed account",
    "switched to competitor",
    "too expensive",
    "poor service",
    "moved abroad",
];
/// `product` names of `warranty.claimed`.
pub(super) const PRODUCTS: [&str; 8] = [
    "headphones-x2",
    "smartwatch-s5",
    "coffee-machine-cm300",
    "vacuum-robot-r7",
    "laptop-pro-14",
    "e-bike-city-3",
    "tv-oled-55",
    "router-ax6000",
];

// The background processes, each its own Poisson process (indexes into `PROC_RATE`).
/// New tickets.
pub(super) const PROC_ARRIVAL: usize = 0;
/// Calls and chats without a ticket.
pub(super) const PROC_HANDLED: usize = 1;
/// NPS answers.
pub(super) const PROC_NPS: usize = 2;
/// Orders.
pub(super) const PROC_ORDER: usize = 3;
/// Proactive outbound contacts.
pub(super) const PROC_CONTACT: usize = 4;
/// Churn without a visible service reason.
pub(super) const PROC_CHURN: usize = 5;
/// Returns of orders placed before the stream.
pub(super) const PROC_RETURN: usize = 6;
/// Warranty claims of orders placed before the stream.
pub(super) const PROC_WARRANTY: usize = 7;
/// Rates of the background processes, relative to `tickets_per_hour`.
pub(super) const PROC_RATE: [f64; 8] = [0.98, 0.08, 0.05, 0.25, 0.01, 0.005, 0.012, 0.008];
/// Amplitude of the daily cycle of every rate (the mean is kept).
pub(super) const DIURNAL_AMPLITUDE: f64 = 0.45;
/// Orders placed before the stream starts have numbers below this one.
pub(super) const FIRST_ORDER: u64 = 1_000_000;
