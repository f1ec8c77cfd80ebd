//! Helpers for worker tests: a fake LiveKit server and an in-process worker
//! running the `faulty` guest.

use std::sync::Arc;
use std::time::Duration;

use agent_host::room::offline::Offline;
use agent_host::worker::{Exit, LoadInputs, Worker, WorkerError, WorkerHandle, WorkerOptions};
use fake_livekit::livekit_protocol::{self as proto, JobStatus, worker_message};
use fake_livekit::{
    Closer, Config, Direction, DispatchRequest, FakeLiveKit, JobId, JobRecord, LoggedMessage,
    OfferAnswer,
};
use faulty_mode::Mode;
use tokio::task::JoinHandle;

use crate::{guests, load, runtime};

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

/// A fake server with the open-source defaults.
pub async fn server() -> FakeLiveKit {
    FakeLiveKit::start(Config::default())
        .await
        .expect("starting the fake LiveKit server")
}

/// Worker options for `server`, with load counted from jobs only: the
/// default also counts CPU, which a busy test machine would turn into
/// spurious declines.
pub fn options(server: &FakeLiveKit, agent_name: &str, max_jobs: usize) -> WorkerOptions {
    WorkerOptions {
        url: server.url(),
        api_key: server.config().api_key.clone(),
        api_secret: server.config().api_secret.clone(),
        agent_name: agent_name.to_string(),
        max_jobs,
        load_fn: Arc::new(|i: &LoadInputs| {
            (i.active_jobs + i.reserved_jobs) as f32 / i.max_jobs as f32
        }),
        ..WorkerOptions::default()
    }
}

/// A running in-process worker for the `faulty` guest.
pub struct TestWorker {
    /// Controls the worker.
    pub handle: WorkerHandle,
    /// Its run.
    pub task: JoinHandle<Result<Exit, WorkerError>>,
}

/// Starts a worker with `options` running `faulty`.
pub fn start_worker(options: WorkerOptions) -> TestWorker {
    let runtime = runtime(options.max_jobs as u32);
    let plugin = load(&runtime, guests::FAULTY);
    let worker = Worker::new(options, runtime, plugin, Arc::new(Offline));
    let handle = worker.handle();
    TestWorker {
        handle,
        task: tokio::spawn(worker.run()),
    }
}

/// Waits (up to [`WAIT`]) for a worker's run to end; returns how it ended.
pub async fn run_end(task: JoinHandle<Result<Exit, WorkerError>>) -> Result<Exit, WorkerError> {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the worker ends in time")
        .expect("the worker task does not panic")
}

/// Every worker message the server received, in order.
pub fn inbound(messages: &[LoggedMessage]) -> Vec<worker_message::Message> {
    messages
        .iter()
        .filter_map(|m| match &m.dir {
            fake_livekit::Direction::Inbound(msg) => msg.message.clone(),
            _ => None,
        })
        .collect()
}

/// The worker statuses (`WS_AVAILABLE`/`WS_FULL`) the server received, in order.
pub fn worker_statuses(messages: &[LoggedMessage]) -> Vec<proto::WorkerStatus> {
    inbound(messages)
        .into_iter()
        .filter_map(|m| match m {
            worker_message::Message::UpdateWorker(u) => {
                u.status.and_then(|s| proto::WorkerStatus::try_from(s).ok())
            }
            _ => None,
        })
        .collect()
}

/// Dispatches a `faulty` job doing `mode` (its metadata) for `agent`, in a
/// room of its own.
pub fn dispatch(server: &FakeLiveKit, agent: &str, mode: &Mode) -> JobId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut req = DispatchRequest::new(format!("room-{agent}-{n}"), agent);
    req.metadata = mode.to_string();
    server.dispatch(req)
}

/// Waits until the worker reported `status` for the job (the server may
/// have stopped tracking the job, e.g. after a reconnect or a termination,
/// and still records the update).
pub async fn wait_worker_status(server: &FakeLiveKit, id: &JobId, status: JobStatus) -> JobRecord {
    server
        .wait_for_job(id, WAIT, &format!("worker status {status:?}"), |j| {
            j.worker_statuses().contains(&status)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", server.job(id)))
}

/// The worker's answer to the first offer of a job.
pub fn first_answer(job: &JobRecord) -> Option<proto::AvailabilityResponse> {
    match &job.offers.first()?.answer {
        OfferAnswer::Response { response, .. } => Some(response.clone()),
        _ => None,
    }
}

/// The `faulty` flavor the job was accepted with (see `examples/faulty`).
pub fn flavor(job: &JobRecord) -> Option<String> {
    first_answer(job)
        .filter(|a| a.available)?
        .participant_attributes
        .get("faulty.flavor")
        .cloned()
}

/// Runs a short job on `agent` and returns the flavor it ran on.
pub async fn flavor_of_next_job(server: &FakeLiveKit, agent: &str) -> String {
    let id = dispatch(server, agent, &Mode::Sleep(10));
    let job = wait_worker_status(server, &id, JobStatus::JsSuccess).await;
    flavor(&job).expect("accepted with a flavor")
}

/// Checks a drain as the server saw it since message `since`: `WS_FULL`
/// before any job finished, then a normal close frame from the worker.
pub async fn assert_drained_cleanly(server: &FakeLiveKit, since: usize) {
    let closed = server
        .wait_for_message(since, WAIT, "close", |m| {
            matches!(m.dir, Direction::Closed { .. })
        })
        .await
        .unwrap()
        .1;
    assert!(
        matches!(
            closed.dir,
            Direction::Closed {
                code: Some(1000),
                by: Closer::Worker,
                ..
            }
        ),
        "{:?}",
        closed.dir
    );
    let after = inbound(&server.messages()[since..]);
    let full_at = after
        .iter()
        .position(|m| matches!(m, worker_message::Message::UpdateWorker(u) if u.status == Some(proto::WorkerStatus::WsFull as i32)))
        .expect("WS_FULL after the drain began");
    let first_success = after
        .iter()
        .position(|m| matches!(m, worker_message::Message::UpdateJob(u) if u.status == JobStatus::JsSuccess as i32))
        .expect("jobs finished");
    assert!(
        full_at < first_success,
        "WS_FULL came before the first job finished"
    );
}
