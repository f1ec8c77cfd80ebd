//! The worker's HTTP server: health, worker info and Prometheus metrics.
//!
//! - `GET /`: `200 OK` while the worker is registered or still trying to
//!   be; `503` once it gave up (as the Python worker, so an orchestrator
//!   restarts it).
//! - `GET /worker`: JSON with the fields of LiveKit's `WorkerInfo` that the
//!   official workers serve (`agent_name`, `worker_type`, `active_jobs`,
//!   `sdk_version`, `worker_load`, `protocol_version`), plus agent-host's
//!   own (`connection`, `draining`, `plugins`, and `jobs`: each running
//!   job with its room, plugin digest, CPU time so far and the host memory
//!   held for it).
//! - `GET /metrics`: Prometheus text format, with a histogram of the CPU
//!   time of the jobs that ended (`agent_host_job_cpu_seconds`).
//! - `POST /plugins/<name>` with a component as the body: hot-swaps the
//!   plugin of the worker whose agent name is `<name>` (`default` for
//!   automatic dispatch). Off unless an admin token is configured; refused
//!   (401) without `Authorization: Bearer <token>`. Bodies over 64 MiB are
//!   refused (413).
//!
//! With several workers in one host, `/worker` returns a JSON array with
//! one object per worker. Anything else is `404`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::ops::{ACCEPT_RETRY, MAX_UPLOAD};
use crate::worker::{ConnectionState, Metrics, SDK_VERSION, WorkerHandle};

/// What the server serves.
#[derive(Clone)]
pub struct OpsState {
    /// The workers of this host.
    pub workers: Vec<WorkerHandle>,
    /// Token for the admin API; `None` turns it off.
    pub admin_token: Option<String>,
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: OpsState) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "health server: accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(req, &state).await) }
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

async fn respond(req: Request<Incoming>, state: &OpsState) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix("/plugins/") {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
        }
        return swap(req, name.to_string(), state).await;
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match path.as_str() {
        "/" => {
            if state.workers.iter().all(WorkerHandle::healthy) {
                text(StatusCode::OK, "OK")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "failed to connect to livekit",
                )
            }
        }
        "/worker" => {
            let mut infos: Vec<_> = state.workers.iter().map(worker_json).collect();
            let body = if infos.len() == 1 {
                infos.remove(0)
            } else {
                serde_json::Value::Array(infos)
            };
            reply(StatusCode::OK, "application/json", body.to_string())
        }
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics_text(&state.workers),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Answers an upload it will not take, after reading its body (up to
/// [`MAX_UPLOAD`]): closing a connection with unread bytes makes the kernel
/// reset it, and the client would see "connection reset" instead of the
/// status.
async fn refuse(req: Request<Incoming>, status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    let _ = Limited::new(req.into_body(), MAX_UPLOAD).collect().await;
    text(status, why)
}

/// `POST /plugins/<name>`: authenticated hot swap.
async fn swap(req: Request<Incoming>, name: String, state: &OpsState) -> Response<Full<Bytes>> {
    let Some(token) = &state.admin_token else {
        return text(
            StatusCode::NOT_FOUND,
            "the admin API is off (no admin token configured)\n",
        );
    };
    let presented = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        return refuse(
            req,
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token\n",
        )
        .await;
    }
    let Some(worker) = state
        .workers
        .iter()
        .find(|w| w.agent_name() == name || (w.agent_name().is_empty() && name == "default"))
    else {
        return refuse(
            req,
            StatusCode::NOT_FOUND,
            "no worker with that agent name\n",
        )
        .await;
    };
    let body = match Limited::new(req.into_body(), MAX_UPLOAD).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "component too large (64 MiB at most)\n",
            );
        }
    };
    match worker.swap(body.to_vec()).await {
        Ok(swap) => reply(
            StatusCode::OK,
            "application/json",
            serde_json::json!({
                "old": swap.old.digest,
                "new": swap.new.digest,
                "guest_version": swap.new.guest,
                "reused": swap.reused,
            })
            .to_string(),
        ),
        Err(err) => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("swap refused: {err}\n"),
        ),
    }
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    reply(status, "text/plain", body.to_string())
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

fn worker_json(worker: &WorkerHandle) -> serde_json::Value {
    let status = worker.status();
    let plugins: Vec<_> = worker
        .versions()
        .into_iter()
        .map(|(v, jobs)| {
            serde_json::json!({
                "digest": v.version.digest,
                "guest_version": v.version.guest,
                "wit_version": v.version.sdk,
                "current": v.current,
                "active_jobs": jobs,
            })
        })
        .collect();
    serde_json::json!({
        "agent_name": worker.agent_name(),
        "worker_type": worker.job_type().as_str_name(),
        "active_jobs": status.active_jobs,
        "sdk_version": SDK_VERSION,
        "worker_load": status.load,
        "protocol_version": 1,
        "connection": status.connection,
        "draining": status.draining,
        "reserved_jobs": status.reserved_jobs,
        "plugins": plugins,
        "jobs": worker.jobs(),
    })
}

/// `agent_host_job_cpu_seconds`: one histogram per worker.
fn cpu_histogram(out: &mut String, workers: &[WorkerHandle]) {
    let name = "agent_host_job_cpu_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} CPU time each ended job's guest used, in seconds."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for worker in workers {
        let agent = worker.agent_name().replace(['\\', '"', '\n'], "_");
        let (buckets, count, sum) = worker.metrics().job_cpu.snapshot();
        for (bound, n) in buckets {
            let _ = writeln!(
                out,
                "{name}_bucket{{agent_name=\"{agent}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{agent_name=\"{agent}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "{name}_sum{{agent_name=\"{agent}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{agent_name=\"{agent}\"}} {count}");
    }
}

fn metrics_text(workers: &[WorkerHandle]) -> String {
    let mut out = String::new();
    type Read = fn(&WorkerHandle) -> f64;
    let series: [(&str, &str, &str, Read); 16] = [
        ("active_jobs", "gauge", "Jobs running now.", |w| {
            w.status().active_jobs as f64
        }),
        (
            "reserved_jobs",
            "gauge",
            "Offers accepted or being decided, not yet running.",
            |w| w.status().reserved_jobs as f64,
        ),
        (
            "worker_load",
            "gauge",
            "Load reported to the server (0..1).",
            |w| f64::from(w.status().load),
        ),
        (
            "connected",
            "gauge",
            "1 while registered with the server.",
            |w| {
                f64::from(u8::from(matches!(
                    w.status().connection,
                    ConnectionState::Registered { .. }
                )))
            },
        ),
        ("draining", "gauge", "1 while draining.", |w| {
            f64::from(u8::from(w.status().draining))
        }),
        (
            "plugin_versions",
            "gauge",
            "Plugin versions in memory (current and draining).",
            |w| w.versions().len() as f64,
        ),
        ("jobs_started_total", "counter", "Jobs started.", |w| {
            Metrics::get(&w.metrics().jobs_started) as f64
        }),
        (
            "jobs_succeeded_total",
            "counter",
            "Jobs that succeeded.",
            |w| Metrics::get(&w.metrics().jobs_succeeded) as f64,
        ),
        ("jobs_failed_total", "counter", "Jobs that failed.", |w| {
            Metrics::get(&w.metrics().jobs_failed) as f64
        }),
        (
            "jobs_terminated_total",
            "counter",
            "Jobs that were terminated.",
            |w| Metrics::get(&w.metrics().jobs_terminated) as f64,
        ),
        (
            "offers_accepted_total",
            "counter",
            "Offers accepted.",
            |w| Metrics::get(&w.metrics().offers_accepted) as f64,
        ),
        (
            "offers_declined_total",
            "counter",
            "Offers declined.",
            |w| Metrics::get(&w.metrics().offers_declined) as f64,
        ),
        (
            "reconnects_total",
            "counter",
            "Connections re-established after a loss.",
            |w| Metrics::get(&w.metrics().reconnects) as f64,
        ),
        ("plugin_swaps_total", "counter", "Plugin swaps done.", |w| {
            Metrics::get(&w.metrics().swaps) as f64
        }),
        (
            "plugin_swaps_refused_total",
            "counter",
            "Plugin swaps refused.",
            |w| Metrics::get(&w.metrics().swaps_refused) as f64,
        ),
        ("up", "gauge", "1 while the worker is healthy.", |w| {
            f64::from(u8::from(w.healthy()))
        }),
    ];
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP agent_host_{name} {help}");
        let _ = writeln!(out, "# TYPE agent_host_{name} {kind}");
        for worker in workers {
            let _ = writeln!(
                out,
                "agent_host_{name}{{agent_name=\"{}\"}} {}",
                worker.agent_name().replace(['\\', '"', '\n'], "_"),
                read(worker)
            );
        }
    }
    cpu_histogram(&mut out, workers);
    out
}
