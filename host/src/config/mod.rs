//! Every default and bound of agent-host, in one place, each with its
//! reason where it is set.
//!
//! Policy and invariants:
//! - a default is stated once, here; the structs that hold settings
//!   ([`JobLimits`](crate::JobLimits), [`WorkerOptions`](crate::worker::WorkerOptions),
//!   [`RuntimeConfig`](crate::RuntimeConfig)) take their `Default` from
//!   these constants, and `--help` shows them (`host/src/cli/defaults.rs`);
//! - `DEFAULT_*` is the default of a setting an operator or embedder can
//!   change; every other constant is a fixed bound, with the reason it is
//!   fixed;
//! - defaults depend on nothing: this module imports nothing from the rest
//!   of the crate, so any part may read it;
//! - the README's flag and limit tables and SECURITY.md's limits are
//!   checked against these constants by `host/tests/defaults.rs`.
//!
//! By concern:
//! - [`job`]: per-job limits (memory, CPU, payloads, output bounds);
//! - [`worker`]: dispatch and the LiveKit wire;
//! - [`engine`]: the wasmtime engine and its pool;
//! - [`net`]: outbound HTTP caps and connection buffers;
//! - [`rooms`]: room sessions, accept limits, the server API;
//! - [`ops`]: the health server and plugin watching;
//! - [`units`]: how sizes and durations are written.
//!
//! Every timeout, in one table:
//!
//! | timeout | default | constant |
//! |---|---|---|
//! | a guest computing without a host call | 1 s | [`job::DEFAULT_CPU_SLICE`] |
//! | a plugin's `prewarm`, once per version | 30 s | [`job::PREWARM_TIMEOUT`] |
//! | a job in total | none | [`job::DEFAULT_WALL_CLOCK`] |
//! | a terminated job returning from `run` | 10 s | [`job::DEFAULT_TERMINATION_GRACE`] |
//! | CPU quota window | 10 s | [`job::DEFAULT_CPU_WINDOW`] |
//! | epoch tick | 10 ms | [`engine::DEFAULT_EPOCH_TICK`] |
//! | a drain | 1 h | [`worker::DEFAULT_DRAIN_TIMEOUT`] |
//! | the guest's `on-request` | 2 s | [`worker::DEFAULT_OFFER_TIMEOUT`] |
//! | an accepted offer's assignment | 7.5 s | [`worker::DEFAULT_ASSIGNMENT_TIMEOUT`] |
//! | the `register` answer | 10 s | [`worker::DEFAULT_REGISTER_TIMEOUT`] |
//! | opening the worker connection | 10 s | [`worker::CONNECT_TIMEOUT`] |
//! | status period | 2.5 s | [`worker::DEFAULT_STATUS_INTERVAL`] |
//! | ping period | 30 s | [`worker::DEFAULT_PING_INTERVAL`] |
//! | silence after a ping | 15 s | [`worker::DEFAULT_PING_TIMEOUT`] |
//! | reconnect backoff step, longest wait | 2 s, 10 s | [`worker::RECONNECT_STEP`], [`worker::RECONNECT_MAX_DELAY`] |
//! | the worker's token | 10 min | [`worker::WORKER_TOKEN_TTL`] |
//! | outbound HTTP: connect, first byte, between bytes | 10 s | [`net::DEFAULT_HTTP_TIMEOUT`] |
//! | joining a LiveKit room | 60 s | [`rooms::ROOM_CONNECT_TIMEOUT`] |
//! | other calls into LiveKit's client library | 30 s | [`rooms::ROOM_CALL_TIMEOUT`] |
//! | leaving a LiveKit room | 5 s | [`rooms::ROOM_DISCONNECT_TIMEOUT`] |
//! | a finished job waiting for its status write | 5 s | [`rooms::LEAVE_TIMEOUT`] |
//! | one server API call | 10 s | [`rooms::SERVER_API_CALL_TIMEOUT`] |
//! | a server API call's token | 60 s | [`rooms::SERVER_API_TOKEN_TTL`] |
//! | `connect`'s participant token | 6 h | [`rooms::PARTICIPANT_TOKEN_TTL`] |
//! | longest RPC response timeout a job may ask for | 60 s | [`rooms::RPC_MAX_RESPONSE_TIMEOUT`] |
//! | health server after a failed accept | 100 ms | [`ops::ACCEPT_RETRY`] |
//! | file-change debounce | 300 ms | [`ops::WATCH_DEBOUNCE`] |

pub mod engine;
pub mod job;
pub mod net;
pub mod ops;
pub mod rooms;
pub mod units;
pub mod worker;
