//! Every setting of a worker. The defaults, and why, are in
//! [`config::worker`](crate::config::worker).

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;

use super::load::{LoadFn, default_load};
use crate::config::worker::{
    DEFAULT_ASSIGNMENT_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_LOAD_THRESHOLD, DEFAULT_MAX_JOBS,
    DEFAULT_MAX_RETRIES, DEFAULT_OFFER_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT,
    DEFAULT_REGISTER_TIMEOUT, DEFAULT_STATUS_INTERVAL,
};
use crate::net::Network;
use crate::protocol::Dial;
use crate::runtime::JobLimits;

/// How a worker registers and behaves. `Default` gives the official Python
/// worker's behaviour wherever there is one to copy.
#[derive(Clone)]
pub struct WorkerOptions {
    /// LiveKit server URL (`ws(s)://` or `http(s)://`; a path prefix is kept).
    pub url: String,
    /// API key; the worker token is signed with the secret.
    pub api_key: String,
    /// API secret. Never reaches a guest.
    pub api_secret: String,
    /// Agent name for explicit dispatch; empty takes automatic dispatch.
    pub agent_name: String,
    /// Which jobs to take: one per room, per publisher or per participant.
    pub job_type: proto::JobType,
    /// What the agent's participant may do, sent at registration and
    /// copied by the server into each job's token.
    pub permissions: Permissions,
    /// Deployment name (`LIVEKIT_AGENT_DEPLOYMENT`); empty for none. Must
    /// pass the server's rule ([`validate_deployment`](super::validate_deployment)).
    pub deployment: String,
    /// LiveKit Cloud's worker token (`LIVEKIT_WORKER_TOKEN`), sent as the
    /// `worker_token` query parameter of `/agent`, as the official workers
    /// do; `None` (the default) sends none. The open-source server ignores it.
    pub worker_token: Option<String>,
    /// How the worker and the server API connect: proxy and TLS roots.
    /// Default: direct, built-in roots only.
    pub network: Network,
    /// Most jobs at once. Default 1,000 ([`DEFAULT_MAX_JOBS`]). The runtime's pool must have room
    /// for them ([`RuntimeConfig::max_jobs`](crate::RuntimeConfig::max_jobs)
    /// at least this; workers sharing a runtime need the sum):
    /// [`Worker::run`](super::Worker::run) refuses a worker with more.
    pub max_jobs: usize,
    /// Load at or above which the worker reports full and declines offers.
    /// Default 0.7 ([`DEFAULT_LOAD_THRESHOLD`]).
    pub load_threshold: f32,
    /// Computes the load; see [`default_load`].
    pub load_fn: LoadFn,
    /// How long a drain waits for running jobs. Default 1 h ([`DEFAULT_DRAIN_TIMEOUT`]).
    pub drain_timeout: Duration,
    /// Reconnect attempts before giving up. Default 16 ([`DEFAULT_MAX_RETRIES`]).
    pub max_retries: u32,
    /// How long the guest's `on-request` may take; no answer is a decline.
    /// Default 2 s ([`DEFAULT_OFFER_TIMEOUT`]).
    pub offer_timeout: Duration,
    /// How long an accepted offer waits for its assignment. Default 7.5 s
    /// ([`DEFAULT_ASSIGNMENT_TIMEOUT`]).
    pub assignment_timeout: Duration,
    /// How long the server may take to answer `register`. Default 10 s
    /// ([`DEFAULT_REGISTER_TIMEOUT`]).
    pub register_timeout: Duration,
    /// Period of `UpdateWorkerStatus`. Default 2.5 s ([`DEFAULT_STATUS_INTERVAL`]).
    pub status_interval: Duration,
    /// Period of WebSocket pings. Default 30 s ([`DEFAULT_PING_INTERVAL`]).
    pub ping_interval: Duration,
    /// Silence after a ping after which the connection counts as dead.
    /// Default 15 s ([`DEFAULT_PING_TIMEOUT`]).
    pub ping_timeout: Duration,
    /// Limits for every job.
    pub limits: JobLimits,
}

/// What the agent's participant may do in its rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// May subscribe to tracks.
    pub can_subscribe: bool,
    /// May publish tracks.
    pub can_publish: bool,
    /// May publish data.
    pub can_publish_data: bool,
    /// May update its own metadata and attributes.
    pub can_update_metadata: bool,
    /// Hidden from other participants.
    pub hidden: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            can_update_metadata: true,
            hidden: false,
        }
    }
}

impl Permissions {
    // `agent` is deprecated in the protocol, but the official workers still
    // set it, and servers still read it.
    #[allow(deprecated)]
    pub(crate) fn to_proto(self) -> proto::ParticipantPermission {
        proto::ParticipantPermission {
            can_subscribe: self.can_subscribe,
            can_publish: self.can_publish,
            can_publish_data: self.can_publish_data,
            can_update_metadata: self.can_update_metadata,
            hidden: self.hidden,
            // The official workers mark their participants as agents.
            agent: true,
            ..Default::default()
        }
    }
}

impl WorkerOptions {
    /// What the wire needs of these options to connect.
    pub(crate) fn dial(&self) -> Dial {
        Dial {
            url: self.url.clone(),
            api_key: self.api_key.clone(),
            api_secret: self.api_secret.clone(),
            deployment: self.deployment.clone(),
            worker_token: self.worker_token.clone(),
            network: self.network.clone(),
        }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            api_key: String::new(),
            api_secret: String::new(),
            agent_name: String::new(),
            job_type: proto::JobType::JtRoom,
            permissions: Permissions::default(),
            deployment: String::new(),
            worker_token: None,
            network: Network::default(),
            max_jobs: DEFAULT_MAX_JOBS as usize,
            load_threshold: DEFAULT_LOAD_THRESHOLD,
            load_fn: Arc::new(default_load),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            offer_timeout: DEFAULT_OFFER_TIMEOUT,
            assignment_timeout: DEFAULT_ASSIGNMENT_TIMEOUT,
            register_timeout: DEFAULT_REGISTER_TIMEOUT,
            status_interval: DEFAULT_STATUS_INTERVAL,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            limits: JobLimits::default(),
        }
    }
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field(
                "worker_token",
                &self.worker_token.as_ref().map(|_| "<redacted>"),
            )
            .field("agent_name", &self.agent_name)
            .field("job_type", &self.job_type)
            .field("max_jobs", &self.max_jobs)
            .field("load_threshold", &self.load_threshold)
            .finish_non_exhaustive()
    }
}
