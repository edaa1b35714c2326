//! Prometheus metrics of SPEC §6 and the /metrics, /healthz, /readyz endpoint.
//!
//! SKELETON: the API below is fixed (the Kafka runtime and replay call it); the bodies are
//! being filled in.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::engine::{Engine, Observer};
use crate::output::Record;

/// All cxstream metrics in one registry.
pub struct Metrics {}

impl Metrics {
    pub fn new(_cfg: &Config) -> Arc<Metrics> {
        Arc::new(Metrics {})
    }

    /// The engine hook: every measurement and current-state gauge change.
    pub fn observer(self: &Arc<Self>) -> Box<dyn Observer> {
        struct Nop;
        impl Observer for Nop {}
        Box::new(Nop)
    }

    /// Copies pipeline counters and state gauges from the engine (events, invalid, duplicates,
    /// late, orphans, watermark, state sizes). Call after each batch.
    pub fn sync_engine(&self, _engine: &Engine) {}

    /// Counts an output record by type and updates the last-closed-window gauges.
    pub fn record(&self, _r: &Record) {}

    pub fn set_consumer_lag(&self, _topic: &str, _partition: i32, _lag: i64) {}

    /// Time spent processing one batch of `events` inputs.
    pub fn observe_processing(&self, _seconds: f64) {}

    /// Ready once partitions are assigned and the first poll returned.
    pub fn set_ready(&self, _ready: bool) {}

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        String::new()
    }
}

/// Serves /metrics, /healthz and /readyz on `addr` until `shutdown` resolves.
pub async fn serve(
    _addr: SocketAddr,
    _metrics: Arc<Metrics>,
    _shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Ok(())
}
