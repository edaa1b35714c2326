//! The HTTP endpoint: `GET /metrics` (text exposition), `/healthz` (liveness: the process
//! serves requests) and `/readyz` (readiness: 200 once [`Metrics::set_ready`]`(true)`, else
//! 503), with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{Metrics, CONTENT_TYPE};

/// The routes, for embedding in another server or for tests.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

async fn metrics_handler(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], m.encode())
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let ct = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if m.is_ready() {
        (StatusCode::OK, ct, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ct, "not ready\n")
    }
}

/// Serves /metrics, /healthz and /readyz on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for /metrics on {addr}: {e}"))?;
    serve_listener(listener, metrics, shutdown).await
}

/// Serves the routes on an already bound listener until `shutdown` resolves, then finishes
/// the requests in flight. Bind to port 0 and read `listener.local_addr()` to get a free port.
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("metrics endpoint failed: {e}"))
}
