//! Prometheus metrics of SPEC §6 and the /metrics, /healthz, /readyz endpoint.
//!
//! Where the numbers come from:
//! - **Cumulative KPI counters and histograms** are fed by the engine's
//!   [`Observer`](crate::engine::Observer) hook ([`Metrics::observer`]) with every
//!   measurement — late or not — so they count every valid event, while `kpi.window` records
//!   drop late contributions to closed windows.
//! - **Current-state gauges** (`open_tickets`, `sla_breached_open_tickets`) are kept from the
//!   engine's delta callbacks; a series whose value returns to 0 disappears from the exposition
//!   (so a team that no longer has open tickets leaves no stale series behind).
//!   `customers_at_risk`, `recovery_open_cases`, the pipeline counters and the state sizes are
//!   copied from the engine by [`Metrics::sync_engine`], called after each batch.
//! - **Last-closed-window metrics** come from the `{}` group's non-partial `kpi.window` records
//!   passed to [`Metrics::record`]. The window percentiles are summaries (see [`window`]).
//!
//! Label values that come from input data (`team`, `channel`, `priority`, `score`) are capped
//! per label name (`metrics.label_limit`, default 200, see [`labels`]); a measurement without
//! a team (a survey naming no known ticket) carries `team="none"`.
//!
//! The files, one idea each:
//! - `defs.rs`: every metric family as data (name, help, kind, labels, buckets);
//! - `registry.rs`: [`Metrics`], the registry built from that table;
//! - `observer.rs`: the engine hook, the hot path (one call per measurement), which caches the
//!   resolved series per dimension combination, so an update is a hash-map lookup in memory it
//!   owns plus an atomic add;
//! - `runtime.rs`: what the runtime pushes (engine sync, output records, lag, batch time);
//! - [`collector`]: the map-backed collector behind [`StateGauge`] (`state.rs`) and
//!   [`WindowSummary`] ([`window`]);
//! - [`labels`], [`buckets`]: label caps and histogram bounds;
//! - [`http`]: the endpoint.
#![warn(missing_docs)]

pub mod buckets;
pub mod collector;
mod defs;
pub mod http;
pub mod labels;
mod observer;
mod registry;
mod runtime;
mod state;
pub mod window;

pub use http::{router, serve, serve_listener};
pub use labels::{Caps, LabelCap, OTHER};
pub use registry::Metrics;
pub use state::StateGauge;
pub use window::WindowSummary;

/// `team` label value of a measurement that has no team (a survey naming no known ticket).
pub const NO_TEAM: &str = "none";

/// The `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
