//! The worker's HTTP server: health, worker info and Prometheus metrics.
//!
//! - `GET /`: `200 OK` while the worker is registered or still trying to
//!   be; `503` once it gave up (as the Python worker, so an orchestrator
//!   restarts it).
//! - `GET /worker`: JSON with the fields of LiveKit's `WorkerInfo` that the
//!   official workers serve (`agent_name`, `worker_type`, `active_jobs`,
//!   `sdk_version`, `worker_load`, `protocol_version`), plus agent-host's
//!   own (`connection`, `draining`, `plugin`).
//! - `GET /metrics`: Prometheus text format.
//!
//! Anything else is `404`. The server only reads; it cannot change the worker.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::PluginVersion;
use crate::worker::{ConnectionState, Metrics, SDK_VERSION, WorkerHandle};

/// What the server reports about one worker.
#[derive(Clone)]
pub struct OpsState {
    /// The worker.
    pub worker: WorkerHandle,
    /// The plugin it runs.
    pub plugin: PluginVersion,
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: OpsState) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "health server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&req, &state)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the health server's address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn respond(req: &Request<Incoming>, state: &OpsState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
    }
    match req.uri().path() {
        "/" => {
            if state.worker.healthy() {
                reply(StatusCode::OK, "text/plain", "OK".into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "failed to connect to livekit".into(),
                )
            }
        }
        "/worker" => reply(StatusCode::OK, "application/json", worker_json(state)),
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics_text(state),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn worker_json(state: &OpsState) -> String {
    let status = state.worker.status();
    serde_json::json!({
        "agent_name": state.worker.agent_name(),
        "worker_type": state.worker.job_type().as_str_name(),
        "active_jobs": status.active_jobs,
        "sdk_version": SDK_VERSION,
        "worker_load": status.load,
        "protocol_version": 1,
        "connection": status.connection,
        "draining": status.draining,
        "reserved_jobs": status.reserved_jobs,
        "plugin": {
            "digest": state.plugin.digest,
            "guest_version": state.plugin.guest,
            "wit_version": state.plugin.sdk,
        },
    })
    .to_string()
}

fn metrics_text(state: &OpsState) -> String {
    let status = state.worker.status();
    let m = state.worker.metrics();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP agent_host_{name} {help}");
        let _ = writeln!(out, "# TYPE agent_host_{name} {kind}");
        let _ = writeln!(out, "agent_host_{name} {value}");
    };
    metric(
        "active_jobs",
        "gauge",
        "Jobs running now.",
        status.active_jobs as f64,
    );
    metric(
        "reserved_jobs",
        "gauge",
        "Offers accepted or being decided, not yet running.",
        status.reserved_jobs as f64,
    );
    metric(
        "worker_load",
        "gauge",
        "Load reported to the server (0..1).",
        f64::from(status.load),
    );
    metric(
        "connected",
        "gauge",
        "1 while registered with the server.",
        f64::from(u8::from(matches!(
            status.connection,
            ConnectionState::Registered { .. }
        ))),
    );
    metric(
        "draining",
        "gauge",
        "1 while draining.",
        f64::from(u8::from(status.draining)),
    );
    let counters = [
        ("jobs_started_total", "Jobs started.", &m.jobs_started),
        (
            "jobs_succeeded_total",
            "Jobs that succeeded.",
            &m.jobs_succeeded,
        ),
        ("jobs_failed_total", "Jobs that failed.", &m.jobs_failed),
        (
            "jobs_terminated_total",
            "Jobs that were terminated.",
            &m.jobs_terminated,
        ),
        (
            "offers_accepted_total",
            "Offers accepted.",
            &m.offers_accepted,
        ),
        (
            "offers_declined_total",
            "Offers declined.",
            &m.offers_declined,
        ),
        (
            "reconnects_total",
            "Connections re-established after a loss.",
            &m.reconnects,
        ),
    ];
    for (name, help, counter) in counters {
        metric(name, "counter", help, Metrics::get(counter) as f64);
    }
    out
}
