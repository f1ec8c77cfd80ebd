//! Job dispatch: choosing a worker, the offer (`AvailabilityRequest`), the
//! answer window and the assignment, after `pkg/agent/client.go`,
//! `worker.go::AssignJob` and psrpc's affinity selection.
//!
//! * Candidates: connected workers whose key (agent_name, namespace, type,
//!   deployment) equals the job's, with status `WS_AVAILABLE`, not yet tried.
//! * Node gate (once, before the first offer; [`crate::Config::target_load`]):
//!   the sum of `max(0, target_load - load)` over candidates must be > 0, else
//!   the dispatch fails with "no servers available".
//! * Pick: weighted random with weight `max(0, 1 - load)`.
//! * Answer window: [`crate::Config::offer_timeout`] for the whole dispatch
//!   (2.8 s: the OSS psrpc default deadline of 3 s less node selection,
//!   which takes at least 200 ms), each offer also capped by
//!   [`crate::Config::assign_job_timeout`] (10 s). A timeout is not retried.
//! * `terminate=true` → job SUCCESS, no retry; `available=false` or worker
//!   closed → next worker; `available=true` → `JobAssignment{job, token,
//!   url}` with `url` = [`crate::Config::room_url`] (unset by default).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use livekit_protocol::{
    AvailabilityRequest, Job, JobAssignment, JobState, JobStatus, JobTermination, JobType,
    ParticipantInfo, Room, ServerMessage, SimulateJobRequest, WorkerStatus, server_message,
};

use crate::Inner;
use crate::auth::{self, AGENT_NAME_ATTRIBUTE, AgentTokenParams};
use crate::registry::{
    DispatchOutcome, JobId, JobRecord, OfferAnswer, OfferRecord, State, WorkerKey,
};

/// A job to dispatch (what `CreateDispatch` / a room event would launch).
#[derive(Debug, Clone, Default)]
pub struct DispatchRequest {
    /// Room name.
    pub room: String,
    /// Room sid; a fresh `RM_…` when `None`.
    pub room_sid: Option<String>,
    /// Room metadata.
    pub room_metadata: String,
    /// Agent name (empty = automatic dispatch workers).
    pub agent_name: String,
    /// Job metadata.
    pub metadata: String,
    /// Job type (default ROOM).
    pub job_type: JobType,
    /// Job attributes.
    pub attributes: HashMap<String, String>,
    /// Deprecated namespace (part of the routing key).
    pub namespace: String,
    /// Deployment (part of the routing key).
    pub deployment: String,
    /// Participant for PUBLISHER/PARTICIPANT jobs.
    pub participant: Option<ParticipantInfo>,
}

impl DispatchRequest {
    /// A ROOM job for `room` and `agent_name`.
    pub fn new(room: impl Into<String>, agent_name: impl Into<String>) -> Self {
        DispatchRequest {
            room: room.into(),
            agent_name: agent_name.into(),
            ..Default::default()
        }
    }

    /// Sets the job metadata.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Sets the job type.
    pub fn job_type(mut self, job_type: JobType) -> Self {
        self.job_type = job_type;
        self
    }

    /// Adds a job attribute.
    pub fn attribute(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }
}

/// Why the server ends a job itself (`rpc.JobTerminateReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminateReason {
    /// `DeleteDispatch`: recorded as JS_SUCCESS.
    #[default]
    Requested,
    /// The agent participant left the room: recorded as JS_FAILED with
    /// "agent worker left the room".
    AgentLeftRoom,
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// Creates the job and starts offering it in the background.
pub(crate) fn start(
    inner: &Arc<Inner>,
    req: DispatchRequest,
    target: Option<String>,
    dispatch_id: String,
) -> JobId {
    let id = crate::ids::guid("AJ_");
    let now_ms = now_ns() / 1_000_000;
    let room = Room {
        sid: req
            .room_sid
            .clone()
            .unwrap_or_else(|| crate::ids::guid("RM_")),
        name: req.room.clone(),
        metadata: req.room_metadata.clone(),
        creation_time: now_ms / 1000,
        creation_time_ms: now_ms,
        empty_timeout: 300,
        departure_timeout: 20,
        ..Default::default()
    };
    let job = Job {
        id: id.clone(),
        dispatch_id,
        r#type: req.job_type as i32,
        room: Some(room.clone()),
        participant: req.participant.clone(),
        namespace: req.namespace.clone(),
        metadata: req.metadata.clone(),
        agent_name: req.agent_name.clone(),
        state: None,
        enable_recording: inner.config.enable_recording,
        deployment: req.deployment.clone(),
        attributes: req.attributes.clone(),
        enable_redaction: inner.config.enable_redaction,
    };
    let record = JobRecord {
        id: JobId(id.clone()),
        dispatch_id: job.dispatch_id.clone(),
        room,
        participant: req.participant,
        agent_name: req.agent_name.clone(),
        metadata: req.metadata,
        job_type: req.job_type,
        attributes: req.attributes,
        created_at: Instant::now(),
        offers: Vec::new(),
        outcome: DispatchOutcome::Pending,
        worker_id: None,
        assigned_at: None,
        participant_identity: None,
        token: None,
        status: JobStatus::JsPending,
        error: String::new(),
        status_history: Vec::new(),
        ended_at: None,
        terminated_at: None,
        worker_disconnected_at: None,
        agent_left_at: None,
    };
    let key = WorkerKey {
        agent_name: req.agent_name,
        namespace: req.namespace,
        job_type: req.job_type as i32,
        deployment: req.deployment,
    };
    inner.update(|s| {
        s.jobs.insert(id.clone(), record);
        s.job_order.push(id.clone());
    });
    let inner2 = inner.clone();
    tokio::spawn(async move { run(inner2, job, key, target).await });
    JobId(id)
}

/// `SimulateJobRequest`: a job offered to this same worker only.
pub(crate) fn simulate_job(inner: &Arc<Inner>, worker_id: &str, sim: SimulateJobRequest) {
    let Some(key) = inner.update(|s| s.workers.get(worker_id).map(|w| w.key.clone())) else {
        return;
    };
    let room = sim.room.unwrap_or_default();
    let job_type = if sim.participant.is_some() {
        JobType::JtPublisher
    } else {
        JobType::JtRoom
    };
    let req = DispatchRequest {
        room: room.name.clone(),
        room_sid: Some(room.sid.clone()).filter(|s| !s.is_empty()),
        room_metadata: room.metadata.clone(),
        agent_name: key.agent_name,
        namespace: key.namespace,
        job_type,
        participant: sim.participant,
        ..Default::default()
    };
    start(inner, req, Some(worker_id.to_string()), String::new());
}

enum Pick {
    Worker(String),
    Done(DispatchOutcome),
}

fn pick_worker(
    s: &State,
    key: &WorkerKey,
    tried: &HashSet<String>,
    target: Option<&str>,
    gate: Option<f32>,
) -> Pick {
    let candidates: Vec<_> = s
        .worker_order
        .iter()
        .filter_map(|id| s.workers.get(id))
        .filter(|w| w.snapshot.connected && !tried.contains(&w.snapshot.id))
        .filter(|w| match target {
            Some(t) => w.snapshot.id == t,
            None => &w.key == key,
        })
        // A targeted offer (simulate_job, dispatch_to) goes to that worker
        // whatever its status, like OSS `HandleSimulateJob` → `AssignJob`.
        .filter(|w| target.is_some() || w.snapshot.status == WorkerStatus::WsAvailable as i32)
        .collect();
    if candidates.is_empty() {
        return Pick::Done(if tried.is_empty() {
            DispatchOutcome::NoWorkers
        } else {
            DispatchOutcome::AllDeclined
        });
    }
    if let Some(target_load) = gate {
        let affinity: f32 = candidates
            .iter()
            .map(|w| (target_load - w.snapshot.load).max(0.0))
            .sum();
        if affinity <= 0.0 {
            return Pick::Done(DispatchOutcome::NoServersAvailable);
        }
    }
    let weights: Vec<f64> = candidates
        .iter()
        .map(|w| (1.0 - w.snapshot.load as f64).max(0.0))
        .collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return Pick::Done(DispatchOutcome::NoCapacity);
    }
    let mut r = crate::ids::next_f64() * total;
    for (w, weight) in candidates.iter().zip(&weights) {
        if *weight > 0.0 {
            if r < *weight {
                return Pick::Worker(w.snapshot.id.clone());
            }
            r -= weight;
        }
    }
    let last = candidates
        .iter()
        .zip(&weights)
        .rev()
        .find(|(_, wt)| **wt > 0.0);
    Pick::Worker(last.map(|(w, _)| w.snapshot.id.clone()).unwrap_or_default())
}

async fn run(inner: Arc<Inner>, mut job: Job, key: WorkerKey, target: Option<String>) {
    let start = tokio::time::Instant::now();
    let deadline = start + inner.config.offer_timeout;
    let job_id = job.id.clone();
    let mut tried = HashSet::new();
    let finish = |inner: &Inner, outcome: DispatchOutcome| {
        inner.update(|s| {
            if let Some(j) = s.jobs.get_mut(&job_id) {
                j.outcome = outcome;
            }
        });
    };
    loop {
        let gate = if tried.is_empty() && target.is_none() {
            inner.config.target_load
        } else {
            None
        };
        let worker_id =
            match inner.update(|s| pick_worker(s, &key, &tried, target.as_deref(), gate)) {
                Pick::Worker(w) => w,
                Pick::Done(outcome) => {
                    tracing::info!(job_id, ?outcome, "dispatch ended without assignment");
                    finish(&inner, outcome);
                    return;
                }
            };
        tried.insert(worker_id.clone());
        let now = now_ns();
        job.state = Some(JobState {
            status: JobStatus::JsRunning as i32,
            started_at: now,
            updated_at: now,
            worker_id: worker_id.clone(),
            ..Default::default()
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let offer = ServerMessage {
            message: Some(server_message::Message::Availability(AvailabilityRequest {
                job: Some(job.clone()),
                resuming: false,
            })),
        };
        let sent = inner.update(|s| {
            let Some(w) = s.workers.get_mut(&worker_id) else {
                return false;
            };
            if w.pending_offers.contains_key(&job_id) {
                return false;
            }
            w.pending_offers.insert(job_id.clone(), tx);
            if !s.send_to_worker(&worker_id, offer) {
                return false;
            }
            if let Some(j) = s.jobs.get_mut(&job_id) {
                j.offers.push(OfferRecord {
                    worker_id: worker_id.clone(),
                    sent_at: Instant::now(),
                    answer: OfferAnswer::Waiting,
                });
            }
            true
        });
        if !sent {
            continue;
        }
        let wait_until =
            deadline.min(tokio::time::Instant::now() + inner.config.assign_job_timeout);
        let answer = tokio::time::timeout_at(wait_until, rx).await;
        let set_answer = |inner: &Inner, a: OfferAnswer| {
            inner.update(|s| {
                if let Some(o) = s.jobs.get_mut(&job_id).and_then(|j| j.offers.last_mut()) {
                    o.answer = a;
                }
            })
        };
        let resp = match answer {
            Err(_) => {
                inner.update(|s| {
                    if let Some(w) = s.workers.get_mut(&worker_id) {
                        w.pending_offers.remove(&job_id);
                    }
                });
                set_answer(&inner, OfferAnswer::Timeout);
                tracing::info!(job_id, worker_id, "availability request timed out");
                finish(&inner, DispatchOutcome::Timeout { worker_id });
                return;
            }
            Ok(Err(_)) => {
                set_answer(&inner, OfferAnswer::WorkerClosed);
                continue;
            }
            Ok(Ok(resp)) => resp,
        };
        set_answer(
            &inner,
            OfferAnswer::Response {
                at: Instant::now(),
                response: resp.clone(),
            },
        );
        if resp.terminate {
            inner.update(|s| {
                s.end_job_by_server(&job_id, JobStatus::JsSuccess, "");
                if let Some(j) = s.jobs.get_mut(&job_id) {
                    j.outcome = DispatchOutcome::TerminatedByWorker {
                        worker_id: worker_id.clone(),
                    };
                }
            });
            return;
        }
        if !resp.available {
            continue;
        }
        // Accepted: build the token and assign.
        let cfg = &inner.config;
        inner.update(|s| {
            let Some(w) = s.workers.get_mut(&worker_id) else {
                return;
            };
            let mut attributes = resp.participant_attributes.clone();
            attributes.insert(
                AGENT_NAME_ATTRIBUTE.to_string(),
                w.snapshot.agent_name.clone(),
            );
            let room_name = job
                .room
                .as_ref()
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let token = auth::build_agent_token(
                &cfg.api_key,
                &cfg.api_secret,
                &AgentTokenParams {
                    room: &room_name,
                    identity: &resp.participant_identity,
                    name: &resp.participant_name,
                    metadata: &resp.participant_metadata,
                    attributes: &attributes,
                },
                &w.snapshot.permissions,
            );
            if let Some(state) = job.state.as_mut() {
                state.participant_identity = resp.participant_identity.clone();
            }
            w.running.insert(job_id.clone());
            w.snapshot.job_count = w.running.len();
            let msg = ServerMessage {
                message: Some(server_message::Message::Assignment(JobAssignment {
                    job: Some(job.clone()),
                    url: cfg.room_url.clone(),
                    token: token.clone(),
                })),
            };
            s.send_to_worker(&worker_id, msg);
            if let Some(j) = s.jobs.get_mut(&job_id) {
                j.outcome = DispatchOutcome::Assigned {
                    worker_id: worker_id.clone(),
                };
                j.worker_id = Some(worker_id.clone());
                j.assigned_at = Some(Instant::now());
                j.participant_identity = Some(resp.participant_identity.clone());
                j.token = Some(token);
                j.status = JobStatus::JsRunning;
            }
        });
        return;
    }
}

/// Server-side termination (`TerminateJob`): sends `JobTermination` to the
/// worker running the job and records the end at once.
pub(crate) fn terminate(inner: &Inner, job_id: &str, reason: TerminateReason) -> crate::Result<()> {
    inner.update(|s| {
        let worker_id = s
            .workers
            .values()
            .find(|w| w.snapshot.connected && w.running.contains(job_id))
            .map(|w| w.snapshot.id.clone())
            .ok_or_else(|| crate::Error::JobNotRunning(job_id.to_string()))?;
        if let Some(w) = s.workers.get_mut(&worker_id) {
            w.running.remove(job_id);
            w.snapshot.job_count = w.running.len();
        }
        let msg = ServerMessage {
            message: Some(server_message::Message::Termination(JobTermination {
                job_id: job_id.to_string(),
            })),
        };
        s.send_to_worker(&worker_id, msg);
        match reason {
            TerminateReason::Requested => s.end_job_by_server(job_id, JobStatus::JsSuccess, ""),
            TerminateReason::AgentLeftRoom => {
                s.end_job_by_server(job_id, JobStatus::JsFailed, "agent worker left the room")
            }
        }
        if let Some(j) = s.jobs.get_mut(job_id) {
            j.terminated_at = Some(Instant::now());
        }
        Ok(())
    })
}
