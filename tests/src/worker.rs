//! Helpers for worker tests: a fake LiveKit server and an in-process worker
//! running the `faulty` guest.

use std::sync::Arc;
use std::time::Duration;

use agent_host::room::offline::Offline;
use agent_host::worker::{Exit, LoadInputs, Worker, WorkerError, WorkerHandle, WorkerOptions};
use fake_livekit::livekit_protocol::{self as proto, worker_message};
use fake_livekit::{Config, FakeLiveKit, LoggedMessage};
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
