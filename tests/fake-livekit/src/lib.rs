//! A stand-in for the LiveKit server's **agent service** (the `/agent`
//! WebSocket that agent workers register with), for tests and benchmarks.
//!
//! It speaks the worker protocol of the open-source server (livekit 1.13,
//! protocol 1.52 types from `livekit-protocol` 0.8.2) and records everything
//! it sees, so tests can drive dispatches and assert what a worker sent.
//!
//! # Behaviour (OSS server, see `shared/reference/livekit-worker-protocol.md` §9)
//! * Listens on `127.0.0.1` only. HTTP `GET /agent` with a WebSocket upgrade;
//!   `POST /twirp/livekit.RoomService/…` → the four calls of [`twirp`];
//!   any other path → 404, a non-upgrade request → 404. The worker JWT comes
//!   from `Authorization: Bearer` or the `access_token` query parameter and
//!   must be HS256 with the API secret, `iss` = API key, with `exp` (60 s
//!   leeway) and `video.agent = true`, else 401 before the upgrade. The
//!   `protocol` query parameter is recorded (default 1).
//! * Binary protobuf frames (`WorkerMessage` in, `ServerMessage` out); a text
//!   frame is parsed as protojson and switches the replies to JSON text until
//!   the next binary frame, like `wsprotocol.go`. A message of
//!   [`Config::max_message_size`] (2 MiB) or more closes the socket with
//!   1009, recorded as [`Direction::Closed`] with that code (see
//!   [`FakeLiveKit::size_limit_closes`]).
//! * Before registration only `register` and `ping` are accepted; anything
//!   else, an unknown job type or an invalid deployment closes the socket
//!   (no close frame, like Go's `conn.Close()`). No register within
//!   [`Config::register_timeout`] (10 s) closes it too. After registration
//!   there is no read deadline; a second `register` or a `WorkerMessage`
//!   with no message closes the socket (any handler error does on OSS).
//! * `register` → `RegisterWorkerResponse{worker_id: "AW_…", server_info{
//!   edition: Standard, version, protocol: 17, agent_protocol: 1, node_id,
//!   region}}`. `ping` → `pong{last_timestamp, timestamp: now_ms}`. WebSocket
//!   control pings every [`Config::ping_interval`] (10 s); pongs are not
//!   checked. Tests can send control frames at any moment, also right after
//!   the upgrade, as proxies do ([`FakeLiveKit::send_control`],
//!   [`FakeLiveKit::set_upgrade_frames`]).
//! * `update_worker`: status replaced only when present (stored as sent: an
//!   unknown value makes the worker unpickable), load always overwritten.
//!   `update_job` accepted only for jobs the sender runs; SUCCESS/FAILED end
//!   the job; every other status is recorded as dropped
//!   ([`JobRecord::dropped_worker_statuses`]). `migrate_job` is recorded and otherwise
//!   ignored. `simulate_job` offers a new job to the same worker.
//! * Dispatch ([`FakeLiveKit::dispatch`]): see [`dispatch`]
//!   module docs. Termination ([`FakeLiveKit::terminate_job`]) sends
//!   `JobTermination` and records the end immediately. A worker disconnect
//!   forgets its jobs (no re-dispatch).
//! * The agent leaving its room ([`FakeLiveKit::agent_left`], which a test
//!   calls when its room double sees the agent participant go): while the
//!   job is live, the server's rule applies (`room.go` `RemoveParticipant`
//!   → `TerminateJob(AGENT_LEFT_ROOM)`): `JobTermination`, the job recorded
//!   FAILED "agent worker left the room", later statuses dropped. On OSS a
//!   room closing disconnects its participants the same way.
//!
//! # Deliberately not implemented
//! Rooms, WebRTC, participants and the Twirp APIs (`CreateDispatch` etc.):
//! a test that has rooms reports departures through
//! [`FakeLiveKit::agent_left`]; multi-node psrpc routing (one node; the node-level
//! `target_load` gate is applied to this node's workers); the WebTransport
//! data plane, `go_away`, `draining`/`seq` (protocol 1.52 additions);
//! `worker_token` checks (recorded only); permessage-deflate.

#![warn(missing_docs)]
// `namespace` is deprecated in the protocol but still part of the OSS
// routing key, so the fake keeps handling it.
#![allow(deprecated)]

pub mod auth;
mod connection;
pub mod dispatch;
pub mod flow;
mod ids;
mod inspect;
pub mod log;
pub mod python;
pub mod registry;
pub mod twirp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_protocol::JobStatus;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use connection::validate_deployment;
pub use dispatch::{DispatchRequest, TerminateReason};
pub use livekit_protocol;
pub use log::{Closer, Direction, LoggedMessage};
pub use registry::{
    DispatchOutcome, JobId, JobRecord, OfferAnswer, OfferRecord, StatusChange, StatusSource,
    WorkerSnapshot,
};

use registry::{Outgoing, State};

/// `agent.CurrentProtocol` of the OSS server.
pub const AGENT_PROTOCOL: i32 = 1;

/// A WebSocket control frame the test makes the server send (as proxies and
/// load balancers in front of a real server do, at any moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFrame {
    /// A ping (the worker must answer it with a pong).
    Ping,
    /// An unsolicited pong (RFC 6455 allows it; it needs no answer).
    Pong,
}

/// Errors from the test API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding the listener failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A wait ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        after: Duration,
    },
    /// No such job.
    #[error("unknown job {0}")]
    UnknownJob(String),
    /// The job is not running on a connected worker ("no worker for jobID").
    #[error("no worker for job {0}")]
    JobNotRunning(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Server settings. `Default` gives the OSS values.
#[derive(Debug, Clone)]
pub struct Config {
    /// API key (`devkey`).
    pub api_key: String,
    /// API secret (`secret`).
    pub api_secret: String,
    /// TCP port on 127.0.0.1; 0 (default) picks a free one.
    pub port: u16,
    /// Time allowed between upgrade and `register` (10 s).
    pub register_timeout: Duration,
    /// WebSocket control ping period (10 s).
    pub ping_interval: Duration,
    /// Total time a dispatch has to get an answer, from its start across all
    /// offers (2.8 s: OSS dispatch is bounded by psrpc's default deadline of
    /// 3 s, of which choosing a node takes at least 200 ms).
    pub offer_timeout: Duration,
    /// Cap on one offer's wait (`AssignJobTimeout`, 10 s).
    pub assign_job_timeout: Duration,
    /// Size from which a message closes the connection with 1009
    /// (`agent_signal_message_size_limit`, 2 MiB).
    pub max_message_size: usize,
    /// Node gate: dispatch fails with "no servers available" unless the sum
    /// of `max(0, target_load - load)` over candidate workers is > 0.
    /// `Some(0.7)` like OSS; `None` disables the gate.
    pub target_load: Option<f32>,
    /// `ServerInfo.version`.
    pub server_version: String,
    /// `ServerInfo.protocol` (17).
    pub server_protocol: i32,
    /// `ServerInfo.node_id`.
    pub node_id: String,
    /// `ServerInfo.region`.
    pub region: String,
    /// `Job.enable_recording` of every job (the server's
    /// `agents.enable_user_data_recording`, off by default).
    pub enable_recording: bool,
    /// `Job.enable_redaction` of every job (the server's
    /// `agents.enable_user_data_redaction`, off by default).
    pub enable_redaction: bool,
    /// `JobAssignment.url`: where jobs find their room (e.g. a WebRTC
    /// double's `ws://…`). `None` (default) leaves it unset, so workers use
    /// the server URL, as with the OSS server.
    pub room_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_key: "devkey".into(),
            api_secret: "secret".into(),
            port: 0,
            register_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            offer_timeout: Duration::from_millis(2800),
            assign_job_timeout: Duration::from_secs(10),
            max_message_size: 2 << 20,
            target_load: Some(0.7),
            server_version: "1.13.5".into(),
            server_protocol: 17,
            node_id: "ND_fakelivekit".into(),
            region: "local".into(),
            enable_recording: false,
            enable_redaction: false,
            room_url: None,
        }
    }
}

pub(crate) struct Inner {
    pub config: Config,
    pub addr: SocketAddr,
    pub state: Mutex<State>,
    pub changed: Notify,
    pub shutdown: watch::Sender<bool>,
    next_conn: AtomicU64,
}

impl Inner {
    /// Runs `f` on the state and wakes every waiter.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s)
        };
        self.changed.notify_waiters();
        r
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&s)
    }
}

/// Stops the server when the last [`FakeLiveKit`] handle is dropped.
struct ShutdownGuard(Arc<Inner>);

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.0.update(|s| s.shut_down = true);
        let _ = self.0.shutdown.send(true);
    }
}

/// Handle to a running fake server. Cheap to clone; the server stops (all
/// sockets dropped) when the last clone is dropped or [`Self::shutdown`] is
/// called.
#[derive(Clone)]
pub struct FakeLiveKit {
    inner: Arc<Inner>,
    _guard: Arc<ShutdownGuard>,
}

impl std::fmt::Debug for FakeLiveKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLiveKit")
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl FakeLiveKit {
    /// Binds `127.0.0.1:{config.port}` and starts accepting connections.
    pub async fn start(config: Config) -> Result<FakeLiveKit> {
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            addr,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            shutdown,
            next_conn: AtomicU64::new(1),
        });
        let accept_inner = inner.clone();
        let mut stop = inner.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let conn = accept_inner.next_conn.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(connection::serve(accept_inner.clone(), stream, conn));
                    }
                }
            }
        });
        tracing::info!(%addr, "fake LiveKit agent service listening");
        Ok(FakeLiveKit {
            _guard: Arc::new(ShutdownGuard(inner.clone())),
            inner,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Listening address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `ws://127.0.0.1:PORT` (what `LIVEKIT_URL` should be; workers append
    /// `/agent`).
    pub fn url(&self) -> String {
        format!("ws://{}", self.inner.addr)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Creates a job and starts offering it in the background; returns at
    /// once. The job's fate is in [`Self::job`]`(..).outcome`.
    pub fn dispatch(&self, req: DispatchRequest) -> JobId {
        dispatch::start(&self.inner, req, None, ids::guid("AD_"))
    }

    /// Offers a job to one worker only, whatever status it reports, with no
    /// node gate and no retry (the path OSS uses for `SimulateJobRequest`).
    /// Use it to test a worker's own refusal, e.g. a draining worker's
    /// decline, which normal dispatch never reaches because it skips
    /// WS_FULL workers.
    pub fn dispatch_to(&self, worker_id: &str, req: DispatchRequest) -> JobId {
        dispatch::start(
            &self.inner,
            req,
            Some(worker_id.to_string()),
            ids::guid("AD_"),
        )
    }

    /// [`Self::dispatch`], then waits until the dispatch has an outcome
    /// (assigned, declined by all, no workers, timeout, …).
    pub async fn dispatch_and_wait(
        &self,
        req: DispatchRequest,
        timeout: Duration,
    ) -> Result<JobRecord> {
        let id = self.dispatch(req);
        self.wait_for_job(&id, timeout, "dispatch outcome", |j| {
            j.outcome != DispatchOutcome::Pending
        })
        .await
    }

    /// Terminates a running job as `DeleteDispatch` would
    /// ([`TerminateReason::Requested`]: recorded as JS_SUCCESS).
    pub fn terminate_job(&self, id: &JobId) -> Result<()> {
        self.terminate_job_with(id, TerminateReason::Requested)
    }

    /// Terminates a running job with the given reason.
    pub fn terminate_job_with(&self, id: &JobId, reason: TerminateReason) -> Result<()> {
        if self.job(id).is_none() {
            return Err(Error::UnknownJob(id.0.clone()));
        }
        dispatch::terminate(&self.inner, id.as_str(), reason)
    }

    /// The agent participant `identity` left room `room` (a test calls this
    /// when its room double sees it go). If that participant is the agent of
    /// a job still live on a connected worker, the job ends as on the
    /// server: `JobTermination` to the worker and FAILED "agent worker left
    /// the room"; returns that job. Otherwise (the job already ended, or no
    /// such job) only the departure time is recorded.
    pub fn agent_left(&self, room: &str, identity: &str) -> Option<JobId> {
        let job = self.inner.update(|s| {
            let job = s.job_order.iter().rev().find_map(|id| {
                let j = s.jobs.get_mut(id)?;
                let here =
                    j.room.name == room && j.participant_identity.as_deref() == Some(identity);
                here.then(|| {
                    j.agent_left_at.get_or_insert_with(std::time::Instant::now);
                    id.clone()
                })
            })?;
            let live = s
                .workers
                .values()
                .any(|w| w.snapshot.connected && w.running.contains(&job));
            live.then_some(job)
        })?;
        dispatch::terminate(&self.inner, &job, TerminateReason::AgentLeftRoom).ok()?;
        tracing::info!(
            job_id = job,
            room,
            identity,
            "agent left the room while its job was live"
        );
        Some(JobId(job))
    }

    /// Sends `message` to a connected worker as is, outside any dispatch:
    /// for what the real server sends only in a race (an assignment after
    /// the worker released the offer, a repeated assignment). Returns
    /// whether it was queued.
    pub fn send_to_worker(
        &self,
        worker_id: &str,
        message: livekit_protocol::server_message::Message,
    ) -> bool {
        let message = livekit_protocol::ServerMessage {
            message: Some(message),
        };
        self.inner.update(|s| s.send_to_worker(worker_id, message))
    }

    /// Sends the job's offer (`AvailabilityRequest`) again to the worker it
    /// was last offered to, as a raw duplicate: no new pending answer is
    /// made, so the one answer the worker owes is still the first offer's.
    /// The server never does this itself (`Worker.AssignJob` refuses a
    /// duplicate offer); it stands for a retried or replayed frame. Returns
    /// whether it was queued.
    pub fn repeat_offer(&self, id: &JobId) -> bool {
        self.inner.update(|s| {
            let Some(j) = s.jobs.get(id.as_str()) else {
                return false;
            };
            let Some(worker_id) = j.offers.last().map(|o| o.worker_id.clone()) else {
                return false;
            };
            let job = livekit_protocol::Job {
                id: j.id.0.clone(),
                dispatch_id: j.dispatch_id.clone(),
                r#type: j.job_type as i32,
                room: Some(j.room.clone()),
                participant: j.participant.clone(),
                agent_name: j.agent_name.clone(),
                metadata: j.metadata.clone(),
                attributes: j.attributes.clone(),
                ..Default::default()
            };
            let offer = livekit_protocol::ServerMessage {
                message: Some(livekit_protocol::server_message::Message::Availability(
                    livekit_protocol::AvailabilityRequest {
                        job: Some(job),
                        resuming: false,
                    },
                )),
            };
            s.send_to_worker(&worker_id, offer)
        })
    }

    /// A snapshot of one job.
    pub fn job(&self, id: &JobId) -> Option<JobRecord> {
        self.inner.read(|s| s.jobs.get(id.as_str()).cloned())
    }

    /// Snapshots of every job, in creation order.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.inner.read(|s| {
            s.job_order
                .iter()
                .filter_map(|id| s.jobs.get(id).cloned())
                .collect()
        })
    }

    /// Waits until the job has `status`: either its current server-side
    /// status is `status`, or any entry of its history (including worker
    /// updates the server ignored) has it.
    pub async fn wait_for_job_status(
        &self,
        id: &JobId,
        status: JobStatus,
        timeout: Duration,
    ) -> Result<JobRecord> {
        self.wait_for_job(id, timeout, &format!("job status {status:?}"), |j| {
            j.status == status || j.saw_status(status)
        })
        .await
    }

    /// Waits until `pred` holds for the job.
    pub async fn wait_for_job(
        &self,
        id: &JobId,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&JobRecord) -> bool,
    ) -> Result<JobRecord> {
        self.wait_until(timeout, &format!("{what} of {id}"), |s| {
            s.jobs.get(id.as_str()).filter(|j| pred(j)).cloned()
        })
        .await
    }

    /// Snapshots of every worker that registered (connected or not), in
    /// registration order.
    pub fn workers(&self) -> Vec<WorkerSnapshot> {
        self.inner.read(|s| {
            s.worker_order
                .iter()
                .filter_map(|id| s.workers.get(id).map(|w| w.snapshot.clone()))
                .collect()
        })
    }

    /// Snapshot of one worker.
    pub fn worker(&self, id: &str) -> Option<WorkerSnapshot> {
        self.inner
            .read(|s| s.workers.get(id).map(|w| w.snapshot.clone()))
    }

    /// Waits until at least `n` registered workers are connected; returns
    /// the connected ones.
    pub async fn wait_for_workers(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<WorkerSnapshot>> {
        self.wait_until(timeout, &format!("{n} connected workers"), |s| {
            let connected: Vec<_> = s
                .worker_order
                .iter()
                .filter_map(|id| s.workers.get(id))
                .filter(|w| w.snapshot.connected)
                .map(|w| w.snapshot.clone())
                .collect();
            (connected.len() >= n).then_some(connected)
        })
        .await
    }

    /// Waits until `pred` holds for a worker snapshot.
    pub async fn wait_for_worker(
        &self,
        id: &str,
        timeout: Duration,
        pred: impl Fn(&WorkerSnapshot) -> bool,
    ) -> Result<WorkerSnapshot> {
        self.wait_until(timeout, &format!("condition on worker {id}"), |s| {
            s.workers
                .get(id)
                .map(|w| &w.snapshot)
                .filter(|w| pred(w))
                .cloned()
        })
        .await
    }

    /// Every `RoomService` call received so far (see [`twirp`]).
    pub fn twirp_calls(&self) -> Vec<twirp::TwirpCall> {
        self.inner.read(|s| s.twirp.clone())
    }

    /// The whole message log.
    pub fn messages(&self) -> Vec<LoggedMessage> {
        self.inner.read(|s| s.log.clone())
    }

    /// Waits for a log entry (at index `from` or later) matching `pred`;
    /// returns its index and a copy.
    pub async fn wait_for_message(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&LoggedMessage) -> bool,
    ) -> Result<(usize, LoggedMessage)> {
        self.wait_until(timeout, what, |s| {
            s.log
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| pred(m))
                .map(|(i, m)| (i, m.clone()))
        })
        .await
    }

    /// How many connections this server closed with 1009 because a worker
    /// sent a frame of [`Config::max_message_size`] or more.
    pub fn size_limit_closes(&self) -> usize {
        self.inner.read(|s| {
            s.log
                .iter()
                .filter(|m| {
                    matches!(
                        m.dir,
                        Direction::Closed {
                            code: Some(1009),
                            by: Closer::Server,
                            ..
                        }
                    )
                })
                .count()
        })
    }

    /// Drops every worker socket abruptly (no close frame), like the OSS
    /// server's forced drain. Returns how many connections were killed.
    pub fn kill_connections(&self) -> usize {
        self.inner.update(|s| {
            s.conns
                .values()
                .filter(|c| c.tx.send(Outgoing::Kill).is_ok())
                .count()
        })
    }

    /// Answer every new HTTP request with `status` (e.g. 503) instead of
    /// upgrading, or go back to normal with `None`. Existing connections
    /// are not touched.
    pub fn set_reject_all(&self, status: Option<u16>) {
        self.inner.update(|s| s.reject_all = status);
    }

    /// Every new connection gets `frames`, in order, right after the
    /// upgrade and before anything else (so before the register response).
    pub fn set_upgrade_frames(&self, frames: Vec<ControlFrame>) {
        self.inner.update(|s| s.upgrade_frames = frames);
    }

    /// Sends `frame` on every open connection now; returns on how many.
    pub fn send_control(&self, frame: ControlFrame) -> usize {
        self.inner.update(|s| {
            s.conns
                .values()
                .filter(|c| c.tx.send(Outgoing::Control(frame)).is_ok())
                .count()
        })
    }

    /// Stops accepting and drops every socket. Later calls do nothing.
    pub fn shutdown(&self) {
        self.inner.update(|s| s.shut_down = true);
        let _ = self.inner.shutdown.send(true);
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&State) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.inner.read(&f) {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    after: timeout,
                });
            }
        }
    }
}
