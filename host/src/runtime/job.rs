//! A job's life: offer, start, run, end.
//!
//! ```text
//! Runtime::offer ──▶ Offer { decision, PreparedJob? } ──start──▶ JobHandle ──outcome──▶ Outcome
//!   fresh store,        the guest's answer; accepted      joins the room,     Success | Failed(reason)
//!   calls on-request    offers keep their instance        calls run           | Terminated
//! ```
//!
//! Invariants:
//! - the instance that accepted an offer is the one that runs the job, so a
//!   job runs on the plugin version that was current when it was offered;
//! - every started job ends with exactly one [`Outcome`], whatever the guest
//!   does: returning, trapping, running away, exhausting memory, or
//!   ignoring a termination (it is stopped after its grace period);
//! - the room session is closed when the job ends, however it ends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap, WasmBacktrace};

use super::guard::{CpuQuotaExceeded, Metered, Runaway, SliceClock};
use super::plugin::Plugin;
use super::state::{EndSignal, JobState};
use crate::bindings::Agent;
use crate::bindings::types::{CloseReason, Decision, JobInfo};
use crate::bounded::{self, MAX_FAILURE_REASON, MAX_FRAME_NAME};
use crate::host_memory::HostMemory;
use crate::limits::human_duration;
use crate::room::{ConnectRequest, RoomTransport};
use crate::room_service::RoomService;

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `run` returned `ok`.
    Success,
    /// The job failed; the reason is meant for people (and for the
    /// `error` field of LiveKit's job status). The host keeps it within
    /// [`MAX_FAILURE_REASON`](crate::limits::MAX_FAILURE_REASON), whatever
    /// the guest did.
    Failed(String),
    /// The job was terminated (by the server, the worker or its owner) and
    /// ended within its grace period or was stopped after it.
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
        state.room_service = Some(service.scope(&state.info.room.name));
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
        let task = tokio::spawn(self.run(transport, request).instrument(span));
        JobHandle {
            info,
            end,
            plugin,
            usage,
            task,
        }
    }

    async fn run(mut self, transport: Arc<dyn RoomTransport>, request: ConnectRequest) -> Outcome {
        let session = match transport.connect(request).await {
            Ok(session) => session,
            Err(err) => {
                let outcome = failed(format!("could not join the room: {err}"));
                tracing::warn!(%outcome, "job ended");
                return outcome;
            }
        };
        self.store.data_mut().session = Some(session);
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
            let grace_over = grace_expired(self.end.subscribe(), limits.termination_grace);
            tokio::select! {
                result = run => Ended::Returned(result),
                () = wall_clock => Ended::WallClock(limits.wall_clock.unwrap_or_default()),
                () = grace_over => Ended::GraceExpired,
                over = memory.wait_exceeded() => Ended::Failed(over.to_string()),
                over = clock.wait_over_quota() => Ended::Failed(over.to_string()),
            }
        };
        let mut outcome = self.outcome(ended);
        if let Some(mut session) = self.store.data_mut().session.take() {
            if let (Outcome::Success, Some(reason)) = (&outcome, session.failure()) {
                outcome = failed(format!("room transport failed: {reason}"));
            }
            session.close().await;
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
        outcome
    }

    fn outcome(&self, ended: Ended) -> Outcome {
        let state = self.store.data();
        state.stderr.flush_partial();
        let terminated = *self.end.borrow() == Some(CloseReason::Terminated);
        match ended {
            Ended::Returned(Ok(Ok(()))) if terminated => Outcome::Terminated,
            Ended::Returned(Ok(Ok(()))) => Outcome::Success,
            Ended::Returned(Ok(Err(reason))) => failed(reason),
            Ended::Returned(Err(err)) => failed(failure_reason(&err, state)),
            Ended::WallClock(limit) => failed(format!(
                "wall-clock limit {} exceeded",
                human_duration(limit)
            )),
            Ended::GraceExpired => Outcome::Terminated,
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
    GraceExpired,
    /// A guard outside the guest's call fired (host memory, CPU quota).
    Failed(String),
}

/// Resolves `grace` after the job is terminated; never resolves otherwise.
async fn grace_expired(mut end: watch::Receiver<Option<CloseReason>>, grace: Duration) {
    if end
        .wait_for(|r| *r == Some(CloseReason::Terminated))
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace).await;
}

/// A failed outcome, its reason within [`MAX_FAILURE_REASON`].
fn failed(reason: String) -> Outcome {
    Outcome::Failed(bounded::reason(reason))
}

/// Turns an error from a guest call into words a user understands, naming
/// the limit that was hit when one was; at most [`MAX_FAILURE_REASON`]
/// bytes. The wasm backtrace (whose frame names come from the guest's own
/// name section) is never part of it: it goes to the debug log, with each
/// name cut to [`MAX_FRAME_NAME`].
pub(crate) fn failure_reason(err: &wasmtime::Error, state: &JobState) -> String {
    let backtrace = err.downcast_ref::<WasmBacktrace>();
    if let Some(backtrace) = backtrace {
        log_backtrace(backtrace);
    }
    if let Some(runaway) = err.downcast_ref::<Runaway>() {
        return runaway.to_string();
    }
    if let Some(over) = err.downcast_ref::<CpuQuotaExceeded>() {
        return over.to_string();
    }
    // A guest that ran out of host memory often fails in its own way
    // afterwards (a refused request, a trap); the budget is the reason.
    if let Some(over) = state.host_memory.exceeded() {
        return over.to_string();
    }
    if let Some(reason) = state.memory.reason() {
        return reason;
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref() {
        return format!(
            "resource limit of {} handles exceeded",
            state.limits.max_resources
        );
    }
    let reason = match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow (unbounded recursion in the guest?)".into(),
        Some(Trap::UnreachableCodeReached) => match state.stderr.panic_message() {
            Some(message) => format!("guest panicked: {message}"),
            None => "trap: unreachable code reached (the guest aborted)".into(),
        },
        Some(Trap::MemoryOutOfBounds) => {
            "trap: out of bounds memory access (a stack overflow in the guest, or a bad pointer)"
                .into()
        }
        Some(trap) => format!("trap: {trap}"),
        None => error_chain(err, backtrace),
    };
    bounded::reason(reason)
}

/// `err`'s messages, outermost first, as `{err:#}` shows them but without
/// the backtrace, each formatted only up to the reason's cap.
fn error_chain(err: &wasmtime::Error, backtrace: Option<&WasmBacktrace>) -> String {
    // The backtrace is one link of the chain (wasmtime adds it as context);
    // it is recognised by how it starts, which is all that is formatted.
    const HEAD: usize = 256;
    let backtrace_head = backtrace.map(|bt| bounded::display(bt, HEAD));
    let mut parts = Vec::new();
    for link in err.chain() {
        let is_backtrace = backtrace_head
            .as_deref()
            .is_some_and(|head| bounded::display(link, HEAD) == head);
        if is_backtrace {
            continue;
        }
        parts.push(bounded::display(link, MAX_FAILURE_REASON));
    }
    parts.join(": ")
}

/// Logs a guest backtrace at debug level, on one line, each function name cut
/// to [`MAX_FRAME_NAME`] (wasmtime keeps at most 20 frames).
fn log_backtrace(backtrace: &WasmBacktrace) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let frames: Vec<String> = backtrace
        .frames()
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let name = match frame.func_name() {
                Some(name) => bounded::cut(name, MAX_FRAME_NAME).into_owned(),
                None => format!("<function {}>", frame.func_index()),
            };
            let offset = frame.module_offset().unwrap_or_default();
            format!("{i}: {offset:#x} {name}")
        })
        .collect();
    // One line: frames apart by ` | `.
    let frames = frames.join(" | ");
    tracing::debug!(backtrace = %bounded::log_line(&frames), "guest backtrace");
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
    task: JoinHandle<Outcome>,
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

    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the job to end.
    pub async fn outcome(self) -> Outcome {
        match self.task.await {
            Ok(outcome) => outcome,
            Err(err) if err.is_panic() => {
                Outcome::Failed("internal error: the job's host task panicked".into())
            }
            Err(_) => Outcome::Terminated,
        }
    }
}
