//! Rooms: the queues and timeouts of room sessions, the accept limits
//! LiveKit sets on joining, and the server API.
//!
//! Policy: every queue a guest can fill is bounded (and its contents
//! charged to the job's host memory); every call into LiveKit's client
//! library or the server API has a deadline.

use std::time::Duration;

/// Capacity of each agent session's event queue in a sim room: 1,024, a
/// console conversation's worth many times over.
pub const SIM_SESSION_QUEUE: usize = 1024;

/// Unread events (besides audio frames) a LiveKit room session's queue has
/// room for; a job that lets its queue fill fails.
pub const EVENT_QUEUE: usize = 4096;

/// Most unread audio frames per session (one second of 10 ms frames);
/// newer ones are dropped.
pub const AUDIO_QUEUE: usize = 100;

/// How long a connect may take, the library's own retries included.
pub const ROOM_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long other calls wait for the library's callback.
pub const ROOM_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long leaving waits for the library to confirm.
pub const ROOM_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Audio the published track queues before `write` waits, in ms (the
/// library's `CaptureAudioFrame` completes once the frame fits in this
/// queue).
pub const PUBLISH_QUEUE_MS: u32 = 1000;

/// Most async callbacks of LiveKit's client library kept for callers that
/// have not looked yet; past it the oldest are dropped (it only grows if
/// callers vanish mid-request).
pub const EARLY_CALLBACKS: usize = 4096;

/// How long a finished job stays in its room waiting for its `RoomExit`:
/// a status write on a live connection takes well under a second, so this
/// only bounds a dead or stalled connection, which must not keep the room
/// (and the agent participant in it) open.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Lifetime of the participant token `agent-host connect` mints for its
/// one job: 6 h, longer than any session a developer runs by hand.
pub const PARTICIPANT_TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);

/// Longest participant identity LiveKit lets join (`MaxParticipantIdentityLength`).
pub const MAX_IDENTITY: usize = 256;

/// Longest participant name LiveKit lets join (`MaxParticipantNameLength`).
pub const MAX_NAME: usize = 256;

/// Largest participant metadata LiveKit lets join (`MaxMetadataSize`).
pub const MAX_METADATA: usize = 512 << 10;

/// Largest total of attribute keys and values LiveKit lets join (`MaxAttributesSize`).
pub const MAX_ATTRIBUTES: usize = 64 << 10;

/// Lifetime of the token of one server API call: a minute, far more than
/// a call may take ([`SERVER_API_CALL_TIMEOUT`]) even with clocks a little
/// apart, and short enough that a token seen on the way is soon useless;
/// every call signs its own.
pub const SERVER_API_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Longest one server API call may take, connect to last byte: 10 s, as
/// long as the worker connection gets to open.
pub const SERVER_API_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a server API answer that are read.
pub const SERVER_API_MAX_ANSWER_BYTES: usize = 64 << 10;

/// Largest byte stream delivered to a job: 4 MiB, 40 s of 48 kHz stereo
/// pre-connect audio (clients keep a few seconds), or a small file. Bytes
/// past it are dropped and the stream arrives marked incomplete.
pub const BYTE_STREAM_MAX_BYTES: usize = 4 << 20;

/// Largest RPC payload, response or error data: 15 KiB, LiveKit's
/// `MAX_PAYLOAD_BYTES` (its SDKs refuse larger with 1402 or 1504).
pub const RPC_MAX_PAYLOAD_BYTES: usize = 15 * 1024;

/// Longest response timeout a job may ask for when it performs an RPC:
/// 60 s. LiveKit's SDKs default to 15 s (10 s before 2025); a minute
/// bounds what a job can leave pending without cutting real uses short.
pub const RPC_MAX_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most RPC methods a job may register: 64, far more than an agent's
/// handful, few enough that registration cannot grow the host's tables
/// without bound.
pub const RPC_MAX_METHODS: usize = 64;

/// Most byte-stream topics a job may accept: 16, for the same reason.
pub const BYTE_STREAM_MAX_TOPICS: usize = 16;
