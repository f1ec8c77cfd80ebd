//! The worker loop: one task owns all worker state; the server's messages
//! (through the protocol's [`Link`]), offer decisions, job ends, timers and
//! commands all feed into it, so there are no locks around the
//! job table and every decision sees a consistent picture.
//!
//! Offers: one job id, one answer. The same offer again while its decision
//! is under way starts nothing and gets no answer of its own (the answer
//! under way is the one the server waits for); again once accepted or
//! running, it is declined.
//!
//! Job statuses, as the open-source server reads them (`pkg/agent/worker.go`):
//! - a job's final status is written to the socket *before* its session
//!   leaves the room ([`RoomExit`] is released after the send): the server
//!   records a job whose agent left the room while the job was live as
//!   FAILED "agent worker left the room" and drops any later status;
//! - an assignment the worker will not run (no accepted offer for it: never
//!   offered, declined, released after the assignment timeout, or voided by
//!   a reconnect) is answered with FAILED and the reason, so the server
//!   keeps no RUNNING job nobody runs; a second assignment for a job that
//!   runs here starts nothing and is answered with RUNNING (FAILED would end
//!   the server's record of a job that does run, and drop its final status);
//! - statuses that cannot be sent wait in an outbox for the next
//!   connection, where the open-source server, which forgot this worker's
//!   jobs when the connection dropped, ignores them.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use livekit_protocol as proto;
use livekit_protocol::server_message::Message as ServerMsg;
use livekit_protocol::worker_message::Message as WorkerMsg;
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, interval, timeout};

use super::load::{CpuSampler, LoadInputs};
use super::status::{ConnectionState, JobEntry, Metrics, WorkerShared};
use super::trim::HeapTrim;
use super::{Command, Exit, SDK_VERSION, Worker, WorkerError};
use crate::protocol::convert::{dispatch_info, job_request};
use crate::protocol::{Attempt, ConnectError, GiveUp, Link, LinkSettings, Wire};
use crate::runtime::OfferError;
use crate::wit::Decision;
use crate::{Offer, Outcome, PreparedJob, RoomExit, Terminator};

/// Attribute the official workers add to the agent participant.
const AGENT_NAME_ATTRIBUTE: &str = "lk.agent.name";

/// An offer's decision, from the task that asked the guest.
struct Decided {
    job: proto::Job,
    /// The connection the offer came on (see [`Link::generation`]).
    generation: u64,
    result: Result<Result<Offer, OfferError>, tokio::time::error::Elapsed>,
}

/// A running job's end: its id, outcome, and its way out of the room.
type Ending = BoxFuture<'static, (String, Outcome, RoomExit)>;

struct Accepted {
    job: PreparedJob,
    deadline: Instant,
}

struct Running {
    terminator: Terminator,
    /// Digest of the plugin version the job runs on.
    plugin: String,
    /// Set when the drain timeout already reported the job as failed (and
    /// counted it in `jobs_failed`).
    reported: bool,
}

/// The worker loop's state: the worker, its link to the server, and every
/// offer and job in flight.
pub(super) struct Dispatcher {
    worker: Worker,
    link: Link,
    decided_tx: mpsc::UnboundedSender<Decided>,
    decided: mpsc::UnboundedReceiver<Decided>,
    /// Offers whose decision is under way: job id and the connection the
    /// offer came on. A duplicate of one of them starts nothing (see
    /// `on_offer`).
    deciding: HashSet<(String, u64)>,
    accepted: HashMap<String, Accepted>,
    running: HashMap<String, Running>,
    /// The ends of the running jobs, polled by the loop itself: a waiter
    /// task per job would cost a spawn per start, and that spawn would push
    /// the job's own task out of tokio's LIFO slot behind every queued
    /// offer, which is what made job starts wait in a burst.
    endings: FuturesUnordered<Ending>,
    /// Running jobs per plugin digest, kept up to date as jobs start and
    /// end: rebuilding it from `running` on every event cost O(jobs) per
    /// event, which dominated the worker loop at thousands of jobs.
    by_version: BTreeMap<String, usize>,
    /// Job statuses waiting for a connection, with the room their job
    /// still holds (released once sent, or after `LEAVE_TIMEOUT` anyway).
    outbox: VecDeque<(proto::UpdateJobStatus, Option<RoomExit>)>,
    draining: Option<Instant>,
    cpu: CpuSampler,
    load: f32,
    /// Gives the heap of ended jobs back to the system after a burst.
    heap: HeapTrim,
}

impl Dispatcher {
    pub(super) fn new(worker: Worker) -> Self {
        let (decided_tx, decided) = mpsc::unbounded_channel();
        let o = &worker.options;
        let link = Link::new(LinkSettings {
            dial: o.dial(),
            register: proto::RegisterWorkerRequest {
                r#type: o.job_type as i32,
                agent_name: o.agent_name.clone(),
                version: SDK_VERSION.to_string(),
                allowed_permissions: Some(o.permissions.to_proto()),
                deployment: o.deployment.clone(),
                ..Default::default()
            },
            register_timeout: o.register_timeout,
            max_retries: o.max_retries,
            ping_interval: o.ping_interval,
            ping_timeout: o.ping_timeout,
        });
        Self {
            worker,
            link,
            decided_tx,
            decided,
            deciding: HashSet::new(),
            accepted: HashMap::new(),
            running: HashMap::new(),
            endings: FuturesUnordered::new(),
            by_version: BTreeMap::new(),
            outbox: VecDeque::new(),
            draining: None,
            cpu: CpuSampler::new(),
            load: 0.0,
            heap: HeapTrim::default(),
        }
    }

    fn shared(&self) -> &WorkerShared {
        &self.worker.shared
    }

    pub(super) async fn run(mut self) -> Result<Exit, WorkerError> {
        let mut status_tick = interval(self.worker.options.status_interval);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            // Checked after every event, so a drain closes as soon as its
            // last job's status is out.
            if self.draining_done() {
                return Ok(self.close(Exit::Drained).await);
            }
            if self.link.attempt_due() {
                match self.link.connect().await {
                    Attempt::Registered {
                        worker_id,
                        reconnected,
                    } => self.on_registered(worker_id, reconnected).await,
                    Attempt::Retrying {
                        attempt,
                        error,
                        delay,
                    } => {
                        tracing::warn!(%error, attempt, retry_in = ?delay, "could not connect to LiveKit");
                        self.shared()
                            .update(|s| s.connection = ConnectionState::Reconnecting { attempt });
                    }
                    Attempt::GaveUp(give_up) => {
                        self.shared()
                            .update(|s| s.connection = ConnectionState::Failed);
                        return Err(match give_up {
                            GiveUp::Refused(err @ ConnectError::Unauthorized { .. }) => {
                                WorkerError::Unauthorized(err)
                            }
                            GiveUp::Refused(err) => WorkerError::BadUrl(err),
                            GiveUp::Exhausted {
                                attempts,
                                last_error,
                            } => WorkerError::ConnectionFailed {
                                attempts,
                                last_error,
                            },
                        });
                    }
                }
                continue;
            }

            tokio::select! {
                wire = self.link.next() => match wire {
                    Wire::Message(message) => self.on_server_message(*message).await,
                    Wire::Lost(reason) => self.connection_lost(&reason),
                    Wire::PingDue => {
                        if let Err(reason) = self.link.keepalive().await {
                            self.connection_lost(&reason);
                        }
                    }
                    // The loop's top connects.
                    Wire::AttemptDue => {}
                },
                Some(decided) = self.decided.recv() => self.on_offer_decided(decided).await,
                Some((job_id, outcome, exit)) = self.endings.next(), if !self.endings.is_empty() => {
                    self.on_job_ended(job_id, outcome, exit).await
                }
                command = self.worker.commands.recv() => match command {
                    Some(Command::Drain) => self.start_drain().await,
                    Some(Command::Stop) | None => return Ok(self.close(Exit::Stopped).await),
                },
                _ = status_tick.tick() => {
                    self.sweep_assignments();
                    if self.drain_timed_out() {
                        self.fail_remaining_jobs().await;
                    }
                    self.cpu.sample();
                    self.heap.tick();
                    self.send_status().await;
                }
            }
        }
    }

    /// Registered (again): reports status, migrates running jobs and
    /// flushes queued statuses.
    async fn on_registered(&mut self, worker_id: String, reconnected: bool) {
        let o = &self.worker.options;
        tracing::info!(%worker_id, url = %o.url, agent_name = %o.agent_name, "registered with LiveKit");
        self.shared()
            .update(|s| s.connection = ConnectionState::Registered { worker_id });
        self.send_status().await;
        if !self.running.is_empty() {
            let job_ids = self.running.keys().cloned().collect();
            self.send(WorkerMsg::MigrateJob(proto::MigrateJobRequest { job_ids }))
                .await;
        }
        while let Some((update, exit)) = self.outbox.pop_front() {
            if !self.send(WorkerMsg::UpdateJob(update.clone())).await {
                self.outbox.push_front((update, exit));
                break;
            }
            if let Some(exit) = exit {
                exit.release();
            }
        }
        if reconnected {
            Metrics::inc(&self.shared().metrics.reconnects);
        }
    }

    /// Sends a message; on failure the connection counts as lost.
    async fn send(&mut self, message: WorkerMsg) -> bool {
        match self.link.send(message).await {
            Ok(sent) => sent,
            Err(reason) => {
                self.connection_lost(&reason);
                false
            }
        }
    }

    /// The link lost its connection: what was offered on it is void.
    fn connection_lost(&mut self, reason: &str) {
        tracing::warn!(%reason, running = self.running.len(), "lost the connection to LiveKit; reconnecting, jobs keep running");
        // Offers of the old connection are void: the server forgot them.
        self.accepted.clear();
        self.shared()
            .update(|s| s.connection = ConnectionState::Reconnecting { attempt: 0 });
        self.publish_counts();
    }

    async fn on_server_message(&mut self, message: ServerMsg) {
        match message {
            ServerMsg::Availability(request) => self.on_offer(request).await,
            ServerMsg::Assignment(assignment) => self.on_assignment(assignment).await,
            ServerMsg::Termination(termination) => self.on_termination(&termination.job_id),
            ServerMsg::Register(_) => {
                tracing::warn!("ignoring an unexpected second register response")
            }
            ServerMsg::Pong(_) => {}
            ServerMsg::GoAway(go_away) => {
                // Not sent by the open-source server; neither official
                // worker handles it. Reconnecting is the safe reading.
                if self.link.abandon() {
                    self.connection_lost(&format!("server asked to go away: {}", go_away.reason));
                }
            }
        }
    }

    async fn on_offer(&mut self, request: proto::AvailabilityRequest) {
        let Some(job) = request.job else {
            tracing::warn!("ignoring an offer without a job");
            return;
        };
        let id = job.id.clone();
        let generation = self.link.generation();
        // The same offer again while the guest is still deciding the first
        // gets no instance and no answer of its own. The server keeps one
        // pending answer per job and worker, matched by job id (it refuses
        // to send a duplicate offer itself, `Worker.AssignJob`, and a job
        // whose offer timed out is not offered again): the answer under way
        // answers the duplicate too, and a decline now would be taken for
        // the answer and void the accept that may follow.
        if self.deciding.contains(&(id.clone(), generation)) {
            tracing::warn!(job_id = %id, "ignoring a duplicate offer for a job whose decision is under way; its answer answers both");
            return;
        }
        let busy = self.accepted.contains_key(&id) || self.running.contains_key(&id);
        let reason = if self.draining.is_some() {
            Some("draining")
        } else if busy {
            Some("duplicate offer for a job this worker already has")
        } else if self.reserved() + self.running.len() >= self.worker.options.max_jobs
            || self.current_load() >= self.worker.options.load_threshold
        {
            Some("full")
        } else {
            None
        };
        if let Some(reason) = reason {
            tracing::info!(job_id = %id, %reason, "declining offer");
            self.decline(&id, false).await;
            return;
        }
        self.deciding.insert((id, generation));
        self.publish_counts();
        let runtime = self.worker.runtime.clone();
        // Read once: the job runs on the version current at its offer.
        let plugin = self.shared().plugins.current();
        let limits = self.worker.options.limits.clone();
        let decided = self.decided_tx.clone();
        let offer_timeout = self.worker.options.offer_timeout;
        let (request, dispatch) = (job_request(&job), dispatch_info(&job));
        tokio::spawn(async move {
            let offer = runtime.offer_dispatched(&plugin, request, dispatch, limits);
            let result = timeout(offer_timeout, offer).await;
            let _ = decided.send(Decided {
                job,
                generation,
                result,
            });
        });
    }

    async fn on_offer_decided(&mut self, decided: Decided) {
        let Decided {
            job,
            generation,
            result,
        } = decided;
        let id = job.id;
        self.deciding.remove(&(id.clone(), generation));
        if generation != self.link.generation() || !self.link.is_connected() {
            tracing::info!(job_id = %id, "dropping an offer decided after the connection it came on was lost");
            self.publish_counts();
            return;
        }
        match result {
            Ok(Ok(Offer {
                decision: Decision::Accept(options),
                job: Some(prepared),
            })) if self.draining.is_none() => {
                let identity = prepared.info().identity.clone();
                let mut attributes: HashMap<String, String> =
                    options.attributes.into_iter().collect();
                attributes.insert(
                    AGENT_NAME_ATTRIBUTE.into(),
                    self.worker.options.agent_name.clone(),
                );
                let accept = proto::AvailabilityResponse {
                    job_id: id.clone(),
                    available: true,
                    participant_identity: identity,
                    participant_name: options.name,
                    participant_metadata: options.metadata,
                    participant_attributes: attributes,
                    ..Default::default()
                };
                Metrics::inc(&self.shared().metrics.offers_accepted);
                self.accepted.insert(
                    id,
                    Accepted {
                        job: prepared,
                        deadline: Instant::now() + self.worker.options.assignment_timeout,
                    },
                );
                self.publish_counts();
                self.send(WorkerMsg::Availability(accept)).await;
            }
            Ok(Ok(Offer {
                decision: Decision::RejectAndTerminate,
                ..
            })) => {
                tracing::info!(job_id = %id, "the agent rejected the job and asked to terminate it");
                self.decline(&id, true).await;
            }
            Ok(Ok(_)) => {
                tracing::info!(job_id = %id, "declining offer");
                self.decline(&id, false).await;
            }
            Ok(Err(err)) => {
                tracing::warn!(job_id = %id, error = %format!("{err:#}"), "declining offer: the agent could not answer");
                self.decline(&id, false).await;
            }
            Err(_) => {
                tracing::warn!(job_id = %id, timeout = ?self.worker.options.offer_timeout, "declining offer: the agent did not answer in time");
                self.decline(&id, false).await;
            }
        }
    }

    /// Declines an offer; with `terminate`, asks the server to offer the job
    /// to no one else.
    async fn decline(&mut self, job_id: &str, terminate: bool) {
        Metrics::inc(&self.shared().metrics.offers_declined);
        self.publish_counts();
        self.send(WorkerMsg::Availability(proto::AvailabilityResponse {
            job_id: job_id.to_string(),
            available: false,
            terminate,
            ..Default::default()
        }))
        .await;
    }

    async fn on_assignment(&mut self, assignment: proto::JobAssignment) {
        let Some(job) = assignment.job else {
            tracing::warn!("ignoring an assignment without a job");
            return;
        };
        if self.running.contains_key(&job.id) {
            tracing::warn!(job_id = %job.id, "a second assignment for a job that runs here; it keeps running");
            self.report(&job.id, proto::JobStatus::JsRunning, String::new(), None)
                .await;
            return;
        }
        let Some(accepted) = self.accepted.remove(&job.id) else {
            let reason = "assignment for a job this worker has no accepted offer for (never offered, declined, released after the assignment timeout, or offered on a lost connection)";
            tracing::warn!(job_id = %job.id, %reason, "refusing the assignment");
            self.report(&job.id, proto::JobStatus::JsFailed, reason.into(), None)
                .await;
            return;
        };
        // The open-source server never sets a URL; then the worker's own is used.
        let url = assignment
            .url
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| self.worker.options.url.clone());
        let plugin = accepted.job.plugin().version().digest.clone();
        let mut prepared = accepted.job;
        if let Some(service) = &self.worker.room_service {
            prepared.grant_room_service(service);
        }
        let handle = prepared.start(self.worker.transport.clone(), url, assignment.token);
        let terminator = handle.terminator();
        self.shared()
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                job.id.clone(),
                JobEntry {
                    room: handle.info().room.name.clone(),
                    plugin: plugin.clone(),
                    usage: handle.usage(),
                },
            );
        *self.by_version.entry(plugin.clone()).or_insert(0) += 1;
        let job_id = job.id.clone();
        self.endings.push(Box::pin(async move {
            let (outcome, exit) = handle.ended().await;
            (job_id, outcome, exit)
        }));
        self.running.insert(
            job.id.clone(),
            Running {
                terminator,
                plugin,
                reported: false,
            },
        );
        Metrics::inc(&self.shared().metrics.jobs_started);
        self.publish_counts();
        self.report(&job.id, proto::JobStatus::JsRunning, String::new(), None)
            .await;
    }

    fn on_termination(&mut self, job_id: &str) {
        if let Some(running) = self.running.get(job_id) {
            tracing::info!(%job_id, "the server terminated the job");
            running.terminator.terminate();
        } else if self.accepted.remove(job_id).is_some() {
            self.publish_counts();
        } else {
            tracing::debug!(%job_id, "termination for a job that is not running");
        }
    }

    async fn on_job_ended(&mut self, job_id: String, outcome: Outcome, exit: RoomExit) {
        let Some(running) = self.running.remove(&job_id) else {
            return;
        };
        self.heap.job_ended();
        let entry = self
            .shared()
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job_id);
        if let Some(entry) = entry {
            self.shared()
                .metrics
                .job_cpu
                .observe(entry.usage.cpu_time());
        }
        if let Some(n) = self.by_version.get_mut(&running.plugin) {
            *n -= 1;
            if *n == 0 {
                self.by_version.remove(&running.plugin);
            }
        }
        let (status, error) = match outcome {
            Outcome::Success => (proto::JobStatus::JsSuccess, String::new()),
            // The Python worker also reports a terminated job that
            // shut down cleanly as a success.
            Outcome::Terminated => (proto::JobStatus::JsSuccess, String::new()),
            Outcome::Failed(reason) => (proto::JobStatus::JsFailed, reason),
        };
        // A job the drain timeout reported was counted as failed then: one
        // job, one final status, one count.
        if !running.reported {
            let m = &self.shared().metrics;
            Metrics::inc(match (&status, running.terminator.is_terminated()) {
                (proto::JobStatus::JsFailed, _) => &m.jobs_failed,
                (_, true) => &m.jobs_terminated,
                _ => &m.jobs_succeeded,
            });
        }
        self.publish_counts();
        if running.reported {
            exit.release();
        } else {
            self.report(&job_id, status, error, Some(exit)).await;
        }
    }

    /// Sends a job status now, or queues it until the next connection;
    /// `exit` (the job's room) is released once the status is written.
    async fn report(
        &mut self,
        job_id: &str,
        status: proto::JobStatus,
        error: String,
        exit: Option<RoomExit>,
    ) {
        let update = proto::UpdateJobStatus {
            job_id: job_id.to_string(),
            status: status as i32,
            error,
        };
        if !self.send(WorkerMsg::UpdateJob(update.clone())).await {
            self.outbox.push_back((update, exit));
        } else if let Some(exit) = exit {
            exit.release();
        }
    }

    fn reserved(&self) -> usize {
        self.deciding.len() + self.accepted.len()
    }

    fn current_load(&self) -> f32 {
        let inputs = LoadInputs {
            active_jobs: self.running.len(),
            reserved_jobs: self.reserved(),
            max_jobs: self.worker.options.max_jobs,
            cpu_share: self.cpu.share(),
        };
        (self.worker.options.load_fn)(&inputs)
    }

    fn publish_counts(&mut self) {
        let (active, reserved) = (self.running.len(), self.reserved());
        self.load = self.current_load();
        let full = self.draining.is_some() || self.load >= self.worker.options.load_threshold;
        let load = self.load;
        // One entry per plugin version: a handful at most.
        let by_version = self.by_version.clone();
        self.shared().update(|s| {
            s.jobs_by_version = by_version;
            s.active_jobs = active;
            s.reserved_jobs = reserved;
            s.load = load;
            s.full = full;
        });
    }

    async fn send_status(&mut self) {
        self.publish_counts();
        let full = self.draining.is_some() || self.load >= self.worker.options.load_threshold;
        let status = if full {
            proto::WorkerStatus::WsFull
        } else {
            proto::WorkerStatus::WsAvailable
        };
        let update = proto::UpdateWorkerStatus {
            status: Some(status as i32),
            load: self.load,
            job_count: u32::try_from(self.running.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        self.send(WorkerMsg::UpdateWorker(update)).await;
    }

    fn sweep_assignments(&mut self) {
        let now = Instant::now();
        let before = self.accepted.len();
        self.accepted.retain(|id, a| {
            let keep = a.deadline > now;
            if !keep {
                tracing::warn!(job_id = %id, "no assignment came for an accepted offer; releasing it");
            }
            keep
        });
        if self.accepted.len() != before {
            self.publish_counts();
        }
    }

    async fn start_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        tracing::info!(running = self.running.len(), timeout = ?self.worker.options.drain_timeout, "draining: declining new offers, waiting for running jobs");
        self.draining = Some(Instant::now());
        self.shared().update(|s| s.draining = true);
        self.send_status().await;
    }

    fn draining_done(&self) -> bool {
        self.draining.is_some()
            && self.deciding.is_empty()
            && self.accepted.is_empty()
            && self.running.values().all(|r| r.reported)
            && self.outbox.is_empty()
    }

    fn drain_timed_out(&self) -> bool {
        self.draining
            .is_some_and(|since| since.elapsed() >= self.worker.options.drain_timeout)
    }

    /// At the drain timeout: what is still running fails with "drain timeout".
    async fn fail_remaining_jobs(&mut self) {
        let ids: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| !r.reported)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            tracing::warn!(job_id = %id, "drain timed out; failing the job");
            if let Some(running) = self.running.get_mut(&id) {
                running.reported = true;
                running.terminator.terminate();
            }
            Metrics::inc(&self.shared().metrics.jobs_failed);
            self.report(
                &id,
                proto::JobStatus::JsFailed,
                "drain timeout".into(),
                None,
            )
            .await;
        }
        self.accepted.clear();
    }

    async fn close(&mut self, exit: Exit) -> Exit {
        self.link.close().await;
        self.shared()
            .update(|s| s.connection = ConnectionState::Closed);
        tracing::info!(?exit, "worker stopped");
        exit
    }
}
