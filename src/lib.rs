//! cxstream — a streaming KPI engine for after-sales and customer-service operations.
//!
//! The data path, left to right: a source (Kafka or a file) hands raw bytes and a source
//! position to [`event::decode`]; the [`engine::Engine`] turns events into measurements
//! ([`kpi`]), event-time [`window`] aggregates and alert records; sinks write [`output`]
//! records and the metrics layer exports Prometheus metrics.
//!
//! Replaying events through the engine, as `cxstream replay` does:
//!
//! ```
//! use std::sync::Arc;
//! use cxstream::{config::Config, engine::Engine, replay::replay_to_string};
//!
//! let mut engine = Engine::new(Arc::new(Config::default()));
//! let input = br#"{"id":"e1","type":"survey.nps","time":"2026-11-22T10:00:05Z","customer":"c1","score":10}
//! {"id":"e2","type":"survey.nps","time":"2026-11-22T10:00:09Z","customer":"c2","score":3}
//! "#;
//! let records = replay_to_string(&mut engine, input);
//! let first: serde_json::Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
//! assert_eq!(first["type"], "recovery.needed"); // the detractor opens a service-recovery case
//! assert!(records.contains(r#""nps":{"responses":2,"promoters":1,"passives":0,"detractors":1,"score":0.0}"#));
//! ```

#![warn(missing_docs)]

pub mod alloc;
pub mod config;
pub mod engine;
pub mod event;
pub mod generate;
pub mod kpi;
pub mod logs;
pub mod metrics;
pub mod output;
pub mod replay;
pub mod runtime;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod state;
pub mod ts;
pub mod window;
