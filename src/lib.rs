//! cxstream — a streaming KPI engine for after-sales and customer-service operations.
//!
//! The data path, left to right: a source (Kafka or a file) hands raw bytes and a source
//! position to [`event::decode`]; the [`engine::Engine`] turns events into measurements
//! ([`kpi`]), event-time [`window`] aggregates and alert records; sinks write [`output`]
//! records and the metrics layer exports Prometheus metrics.

pub mod config;
pub mod engine;
pub mod event;
pub mod generate;
pub mod kafka;
pub mod kpi;
pub mod metrics;
pub mod output;
pub mod replay;
pub mod ts;
pub mod window;
