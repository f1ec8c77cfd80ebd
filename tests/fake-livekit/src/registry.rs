//! Server state: connections, registered workers and jobs, and the public
//! snapshots of them ([`WorkerSnapshot`], [`JobRecord`]).
//!
//! Mirrors `pkg/agent/worker.go` and `agentservice.go`: workers are keyed by
//! (agent_name, namespace, job type, deployment); `UpdateWorkerStatus`
//! replaces the status only when present and always overwrites the load;
//! `UpdateJobStatus` is honoured only for jobs the sending worker is running;
//! a disconnect forgets the worker's jobs without re-dispatching them.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use livekit_protocol::{
    AvailabilityResponse, JobStatus, JobType, ParticipantInfo, ParticipantPermission,
    RegisterWorkerRequest, Room, WorkerStatus,
};
use tokio::sync::{mpsc, oneshot};

use crate::log::LoggedMessage;

/// A job id (`AJ_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub String);

impl JobId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        JobId(s.to_string())
    }
}

/// The routing key of a worker (`workerKey` in the OSS server).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerKey {
    /// `agent_name` (empty for automatic dispatch).
    pub agent_name: String,
    /// Deprecated namespace (`None` and `Some("")` are the same key).
    pub namespace: String,
    /// Job type.
    pub job_type: i32,
    /// Deployment.
    pub deployment: String,
}

/// Public view of a worker (connected or not) for tests.
#[derive(Debug, Clone)]
pub struct WorkerSnapshot {
    /// `AW_…`.
    pub id: String,
    /// Connection number (see [`LoggedMessage::connection`]).
    pub connection: u64,
    /// From the registration.
    pub agent_name: String,
    /// From the registration.
    pub namespace: Option<String>,
    /// From the registration.
    pub job_type: JobType,
    /// Last status reported, as sent (WS_AVAILABLE until the first update);
    /// see [`Self::worker_status`].
    pub status: i32,
    /// Last load reported (0 until the first update).
    pub load: f32,
    /// Last `job_count` reported (the OSS server ignores it).
    pub reported_job_count: u32,
    /// Jobs the server thinks this worker is running.
    pub job_count: usize,
    /// SDK version string from the registration.
    pub version: String,
    /// Effective permissions (the registration's, or the OSS default).
    pub permissions: ParticipantPermission,
    /// Whether `allowed_permissions` was present in the registration.
    pub permissions_sent: bool,
    /// From the registration.
    pub deployment: String,
    /// `protocol` query parameter of the connection.
    pub protocol: i32,
    /// The whole registration message.
    pub registration: RegisterWorkerRequest,
    /// When the register response was sent.
    pub registered_at: Instant,
    /// False once the socket ended.
    pub connected: bool,
    /// Number of `UpdateWorkerStatus` messages received.
    pub status_updates: usize,
    /// Job ids received in `MigrateJobRequest`s (recorded, otherwise ignored
    /// like on OSS).
    pub migrate_requests: Vec<Vec<String>>,
}

impl WorkerSnapshot {
    /// The last status reported; `None` for a value the protocol does not
    /// define (the server stores it anyway, and never picks the worker).
    pub fn worker_status(&self) -> Option<WorkerStatus> {
        WorkerStatus::try_from(self.status).ok()
    }
}

/// How a dispatch ended, from the server's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// Offers still in flight.
    Pending,
    /// A worker accepted and `JobAssignment` was sent.
    Assigned {
        /// The worker.
        worker_id: String,
    },
    /// A worker declined with `terminate=true`: the job is recorded as
    /// JS_SUCCESS and offered to no one else.
    TerminatedByWorker {
        /// The worker.
        worker_id: String,
    },
    /// No connected worker had the job's key (`"no workers available"`,
    /// or "not dispatching agent job since no worker is available").
    NoWorkers,
    /// The node gate failed: every matching available worker reports
    /// `load >= target_load` (`"no servers available"`).
    NoServersAvailable,
    /// Matching workers exist but all have weight 0 (`load >= 1`)
    /// (`"no workers with sufficient capacity"`).
    NoCapacity,
    /// Every candidate declined (or closed) (`"no workers available"`).
    AllDeclined,
    /// The chosen worker did not answer within the offer window; OSS does
    /// not retry.
    Timeout {
        /// The worker that did not answer.
        worker_id: String,
    },
}

/// What a worker answered to one offer.
#[derive(Debug, Clone)]
pub enum OfferAnswer {
    /// The `AvailabilityResponse`.
    Response {
        /// When it arrived.
        at: Instant,
        /// The message.
        response: AvailabilityResponse,
    },
    /// No answer in time.
    Timeout,
    /// The worker disconnected before answering.
    WorkerClosed,
    /// Still waiting.
    Waiting,
}

/// One `AvailabilityRequest` sent for a job.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    /// Worker offered to.
    pub worker_id: String,
    /// When the offer was queued.
    pub sent_at: Instant,
    /// The answer.
    pub answer: OfferAnswer,
}

/// Who produced a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// The server (assignment → RUNNING, terminate → SUCCESS/FAILED, …).
    Server,
    /// An `UpdateJobStatus` from a worker.
    Worker,
}

/// One entry of [`JobRecord::status_history`].
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// When.
    pub at: Instant,
    /// New status.
    pub status: JobStatus,
    /// Error text (`UpdateJobStatus.error`, or the server's reason).
    pub error: String,
    /// Who.
    pub source: StatusSource,
    /// The worker that sent it (for [`StatusSource::Worker`]).
    pub worker_id: Option<String>,
    /// False when the OSS server would have ignored it ("unknown job": the
    /// job had already ended, or the sender is not the worker running it).
    /// Ignored updates do not change [`JobRecord::status`].
    pub accepted: bool,
}

/// Everything the fake server knows about one job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// `AJ_…`.
    pub id: JobId,
    /// `AD_…` (empty for simulated jobs).
    pub dispatch_id: String,
    /// The room snapshot sent in the job.
    pub room: Room,
    /// Participant, for PUBLISHER/PARTICIPANT jobs.
    pub participant: Option<ParticipantInfo>,
    /// Requested agent name.
    pub agent_name: String,
    /// Dispatch metadata.
    pub metadata: String,
    /// Job type.
    pub job_type: JobType,
    /// Dispatch attributes.
    pub attributes: HashMap<String, String>,
    /// When the dispatch was created.
    pub created_at: Instant,
    /// Offers made, in order.
    pub offers: Vec<OfferRecord>,
    /// Dispatch result.
    pub outcome: DispatchOutcome,
    /// Worker that got the assignment.
    pub worker_id: Option<String>,
    /// When `JobAssignment` was queued.
    pub assigned_at: Option<Instant>,
    /// Identity put in the token and in `JobState.participant_identity`.
    pub participant_identity: Option<String>,
    /// The agent participant token sent in `JobAssignment`.
    pub token: Option<String>,
    /// Current status as the OSS server would hold it.
    pub status: JobStatus,
    /// Error text of the current status.
    pub error: String,
    /// Every status change, including worker updates the server ignored.
    pub status_history: Vec<StatusChange>,
    /// When the job ended on the server (SUCCESS/FAILED recorded).
    pub ended_at: Option<Instant>,
    /// When `JobTermination` was sent.
    pub terminated_at: Option<Instant>,
    /// When the worker running it disconnected (OSS forgets the job then).
    pub worker_disconnected_at: Option<Instant>,
    /// When the test reported its agent participant leaving the room
    /// ([`crate::FakeLiveKit::agent_left`]).
    pub agent_left_at: Option<Instant>,
}

impl JobRecord {
    /// True if `status` appears anywhere in the history (accepted or not).
    pub fn saw_status(&self, status: JobStatus) -> bool {
        self.status_history.iter().any(|c| c.status == status)
    }

    /// Statuses the worker sent, in order, accepted or not.
    pub fn worker_statuses(&self) -> Vec<JobStatus> {
        self.status_history
            .iter()
            .filter(|c| c.source == StatusSource::Worker)
            .map(|c| c.status)
            .collect()
    }

    /// Statuses the worker sent that the server accepted, in order: what a
    /// real server would have recorded.
    pub fn accepted_worker_statuses(&self) -> Vec<JobStatus> {
        self.status_history
            .iter()
            .filter(|c| c.source == StatusSource::Worker && c.accepted)
            .map(|c| c.status)
            .collect()
    }

    /// Statuses the worker sent that the server dropped (the job had
    /// ended, or the sender was not the worker running it), in order.
    pub fn dropped_worker_statuses(&self) -> Vec<JobStatus> {
        self.status_history
            .iter()
            .filter(|c| c.source == StatusSource::Worker && !c.accepted)
            .map(|c| c.status)
            .collect()
    }
}

/// What the connection task is asked to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send this message.
    Message(Box<livekit_protocol::ServerMessage>),
    /// Drop the socket without a close frame.
    Kill,
    /// Send this WebSocket control frame.
    Control(crate::ControlFrame),
}

pub(crate) struct ConnEntry {
    pub tx: mpsc::UnboundedSender<Outgoing>,
    pub worker_id: Option<String>,
}

pub(crate) struct WorkerEntry {
    pub snapshot: WorkerSnapshot,
    pub key: WorkerKey,
    /// Job ids this worker runs (OSS `runningJobs`).
    pub running: HashSet<String>,
    /// Outstanding offers by job id.
    pub pending_offers: HashMap<String, oneshot::Sender<AvailabilityResponse>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub conns: HashMap<u64, ConnEntry>,
    pub workers: HashMap<String, WorkerEntry>,
    /// Worker ids in registration order.
    pub worker_order: Vec<String>,
    pub jobs: HashMap<String, JobRecord>,
    pub job_order: Vec<String>,
    pub log: Vec<LoggedMessage>,
    pub reject_all: Option<u16>,
    /// Control frames every new connection gets right after the upgrade.
    pub upgrade_frames: Vec<crate::ControlFrame>,
    pub shut_down: bool,
    /// `RoomService` calls, in arrival order.
    pub twirp: Vec<crate::twirp::TwirpCall>,
}

impl State {
    pub fn push_log(
        &mut self,
        connection: u64,
        worker_id: Option<String>,
        dir: crate::log::Direction,
    ) {
        self.log.push(LoggedMessage {
            at: Instant::now(),
            connection,
            worker_id,
            dir,
        });
    }

    /// Queue a message on a worker's connection and log it.
    pub fn send_to_worker(
        &mut self,
        worker_id: &str,
        msg: livekit_protocol::ServerMessage,
    ) -> bool {
        let Some(conn) = self.workers.get(worker_id).map(|w| w.snapshot.connection) else {
            return false;
        };
        self.send_on_conn(conn, msg)
    }

    pub fn send_on_conn(&mut self, conn: u64, msg: livekit_protocol::ServerMessage) -> bool {
        let Some(entry) = self.conns.get(&conn) else {
            return false;
        };
        let worker_id = entry.worker_id.clone();
        if entry
            .tx
            .send(Outgoing::Message(Box::new(msg.clone())))
            .is_err()
        {
            return false;
        }
        self.push_log(conn, worker_id, crate::log::Direction::Outbound(msg));
        true
    }

    /// OSS `UpdateJobStatus` handling.
    pub fn update_job_status(&mut self, worker_id: &str, job_id: &str, status: i32, error: &str) {
        let status = JobStatus::try_from(status).unwrap_or(JobStatus::JsPending);
        let running = self
            .workers
            .get(worker_id)
            .is_some_and(|w| w.running.contains(job_id));
        let Some(job) = self.jobs.get_mut(job_id) else {
            tracing::debug!(job_id, "update for unknown job ignored");
            return;
        };
        let now = Instant::now();
        job.status_history.push(StatusChange {
            at: now,
            status,
            error: error.to_string(),
            source: StatusSource::Worker,
            worker_id: Some(worker_id.to_string()),
            accepted: running,
        });
        if !running {
            tracing::debug!(
                job_id,
                worker_id,
                "update for a job this worker does not run: ignored"
            );
            return;
        }
        job.status = status;
        job.error = error.to_string();
        if matches!(status, JobStatus::JsSuccess | JobStatus::JsFailed) {
            job.ended_at = Some(now);
            if let Some(w) = self.workers.get_mut(worker_id) {
                w.running.remove(job_id);
                w.snapshot.job_count = w.running.len();
            }
        }
    }

    /// Records a server-side end of a job (terminate, terminate=true answer).
    pub fn end_job_by_server(&mut self, job_id: &str, status: JobStatus, error: &str) {
        if let Some(job) = self.jobs.get_mut(job_id) {
            let now = Instant::now();
            job.status = status;
            job.error = error.to_string();
            job.ended_at = Some(now);
            job.status_history.push(StatusChange {
                at: now,
                status,
                error: error.to_string(),
                source: StatusSource::Server,
                worker_id: None,
                accepted: true,
            });
        }
    }

    /// A connection ended: forget its worker and the worker's jobs.
    pub fn connection_closed(&mut self, conn: u64) {
        let Some(entry) = self.conns.remove(&conn) else {
            return;
        };
        let Some(worker_id) = entry.worker_id else {
            return;
        };
        if let Some(w) = self.workers.get_mut(&worker_id) {
            w.snapshot.connected = false;
            // Dropping the senders wakes offer waiters with "worker closed".
            w.pending_offers.clear();
            let now = Instant::now();
            for job_id in w.running.drain() {
                if let Some(job) = self.jobs.get_mut(&job_id) {
                    job.worker_disconnected_at = Some(now);
                }
            }
            w.snapshot.job_count = 0;
        }
    }
}
