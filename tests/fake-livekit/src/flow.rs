//! Reducing a message log to a comparable flow.
//!
//! [`summarize`] keeps, for one job, the protocol steps that matter when two
//! worker implementations are compared (offer, answer, assignment, status
//! updates, termination) and drops what differs from run to run (timestamps,
//! ids, loads). [`summarize_worker`] does the same for one connection's
//! worker-level messages, collapsing the periodic status reports.

use livekit_protocol::{
    JobStatus, JobType, ParticipantPermission, WorkerStatus, server_message, worker_message,
};

use crate::log::{Closer, Direction, LoggedMessage};

/// One job-level protocol step. `W→S` steps come from the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowStep {
    /// S→W `availability` (the offer).
    Offer,
    /// W→S `availability{available:true}`. The job id inside the identity is
    /// replaced by `<job>`, so Python's default reads `agent-<job>`.
    Accept {
        /// `participant_identity` with the job id replaced by `<job>`.
        participant_identity: String,
        /// Whether `participant_name` was non-empty.
        has_name: bool,
        /// Sorted keys of `participant_attributes`.
        attribute_keys: Vec<String>,
    },
    /// W→S `availability{available:false}`.
    Decline {
        /// The `terminate` flag.
        terminate: bool,
    },
    /// S→W `assignment`.
    Assignment {
        /// Whether `url` was set (never, on OSS).
        has_url: bool,
    },
    /// W→S `update_job`.
    Status {
        /// Reported status.
        status: JobStatus,
        /// Whether `error` was non-empty.
        has_error: bool,
    },
    /// S→W `termination`.
    Termination,
    /// W→S `migrate_job` listing this job.
    Migrate,
}

/// Job-level steps for `job_id`, in log order.
pub fn summarize(messages: &[LoggedMessage], job_id: &str) -> Vec<FlowStep> {
    use server_message::Message as S;
    use worker_message::Message as W;
    let mut out = Vec::new();
    for m in messages {
        match &m.dir {
            Direction::Outbound(msg) => match &msg.message {
                Some(S::Availability(a)) if a.job.as_ref().is_some_and(|j| j.id == job_id) => {
                    out.push(FlowStep::Offer)
                }
                Some(S::Assignment(a)) if a.job.as_ref().is_some_and(|j| j.id == job_id) => out
                    .push(FlowStep::Assignment {
                        has_url: a.url.is_some(),
                    }),
                Some(S::Termination(t)) if t.job_id == job_id => out.push(FlowStep::Termination),
                _ => {}
            },
            Direction::Inbound(msg) => match &msg.message {
                Some(W::Availability(a)) if a.job_id == job_id => {
                    if a.available && !a.terminate {
                        let mut attribute_keys: Vec<_> =
                            a.participant_attributes.keys().cloned().collect();
                        attribute_keys.sort();
                        out.push(FlowStep::Accept {
                            participant_identity: a.participant_identity.replace(job_id, "<job>"),
                            has_name: !a.participant_name.is_empty(),
                            attribute_keys,
                        });
                    } else {
                        out.push(FlowStep::Decline {
                            terminate: a.terminate,
                        });
                    }
                }
                Some(W::UpdateJob(u)) if u.job_id == job_id => out.push(FlowStep::Status {
                    status: JobStatus::try_from(u.status).unwrap_or(JobStatus::JsPending),
                    has_error: !u.error.is_empty(),
                }),
                Some(W::MigrateJob(mj)) if mj.job_ids.iter().any(|j| j == job_id) => {
                    out.push(FlowStep::Migrate)
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// One worker-level step of a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerStep {
    /// The upgrade succeeded.
    Connected,
    /// W→S `register` (the version string is left out: it differs per SDK).
    Register {
        /// Job type.
        job_type: JobType,
        /// Agent name.
        agent_name: String,
        /// `allowed_permissions` as sent.
        permissions: Option<ParticipantPermission>,
        /// Deployment.
        deployment: String,
    },
    /// S→W `register` response.
    Registered,
    /// W→S `update_worker` whose status differs from the previous one
    /// (periodic repeats are collapsed; `None` = status field absent).
    Status(Option<WorkerStatus>),
    /// W→S `ping`.
    Ping,
    /// W→S `migrate_job` with this many ids.
    Migrate(usize),
    /// The connection ended.
    Closed {
        /// Close code, if a close frame was exchanged.
        code: Option<u16>,
        /// Who ended it.
        by: Closer,
    },
}

/// Worker-level steps of one connection (see [`LoggedMessage::connection`]).
pub fn summarize_worker(messages: &[LoggedMessage], connection: u64) -> Vec<WorkerStep> {
    use server_message::Message as S;
    use worker_message::Message as W;
    let mut out: Vec<WorkerStep> = Vec::new();
    let mut last_status: Option<Option<WorkerStatus>> = None;
    for m in messages.iter().filter(|m| m.connection == connection) {
        let step = match &m.dir {
            Direction::Connected { .. } => WorkerStep::Connected,
            Direction::Closed { code, by, .. } => WorkerStep::Closed {
                code: *code,
                by: *by,
            },
            Direction::Outbound(msg) => match &msg.message {
                Some(S::Register(_)) => WorkerStep::Registered,
                _ => continue,
            },
            Direction::Inbound(msg) => match &msg.message {
                Some(W::Register(r)) => WorkerStep::Register {
                    job_type: JobType::try_from(r.r#type).unwrap_or_default(),
                    agent_name: r.agent_name.clone(),
                    permissions: r.allowed_permissions.clone(),
                    deployment: r.deployment.clone(),
                },
                Some(W::UpdateWorker(u)) => {
                    let status = u
                        .status
                        .map(|s| WorkerStatus::try_from(s).unwrap_or_default());
                    if last_status == Some(status) {
                        continue;
                    }
                    last_status = Some(status);
                    WorkerStep::Status(status)
                }
                Some(W::Ping(_)) => WorkerStep::Ping,
                Some(W::MigrateJob(mj)) => WorkerStep::Migrate(mj.job_ids.len()),
                _ => continue,
            },
            Direction::Rejected { .. } => continue,
        };
        out.push(step);
    }
    out
}
