//! One TCP connection: the HTTP request, the `/agent` upgrade and the worker
//! session (register phase, message loop, keepalive pings, close).
//!
//! The HTTP request is parsed here (with `test_server_support`, shared with
//! the WebRTC double) rather than by tungstenite's server handshake so the
//! fake can answer 404 for a plain (non-upgrade) request the way the OSS
//! server does; tungstenite would just drop the socket.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use livekit_protocol::{
    JobType, RegisterWorkerResponse, ServerInfo, ServerMessage, WorkerMessage, WorkerPong,
    WorkerStatus, server_message, worker_message,
};
use prost::Message as _;
use test_server_support::{Plus, TokenError, read_head, respond, token_from_request};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::Inner;
use crate::auth::{self, AuthError};
use crate::log::{Closer, Direction};
use crate::registry::{ConnEntry, Outgoing, State, WorkerEntry, WorkerKey, WorkerSnapshot};

/// Largest HTTP request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Time a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Write deadline for control pings (`pingTimeout` in `wsprotocol.go`).
const PING_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves one accepted TCP connection to the end.
pub(crate) async fn serve(inner: Arc<Inner>, mut stream: TcpStream, conn: u64) {
    let _ = stream.set_nodelay(true);
    // `+` in a query is a space, as Go's `url.ParseQuery` reads it.
    let head =
        tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, MAX_HEAD, Plus::Space)).await;
    let Ok(Ok(Some((req, tail)))) = head else {
        return;
    };

    let reject = |inner: &Inner, status: u16, reason: String| {
        inner.update(|s| {
            s.push_log(
                conn,
                None,
                Direction::Rejected {
                    status,
                    path: req.path.clone(),
                    reason,
                },
            )
        });
    };

    if let Some(status) = inner.update(|s| s.reject_all) {
        reject(&inner, status, "reject_all".into());
        respond(&mut stream, status, "Rejected", "rejected by test\n").await;
        return;
    }
    if let Some(method) = req.path.strip_prefix(crate::twirp::PREFIX) {
        let (auth, len) = (req.header("authorization"), req.header("content-length"));
        return crate::twirp::serve(&inner, stream, method, auth, len, tail).await;
    }
    if req.path != "/agent" {
        reject(&inner, 404, "unknown path".into());
        respond(&mut stream, 404, "Not Found", "404 page not found\n").await;
        return;
    }
    // The auth middleware runs first: a token that is present but bad is a
    // 401 whatever the request; a missing token only matters for an upgrade.
    let token = token_from_request(req.header("authorization"), req.param("access_token"))
        .map_err(AuthError::from);
    let claims = match token {
        Ok(jwt) => auth::verify_worker_token(&inner.config.api_key, &inner.config.api_secret, jwt),
        Err(e) => Err(e),
    };
    if let Err(e @ (AuthError::Invalid(_) | AuthError::Token(TokenError::NotBearer))) = &claims {
        reject(&inner, 401, e.to_string());
        respond(&mut stream, 401, "Unauthorized", &format!("{e}\n")).await;
        return;
    }
    if !req.is_upgrade() {
        reject(&inner, 404, "not a websocket upgrade".into());
        respond(&mut stream, 404, "Not Found", "404 page not found\n").await;
        return;
    }
    if let Err(e) = &claims {
        reject(&inner, 401, e.to_string());
        respond(&mut stream, 401, "Unauthorized", "permissions denied\n").await;
        return;
    }

    let key = req.header("sec-websocket-key").unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(resp.as_bytes()).await.is_err() {
        return;
    }
    let limit = inner.config.max_message_size;
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let ws = WebSocketStream::from_partially_read(stream, tail, Role::Server, Some(cfg)).await;
    let protocol = req
        .param("protocol")
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or(crate::AGENT_PROTOCOL);
    let info = ConnInfo {
        conn,
        protocol,
        worker_token: req.param("worker_token").map(str::to_string),
        user_agent: req.header("user-agent").map(str::to_string),
    };
    run_session(inner, ws, info).await;
}

struct ConnInfo {
    conn: u64,
    protocol: i32,
    worker_token: Option<String>,
    user_agent: Option<String>,
}

struct Session {
    inner: Arc<Inner>,
    conn: u64,
    protocol: i32,
    worker_id: Option<String>,
}

type CloseInfo = (Option<u16>, String, Closer);

async fn run_session(inner: Arc<Inner>, ws: WebSocketStream<TcpStream>, info: ConnInfo) {
    let conn = info.conn;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    inner.update(|s| {
        s.conns.insert(
            conn,
            ConnEntry {
                tx,
                worker_id: None,
            },
        );
        s.push_log(
            conn,
            None,
            Direction::Connected {
                protocol: info.protocol,
                worker_token: info.worker_token,
                user_agent: info.user_agent,
            },
        );
    });
    let mut shutdown = inner.shutdown.subscribe();
    let (mut sink, mut stream) = ws.split();
    let period = inner.config.ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let register_deadline = tokio::time::sleep(inner.config.register_timeout);
    tokio::pin!(register_deadline);
    let mut session = Session {
        inner: inner.clone(),
        conn,
        protocol: info.protocol,
        worker_id: None,
    };
    let mut use_json = false;
    let max_message = inner.config.max_message_size;
    let upgrade_frames = inner.read(|s| s.upgrade_frames.clone());
    if let Err(e) = send_control_frames(&mut sink, &upgrade_frames).await {
        tracing::debug!(error = %e, "sending the upgrade frames failed");
    }

    let (code, reason, by): CloseInfo = loop {
        tokio::select! {
            _ = &mut register_deadline, if session.worker_id.is_none() => {
                break (None, "register timeout".into(), Closer::Server);
            }
            _ = shutdown.changed() => break (None, "server shut down".into(), Closer::Server),
            out = rx.recv() => match out {
                Some(Outgoing::Message(msg)) => {
                    let frame = if use_json {
                        match serde_json::to_string(&msg) {
                            Ok(t) => Message::text(t),
                            Err(_) => Message::binary(msg.encode_to_vec()),
                        }
                    } else {
                        Message::binary(msg.encode_to_vec())
                    };
                    if let Err(e) = sink.send(frame).await {
                        break (None, format!("write failed: {e}"), Closer::Worker);
                    }
                }
                Some(Outgoing::Control(frame)) => {
                    if let Err(e) = send_control_frames(&mut sink, &[frame]).await {
                        break (None, format!("write failed: {e}"), Closer::Worker);
                    }
                }
                Some(Outgoing::Kill) | None => break (None, "killed".into(), Closer::Server),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(PING_WRITE_TIMEOUT, sink.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    _ => break (None, "ping write failed".into(), Closer::Worker),
                }
            }
            frame = stream.next() => {
                let decoded = match frame {
                    None => break (None, "connection ended".into(), Closer::Worker),
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        break close_too_big(&mut sink, e.to_string()).await;
                    }
                    // tungstenite refuses only what is over the limit; the
                    // server also refuses a frame of exactly the limit.
                    Some(Ok(Message::Binary(b))) if b.len() >= max_message => {
                        break close_too_big(&mut sink, format!("{} bytes", b.len())).await;
                    }
                    Some(Ok(Message::Text(t))) if t.len() >= max_message => {
                        break close_too_big(&mut sink, format!("{} bytes", t.len())).await;
                    }
                    Some(Err(e)) => break (None, format!("read error: {e}"), Closer::Worker),
                    Some(Ok(Message::Binary(b))) => {
                        use_json = false;
                        WorkerMessage::decode(b.as_ref()).map_err(|e| e.to_string())
                    }
                    Some(Ok(Message::Text(t))) => {
                        use_json = true;
                        serde_json::from_str::<WorkerMessage>(t.as_str()).map_err(|e| e.to_string())
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await;
                        let (code, reason) = frame
                            .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                            .unwrap_or((None, "close frame without code".into()));
                        break (code, reason, Closer::Worker);
                    }
                    Some(Ok(_)) => continue,
                };
                let msg = match decoded {
                    Ok(m) => m,
                    Err(e) => break (None, format!("undecodable message: {e}"), Closer::Server),
                };
                if let Err(reason) = session.handle(msg) {
                    break (None, reason, Closer::Server);
                }
            }
        }
    };
    // Dropping the halves closes the socket without a close frame unless one
    // was sent above (the OSS server's raw conn.Close()).
    drop(sink);
    drop(stream);
    let worker_id = session.worker_id.clone();
    inner.update(|s| {
        s.push_log(conn, worker_id, Direction::Closed { code, reason, by });
        s.connection_closed(conn);
    });
}

/// Closes a connection whose worker sent a frame of the size limit or
/// more, as gorilla's read limit does: close code 1009, then the socket
/// ends. Recorded as `Closed { code: Some(1009), by: Server }`.
async fn close_too_big<S>(sink: &mut S, what: String) -> CloseInfo
where
    S: futures::Sink<Message> + Unpin,
{
    let frame = Message::Close(Some(CloseFrame {
        code: CloseCode::Size,
        reason: "message too big".into(),
    }));
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
    (
        Some(1009),
        format!("message too big: {what}"),
        Closer::Server,
    )
}

/// Sends test-requested control frames, each within the control ping's
/// write deadline.
async fn send_control_frames<S>(sink: &mut S, frames: &[crate::ControlFrame]) -> Result<(), String>
where
    S: futures::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    for frame in frames {
        let message = match frame {
            crate::ControlFrame::Ping => Message::Ping(Default::default()),
            crate::ControlFrame::Pong => Message::Pong(Default::default()),
        };
        match tokio::time::timeout(PING_WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("write timed out".into()),
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// OSS `agent.ValidateDeployment`.
pub fn validate_deployment(d: &str) -> bool {
    d.len() <= 64 && !d.bytes().any(|b| b == b'_' || b <= 0x20 || b == 0x7f)
}

/// The server's answer to a worker's ping.
fn pong(timestamp: i64) -> ServerMessage {
    ServerMessage {
        message: Some(server_message::Message::Pong(WorkerPong {
            last_timestamp: timestamp,
            timestamp: now_ms(),
        })),
    }
}

/// What a message of the registered worker `worker_id` on connection `conn`
/// does to the server's state (its effect alone; the caller logs it).
/// Returns the message back when its handling needs more than the state
/// (a register, a simulated job).
fn apply(
    s: &mut State,
    conn: u64,
    worker_id: &str,
    message: worker_message::Message,
) -> Option<worker_message::Message> {
    use worker_message::Message as M;
    match message {
        M::Ping(p) => {
            s.send_on_conn(conn, pong(p.timestamp));
        }
        M::Availability(resp) => {
            let tx = s
                .workers
                .get_mut(worker_id)
                .and_then(|w| w.pending_offers.remove(&resp.job_id));
            match tx {
                Some(tx) => {
                    let _ = tx.send(resp);
                }
                None => tracing::info!(
                    worker_id,
                    job_id = resp.job_id,
                    "availability for unknown job ignored"
                ),
            }
        }
        M::UpdateWorker(u) => {
            if let Some(w) = s.workers.get_mut(worker_id) {
                // Stored as sent: an unknown value is neither
                // AVAILABLE nor FULL, so the worker is never picked.
                if let Some(status) = u.status {
                    w.snapshot.status = status;
                }
                w.snapshot.load = u.load;
                w.snapshot.reported_job_count = u.job_count;
                w.snapshot.status_updates += 1;
            }
        }
        M::UpdateJob(u) => s.update_job_status(worker_id, &u.job_id, u.status, &u.error),
        M::MigrateJob(m) => {
            if let Some(w) = s.workers.get_mut(worker_id) {
                w.snapshot.migrate_requests.push(m.job_ids);
            }
        }
        M::Register(_) | M::SimulateJob(_) => return Some(message),
    }
    None
}

impl Session {
    /// Handles one decoded message; `Err(reason)` closes the connection.
    ///
    /// A registered worker's message is logged and takes effect under one
    /// lock, so whoever sees it in the log sees its effect (a test that
    /// dispatches once it saw `WS_FULL` must find the worker full, as the
    /// server that already applied the update would).
    fn handle(&mut self, msg: WorkerMessage) -> Result<(), String> {
        let conn = self.conn;
        let logged = Direction::Inbound(msg.clone());
        use worker_message::Message as M;
        let Some(worker_id) = self.worker_id.clone() else {
            self.inner.update(|s| s.push_log(conn, None, logged));
            return match msg.message {
                Some(M::Register(reg)) => self.register(reg),
                Some(M::Ping(p)) => {
                    self.inner
                        .update(|s| s.send_on_conn(conn, pong(p.timestamp)));
                    Ok(())
                }
                other => Err(format!("unexpected message before register: {other:?}")),
            };
        };
        let id = Some(worker_id.clone());
        let unapplied = self.inner.update(|s| {
            s.push_log(conn, id, logged);
            msg.message.map(|m| apply(s, conn, &worker_id, m))
        });
        match unapplied {
            None => Err("worker message with no message".into()),
            // `WorkerRegisterer` is done after the first: a second register
            // is an unexpected message, and any handler error closes the socket.
            Some(Some(M::Register(_))) => Err("second register".into()),
            Some(Some(M::SimulateJob(sim))) => {
                crate::dispatch::simulate_job(&self.inner, &worker_id, sim);
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    fn register(&mut self, reg: livekit_protocol::RegisterWorkerRequest) -> Result<(), String> {
        let Ok(job_type) = JobType::try_from(reg.r#type) else {
            return Err(format!("unknown job type {}", reg.r#type));
        };
        if !validate_deployment(&reg.deployment) {
            return Err(format!("invalid deployment {:?}", reg.deployment));
        }
        let worker_id = crate::ids::guid("AW_");
        let cfg = &self.inner.config;
        let response = ServerMessage {
            message: Some(server_message::Message::Register(RegisterWorkerResponse {
                worker_id: worker_id.clone(),
                server_info: Some(ServerInfo {
                    edition: livekit_protocol::server_info::Edition::Standard as i32,
                    version: cfg.server_version.clone(),
                    protocol: cfg.server_protocol,
                    region: cfg.region.clone(),
                    node_id: cfg.node_id.clone(),
                    debug_info: String::new(),
                    agent_protocol: crate::AGENT_PROTOCOL,
                }),
                endpoint_settings: None,
            })),
        };
        let key = WorkerKey {
            agent_name: reg.agent_name.clone(),
            namespace: reg.namespace.clone().unwrap_or_default(),
            job_type: reg.r#type,
            deployment: reg.deployment.clone(),
        };
        let snapshot = WorkerSnapshot {
            id: worker_id.clone(),
            connection: self.conn,
            agent_name: reg.agent_name.clone(),
            namespace: reg.namespace.clone(),
            job_type,
            status: WorkerStatus::WsAvailable as i32,
            load: 0.0,
            reported_job_count: 0,
            job_count: 0,
            version: reg.version.clone(),
            permissions: reg
                .allowed_permissions
                .clone()
                .unwrap_or_else(auth::default_permissions),
            permissions_sent: reg.allowed_permissions.is_some(),
            deployment: reg.deployment.clone(),
            protocol: self.protocol,
            registration: reg,
            registered_at: std::time::Instant::now(),
            connected: true,
            status_updates: 0,
            migrate_requests: Vec::new(),
        };
        let conn = self.conn;
        self.inner.update(|s| {
            if let Some(c) = s.conns.get_mut(&conn) {
                c.worker_id = Some(worker_id.clone());
            }
            s.workers.insert(
                worker_id.clone(),
                WorkerEntry {
                    snapshot,
                    key,
                    running: Default::default(),
                    pending_offers: Default::default(),
                },
            );
            s.worker_order.push(worker_id.clone());
            s.send_on_conn(conn, response);
        });
        tracing::debug!(worker_id, "worker registered");
        self.worker_id = Some(worker_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deployment_rules() {
        assert!(super::validate_deployment(""));
        assert!(super::validate_deployment("prod-1"));
        assert!(!super::validate_deployment("a_b"));
        assert!(!super::validate_deployment("a b"));
        assert!(!super::validate_deployment(&"x".repeat(65)));
    }
}
