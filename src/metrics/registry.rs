//! [`Metrics`]: the Prometheus registry holding every family of [`DEFS`], built from that
//! table, plus the label caps and the readiness flag.
//!
//! The families are kept by [`Id`] in [`Families`]; the typed getters say which kind the
//! caller expects (a mismatch is a bug in this module, caught by any test that builds
//! [`Metrics`] and feeds it). What updates them lives elsewhere: the engine observer in
//! [`observer`](super::observer), the runtime's calls in [`runtime`](super::runtime).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::defs::{Def, Id, Kind, DEFS, NO_LABELS};
use super::labels::Caps;
use super::runtime::EngineSync;
use super::{StateGauge, WindowSummary};
use crate::config::Config;

/// One registered family, as its [`Kind`] is built.
enum Family {
    Counter(IntCounterVec),
    FloatCounter(CounterVec),
    Gauge(IntGaugeVec),
    FloatGauge(GaugeVec),
    Histogram(HistogramVec),
    State(StateGauge),
    Window(WindowSummary),
}

/// Every family of [`DEFS`], registered in one registry, indexed by [`Id`].
pub(crate) struct Families(Vec<Family>);

/// The typed getters of [`Families`], one per [`Family`] variant.
macro_rules! getters {
    ($($(#[$doc:meta])* $get:ident -> $variant:ident($ty:ty);)*) => {$(
        $(#[$doc])*
        pub(crate) fn $get(&self, id: Id) -> &$ty {
            match &self.0[id as usize] {
                Family::$variant(f) => f,
                _ => wrong_kind(id, stringify!($variant)),
            }
        }
    )*};
}

impl Families {
    /// Builds and registers every row of [`DEFS`] (with their starting series) in `r`.
    pub(crate) fn register(r: &Registry, cfg: &Config) -> Families {
        Families(DEFS.iter().map(|d| build(r, d, cfg)).collect())
    }

    getters! {
        /// An integer counter family.
        counter -> Counter(IntCounterVec);
        /// A float counter family.
        float_counter -> FloatCounter(CounterVec);
        /// An integer gauge family.
        gauge -> Gauge(IntGaugeVec);
        /// A float gauge family.
        float_gauge -> FloatGauge(GaugeVec);
        /// A histogram family.
        histogram -> Histogram(HistogramVec);
        /// A current-state gauge family.
        state -> State(StateGauge);
        /// A last-closed-window summary family.
        window -> Window(WindowSummary);
    }
}

#[cold]
fn wrong_kind(id: Id, expected: &str) -> ! {
    let d = &DEFS[id as usize];
    panic!("{} is a {:?}, not a {expected}", d.name, d.kind)
}

/// Registers `c` and returns it; the definitions are constants, so a failure is a bug.
fn registered<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric definitions are valid and unique");
    c
}

/// A vector family of `d`, registered, with its starting series (the single series of a
/// family without labels).
fn vector<T: MetricVecBuilder + 'static>(
    r: &Registry,
    d: &Def,
    v: prometheus::Result<MetricVec<T>>,
) -> MetricVec<T> {
    let v = registered(r, v.expect("metric definitions are valid"));
    if d.labels.is_empty() {
        v.with_label_values(NO_LABELS);
    }
    for values in d.start {
        v.with_label_values(values);
    }
    v
}

fn build(r: &Registry, d: &Def, cfg: &Config) -> Family {
    let opts = || Opts::new(d.name, d.help);
    match d.kind {
        Kind::Counter => Family::Counter(vector(r, d, IntCounterVec::new(opts(), d.labels))),
        Kind::FloatCounter => Family::FloatCounter(vector(r, d, CounterVec::new(opts(), d.labels))),
        Kind::Gauge => Family::Gauge(vector(r, d, IntGaugeVec::new(opts(), d.labels))),
        Kind::FloatGauge => Family::FloatGauge(vector(r, d, GaugeVec::new(opts(), d.labels))),
        Kind::Histogram(bounds) => {
            let opts = HistogramOpts::new(d.name, d.help).buckets(bounds.seconds(cfg));
            Family::Histogram(vector(r, d, HistogramVec::new(opts, d.labels)))
        }
        Kind::StateGauge => Family::State(registered(r, StateGauge::new(d.name, d.help, d.labels))),
        Kind::WindowSummary => Family::Window(registered(
            r,
            WindowSummary::with_labels(d.name, d.help, d.labels).expect("valid summary"),
        )),
    }
}

/// All cxstream metrics (SPEC §6) in one registry.
pub struct Metrics {
    registry: Registry,
    pub(super) families: Families,
    pub(super) caps: Caps,
    /// The engine counters' values at the last [`Metrics::sync_engine`].
    pub(super) engine: Mutex<EngineSync>,
    ready: AtomicBool,
}

impl Metrics {
    /// Registers every metric; label caps and histogram bounds come from `cfg`.
    pub fn new(cfg: &Config) -> Arc<Metrics> {
        let registry = Registry::new();
        let families = Families::register(&registry, cfg);
        let caps = Caps::new(cfg.metrics.label_limit, families.counter(Id::LabelOverflow));
        let engine = Mutex::new(EngineSync::new(&families));
        Arc::new(Metrics {
            registry,
            families,
            caps,
            engine,
            ready: AtomicBool::new(false),
        })
    }

    /// Ready once partitions are assigned and the first poll returned.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether [`Metrics::set_ready`]`(true)` was called last (what /readyz answers).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The per-label caps (tests, diagnostics).
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The registry, for callers that add their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&families, &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.is_ready())
            .field("label_overflow", &self.caps.overflow_total())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::OTHER;

    #[test]
    fn every_definition_is_built_as_its_kind_under_its_name() {
        let m = Metrics::new(&Config::default());
        let f = &m.families;
        for d in DEFS {
            let descs = match d.kind {
                Kind::Counter => f.counter(d.id).desc(),
                Kind::FloatCounter => f.float_counter(d.id).desc(),
                Kind::Gauge => f.gauge(d.id).desc(),
                Kind::FloatGauge => f.float_gauge(d.id).desc(),
                Kind::Histogram(_) => f.histogram(d.id).desc(),
                Kind::StateGauge => f.state(d.id).desc(),
                Kind::WindowSummary => f.window(d.id).desc(),
            };
            assert_eq!(descs[0].fq_name, d.name);
            assert_eq!(descs[0].variable_labels, d.labels);
            assert!(d.name.starts_with("cxstream_"), "{}", d.name);
        }
    }

    #[test]
    #[should_panic(expected = "cxstream_orders_total is a Counter, not a Histogram")]
    fn a_getter_of_the_wrong_kind_names_the_family() {
        Metrics::new(&Config::default())
            .families
            .histogram(Id::Orders);
    }

    #[test]
    fn label_cap_folds_past_the_limit() {
        let m = Metrics::new(&Config {
            metrics: crate::config::MetricsConfig {
                label_limit: 2,
                ..Default::default()
            },
            ..Default::default()
        });
        let c = &m.caps().team;
        assert_eq!(c.resolve("a"), "a");
        assert_eq!(c.resolve("b"), "b");
        assert_eq!(c.resolve("c"), OTHER);
        assert_eq!(c.resolve("a"), "a");
        assert_eq!(c.len(), 2);
        assert_eq!(m.caps.overflow_total(), 1);
    }
}
