//! Outbound network, HTTP and WebSockets: the guest HTTP and WebSocket
//! caps (settings of [`JobLimits`](crate::JobLimits)) and the buffers each
//! connection holds.
//!
//! Policy: every byte a guest makes the host buffer is bounded, and what a
//! request in flight or an open socket holds is charged to the job's
//! host-memory budget with the sizes below.

use std::time::Duration;

/// Default cap on an outbound request body: 1 MiB, far above any API call
/// an agent makes (a prompt, a short audio clip).
pub const DEFAULT_HTTP_REQUEST_BYTES: u64 = 1 << 20;

/// Default cap on an outbound response body: 4 MiB, room for a synthesised
/// reply of several seconds or a model's long answer.
pub const DEFAULT_HTTP_RESPONSE_BYTES: u64 = 4 << 20;

/// Default longest wait of an outbound request to connect, for the first
/// response byte and between response bytes (each): 10 s, longer than any
/// healthy API takes to start answering, short enough that a stalled one
/// frees the job.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest chunk a guest writes into an outgoing body at once (the
/// `p2_outgoing_body_chunk_size` hook); with wasmtime-wasi-http's one
/// buffered chunk, what an unsent body holds on the host.
pub const BODY_CHUNK_BYTES: usize = 64 << 10;

/// hyper's read and write buffer cap per connection (`max_buf_size`; its
/// minimum is 8 KiB, its default ~400 KiB).
pub const CONNECTION_BUFFER_BYTES: usize = 64 << 10;

/// What a response body holds on the host besides its headers: the
/// connection's read buffer and one frame handed on to the guest.
pub const RESPONSE_BUFFER_BYTES: u64 = 2 * CONNECTION_BUFFER_BYTES as u64;

/// What a request in flight holds besides its headers and URI: the
/// connection's buffers and one body chunk.
pub const IN_FLIGHT_BYTES: u64 = 2 * CONNECTION_BUFFER_BYTES as u64 + BODY_CHUNK_BYTES as u64;

/// Bookkeeping of one header or entry (`http::HeaderMap` stores a name, a
/// value and links per entry), on top of its bytes.
pub const ENTRY_OVERHEAD: u64 = 64;

/// Largest answer head accepted from a proxy: a status line and a few
/// headers; anything longer is not a proxy speaking HTTP.
pub const MAX_PROXY_ANSWER_HEAD: usize = 8 << 10;

// WebSockets (`agent-host:agent/websocket`): the settings of
// `JobLimits` and the fixed sizes of each socket. The handshake shares
// the HTTP connect wait (`http_timeout`): it is the same resolve, connect
// and TLS, plus one HTTP exchange.

/// Default cap on one WebSocket message, in either direction, and on one
/// frame: 1 MiB. A speech provider's messages are a few KiB of JSON or
/// 20-100 ms of audio; a second of 48 kHz stereo PCM is 192 KiB.
pub const DEFAULT_WEBSOCKET_MESSAGE_BYTES: u64 = 1 << 20;

/// Default cap on what one socket buffers on the host in each direction,
/// received and not yet read, or queued and not yet sent: 256 KiB, over a
/// second of 48 kHz stereo PCM each way. A buffer takes messages while it
/// holds less than this, so it holds at most this plus one message.
pub const DEFAULT_WEBSOCKET_BUFFER_BYTES: u64 = 256 << 10;

/// Default most WebSockets a job may have open at once: 8, room for
/// speech-to-text, text-to-speech and a realtime model with several to
/// spare, few enough that their buffers fit the default host-memory budget
/// (8 x (2 x 256 KiB + overhead) is about 4.5 MiB of 16 MiB).
pub const DEFAULT_MAX_WEBSOCKETS: u32 = 8;

/// tungstenite's read buffer per socket (its default is 128 KiB): a
/// socket that is read 16 KiB at a time is as fast for an agent's traffic
/// and costs an eighth.
pub const WEBSOCKET_READ_BUFFER_BYTES: usize = 16 << 10;

/// What one open socket holds on the host besides its messages, charged
/// to the job when it connects: tungstenite's read buffer, TLS records in
/// and out (up to 16 KiB each) and the task's state.
pub const WEBSOCKET_OVERHEAD_BYTES: u64 = WEBSOCKET_READ_BUFFER_BYTES as u64 + (40 << 10);

/// Longest the host waits for the peer's close frame after sending its
/// own (the guest's `close`, a dropped socket, an oversize message) before
/// it drops the connection: 5 s, what a healthy peer needs many times
/// over, short enough that a gone peer does not hold the socket long.
pub const WEBSOCKET_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Most bytes of a close frame's reason (RFC 6455 section 5.5: a control
/// frame's payload is at most 125 bytes, two of them the code).
pub const WEBSOCKET_CLOSE_REASON_BYTES: usize = 123;
