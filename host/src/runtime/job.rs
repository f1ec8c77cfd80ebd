//! A job's life: offer, start, run, end.
//!
//! ```text
//! Runtime::offer ──▶ Offer { decision, PreparedJob? } ──start──▶ JobHandle ──ended──▶ (Outcome, RoomExit)
//!   fresh store,        the guest's answer; accepted      joins the room,    Success | Failed(reason)
//!   calls on-request    offers keep their instance        calls run          | Terminated
//! ```
//!
//! Invariants:
//! - the instance that accepted an offer is the one that runs the job, so a
//!   job runs on the plugin version that was current when it was offered;
//! - every started job ends with exactly one [`Outcome`], whatever the guest
//!   does: returning, trapping, running away, exhausting memory, or
//!   ignoring a termination or the end of its room session (it is stopped
//!   after its grace period);
//! - the room session is closed when the job ends, however it ends;
//! - the outcome is known *before* the session leaves the room: the job
//!   stays in its room until the owner of the [`RoomExit`] lets it go (the
//!   worker does so once the final status is written to the server's
//!   socket), or [`LEAVE_TIMEOUT`] at most, so a dead connection cannot
//!   keep a room open. LiveKit's server records a job whose agent leaves
//!   while the job is live as FAILED ("agent worker left the room") and
//!   drops a later status, so the status must come first.
//!   [`JobHandle::outcome`] (console, connect: no server) leaves at once.
//!
//! Grace: after a termination, or once its room session ended (room
//! closed, agent removed, connection lost for good: the guest reads
//! `closed(room-closed)`, or the transport's
//! [`RoomSession::ended`](crate::room::RoomSession::ended) fires
//! for a guest that never reads events), the guest has
//! [`JobLimits::termination_grace`](crate::JobLimits) to return from `run`;
//! then it is stopped and the job ends as [`Outcome::Terminated`], which the
//! worker reports as SUCCESS, as the Python worker reports a job it shut
//! down because its room disconnected.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use wasmtime::Store;

use super::guard::{Metered, SliceClock};
use super::plugin::Plugin;
use super::reason::failure_reason;
use super::state::JobState;
use crate::bindings::Agent;
use crate::bindings::types::{CloseReason, Decision, JobInfo};
use crate::bounded;
use crate::config::units::human_duration;
use crate::host_memory::HostMemory;
use crate::imports::EndSignal;
use crate::room::service::RoomService;
use crate::room::{ConnectRequest, RoomTransport};

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `run` returned `ok`.
    Success,
    /// The job failed; the reason is meant for people (and for the
    /// `error` field of LiveKit's job status). The host keeps it within
    /// [`MAX_FAILURE_REASON`](crate::config::job::MAX_FAILURE_REASON), whatever
    /// the guest did.
    Failed(String),
    /// The job was terminated (by the server, the worker or its owner) and
    /// ended within its grace period or was stopped after it; or its room
    /// session ended and the guest did not return within its grace period.
    Terminated,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Failed(reason) => write!(f, "failed: {reason}"),
            Outcome::Terminated => f.write_str("terminated"),
        }
    }
}

/// The guest's answer to an offer and, if it accepted, the instance that
/// will run the job.
pub struct Offer {
    /// What the guest answered.
    pub decision: Decision,
    /// The accepted job, ready to start; `None` unless the guest accepted.
    pub job: Option<PreparedJob>,
}

/// An accepted job: an instance that answered `on-request` with `accept`.
/// Dropping it releases the instance without running anything.
pub struct PreparedJob {
    pub(crate) store: Store<JobState>,
    pub(crate) agent: Agent,
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) end: EndSignal,
}

impl fmt::Debug for PreparedJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedJob")
            .field("job", &self.store.data().info.id)
            .finish_non_exhaustive()
    }
}

impl PreparedJob {
    /// The job as it will run (with the identity it accepted with).
    pub fn info(&self) -> &JobInfo {
        &self.store.data().info
    }

    /// The plugin version the job will run on.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Gives the job LiveKit's server API (the `server` import) for its own
    /// room, the one it was offered for. Without this, every `server` call
    /// is denied.
    pub fn grant_room_service(&mut self, service: &Arc<RoomService>) {
        let state = self.store.data_mut();
        let scope = service.scope(&state.info.room.name);
        state.grant_room_service(scope);
    }

    /// Starts the job: joins the room through `transport` (with the server's
    /// `url` and participant `token`) and calls `run`, on a task of the
    /// current tokio runtime.
    pub fn start(self, transport: Arc<dyn RoomTransport>, url: String, token: String) -> JobHandle {
        let info = self.info().clone();
        let span = job_span(&info.id);
        let end = self.end.clone();
        let plugin = self.plugin.clone();
        let usage = JobUsage {
            clock: self.store.data().cpu.clock(),
            memory: self.store.data().host_memory.clone(),
        };
        let request = ConnectRequest {
            job: info.clone(),
            url,
            token,
            host_memory: usage.memory.clone(),
        };
        let (finished_tx, finished) = oneshot::channel();
        let task = tokio::spawn(self.run(transport, request, finished_tx).instrument(span));
        JobHandle {
            info,
            end,
            plugin,
            usage,
            task,
            finished,
        }
    }

    async fn run(
        mut self,
        transport: Arc<dyn RoomTransport>,
        request: ConnectRequest,
        finished: oneshot::Sender<Finished>,
    ) {
        let session = match transport.connect(request).await {
            Ok(session) => session,
            Err(err) => {
                let outcome = failed(format!("could not join the room: {err}"));
                tracing::warn!(%outcome, "job ended");
                let (release, _) = oneshot::channel();
                let _ = finished.send(Finished { outcome, release });
                return;
            }
        };
        let session_ended = session.ended();
        self.store.data_mut().join(session).await;
        let limits = self.store.data().limits.clone();
        let ended = {
            let clock = self.store.data().cpu.clock();
            let memory = self.store.data().host_memory.clone();
            let run = Metered::new(self.agent.call_run(&mut self.store), clock.clone());
            let wall_clock = async {
                match limits.wall_clock {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            let grace_over = grace_expired(
                self.end.subscribe(),
                session_ended,
                limits.termination_grace,
            );
            tokio::select! {
                result = run => Ended::Returned(result),
                () = wall_clock => Ended::WallClock(limits.wall_clock.unwrap_or_default()),
                cause = grace_over => Ended::GraceExpired(cause),
                over = memory.wait_exceeded() => Ended::Failed(over.to_string()),
                over = clock.wait_over_quota() => Ended::Failed(over.to_string()),
            }
        };
        let mut outcome = self.outcome(ended);
        let session = self.store.data_mut().take_session().await;
        if let (Outcome::Success, Some(reason)) =
            (&outcome, session.as_ref().and_then(|s| s.failure()))
        {
            outcome = failed(format!("room transport failed: {reason}"));
        }
        let state = self.store.data();
        let cpu_seconds = state.cpu.clock().cpu_time().as_secs_f64();
        let host_memory_peak = state.host_memory.peak();
        match &outcome {
            Outcome::Failed(_) => {
                tracing::warn!(%outcome, cpu_seconds, host_memory_peak, "job ended")
            }
            _ => tracing::info!(%outcome, cpu_seconds, host_memory_peak, "job ended"),
        }
        // The instance is done: free its memory and pool slot now rather
        // than after the wait below.
        drop(self);
        let (release, released) = oneshot::channel();
        let _ = finished.send(Finished { outcome, release });
        if let Some(mut session) = session {
            // In the room until the owner's status is out (or it let go).
            if tokio::time::timeout(LEAVE_TIMEOUT, released).await.is_err() {
                tracing::warn!(timeout = ?LEAVE_TIMEOUT, "the final status was not sent in time; leaving the room anyway");
            }
            session.close().await;
        }
    }

    fn outcome(&self, ended: Ended) -> Outcome {
        let state = self.store.data();
        state.stderr.flush_partial();
        let end = *self.end.borrow();
        let terminated = end == Some(CloseReason::Terminated);
        match ended {
            Ended::Returned(Ok(Ok(()))) if terminated => Outcome::Terminated,
            Ended::Returned(Ok(Ok(()))) => Outcome::Success,
            Ended::Returned(Ok(Err(reason))) => failed(reason),
            Ended::Returned(Err(err)) => failed(failure_reason(&err, state)),
            Ended::WallClock(limit) => failed(format!(
                "wall-clock limit {} exceeded",
                human_duration(limit)
            )),
            Ended::GraceExpired(cause) => {
                if cause == GraceCause::RoomEnded {
                    tracing::warn!(
                        grace = %human_duration(state.limits.termination_grace),
                        "the room session ended and the guest did not return within its grace period; stopped"
                    );
                }
                Outcome::Terminated
            }
            Ended::Failed(reason) => Outcome::Failed(reason),
        }
    }
}

/// The span every log line of a job is inside. At error level so that it is
/// shown whenever any line of the job is, whatever the filter.
pub(crate) fn job_span(job_id: &str) -> tracing::Span {
    tracing::error_span!("job", job_id = %job_id)
}

enum Ended {
    Returned(wasmtime::Result<Result<(), String>>),
    WallClock(Duration),
    GraceExpired(GraceCause),
    /// A guard outside the guest's call fired (host memory, CPU quota).
    Failed(String),
}

pub use crate::config::rooms::LEAVE_TIMEOUT;

/// What the job task hands its owner once the outcome is known.
#[derive(Debug)]
struct Finished {
    outcome: Outcome,
    /// Sent or dropped: the session may leave the room.
    release: oneshot::Sender<()>,
}

/// What started a job's grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraceCause {
    /// The job was terminated.
    Terminated,
    /// Its room session ended: the guest read `closed(room-closed)`, or the
    /// transport saw the room go (room closed, agent removed, connection
    /// lost for good) whether or not the guest reads its events.
    RoomEnded,
}

/// Resolves `grace` after the job is terminated or its room session ends;
/// never resolves otherwise.
async fn grace_expired(
    mut end: watch::Receiver<Option<CloseReason>>,
    session_ended: BoxFuture<'static, ()>,
    grace: Duration,
) -> GraceCause {
    let signalled = async {
        // The guard is dropped at the end of the statement, before any wait.
        let reason = end
            .wait_for(|r| matches!(r, Some(CloseReason::Terminated | CloseReason::RoomClosed)))
            .await
            .map(|reason| *reason);
        match reason {
            Ok(Some(CloseReason::Terminated)) => GraceCause::Terminated,
            Ok(_) => GraceCause::RoomEnded,
            Err(_) => std::future::pending().await,
        }
    };
    let cause = tokio::select! {
        cause = signalled => cause,
        () = session_ended => GraceCause::RoomEnded,
    };
    tokio::time::sleep(grace).await;
    cause
}

/// A failed outcome, its reason within [`MAX_FAILURE_REASON`](bounded::MAX_FAILURE_REASON).
fn failed(reason: String) -> Outcome {
    Outcome::Failed(bounded::reason(reason))
}

/// Terminates one job; cheap to clone.
#[derive(Debug, Clone)]
pub struct Terminator(EndSignal);

impl Terminator {
    /// Terminates the job: the guest sees `closed(terminated)` and has its
    /// grace period to return from `run`; then it is stopped. Idempotent.
    pub fn terminate(&self) {
        self.0.send_if_modified(|end| {
            let changed = *end != Some(CloseReason::Terminated);
            *end = Some(CloseReason::Terminated);
            changed
        });
    }

    /// Whether [`terminate`](Self::terminate) was called.
    pub fn is_terminated(&self) -> bool {
        *self.0.borrow() == Some(CloseReason::Terminated)
    }
}

/// What a running job uses, readable from outside it; cheap to clone.
#[derive(Debug, Clone)]
pub struct JobUsage {
    clock: Arc<SliceClock>,
    memory: HostMemory,
}

impl JobUsage {
    /// CPU time the job's guest has used so far (its polls that ended).
    pub fn cpu_time(&self) -> Duration {
        self.clock.cpu_time()
    }

    /// Host memory held on the job's behalf now, in bytes.
    pub fn host_memory(&self) -> u64 {
        self.memory.used()
    }
}

/// A running job.
#[derive(Debug)]
pub struct JobHandle {
    info: JobInfo,
    end: EndSignal,
    plugin: Arc<Plugin>,
    usage: JobUsage,
    task: JoinHandle<()>,
    finished: oneshot::Receiver<Finished>,
}

/// A job that has ended but may still be in its room, so that the worker
/// can report its final status before the agent leaves (LiveKit's server
/// records a job whose agent left while it was live as FAILED). Dropping
/// it lets the session leave.
#[derive(Debug)]
pub struct RoomExit {
    release: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RoomExit {
    /// Lets the session leave the room; does not wait for it.
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }

    /// Lets the session leave the room and waits until it has.
    pub async fn leave(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl JobHandle {
    /// The job's info.
    pub fn info(&self) -> &JobInfo {
        &self.info
    }

    /// The plugin version the job runs on.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// What the job uses (CPU time, host memory); stays readable after
    /// the handle is gone.
    pub fn usage(&self) -> JobUsage {
        self.usage.clone()
    }

    /// Terminates the job; see [`Terminator::terminate`].
    pub fn terminate(&self) {
        self.terminator().terminate();
    }

    /// A handle that can terminate the job from elsewhere.
    pub fn terminator(&self) -> Terminator {
        Terminator(self.end.clone())
    }

    /// Whether the job has ended and left its room.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the job to end, then leaves the room at once and waits
    /// until it has: for callers with no server to tell first.
    pub async fn outcome(self) -> Outcome {
        let (outcome, exit) = self.ended().await;
        exit.leave().await;
        outcome
    }

    /// Waits for the job to end; the session stays in the room until the
    /// [`RoomExit`] is released or dropped (or [`LEAVE_TIMEOUT`]).
    pub async fn ended(self) -> (Outcome, RoomExit) {
        match self.finished.await {
            Ok(Finished { outcome, release }) => (
                outcome,
                RoomExit {
                    release: Some(release),
                    task: Some(self.task),
                },
            ),
            // The task ended without an outcome: it panicked or was cancelled.
            Err(_) => {
                let outcome = match self.task.await {
                    Err(err) if err.is_panic() => {
                        Outcome::Failed("internal error: the job's host task panicked".into())
                    }
                    _ => Outcome::Terminated,
                };
                let exit = RoomExit {
                    release: None,
                    task: None,
                };
                (outcome, exit)
            }
        }
    }
}
