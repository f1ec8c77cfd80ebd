//! Outbound network and HTTP: the guest HTTP caps (settings of
//! [`JobLimits`](crate::JobLimits)) and the buffers each connection holds.
//!
//! Policy: every byte a guest makes the host buffer is bounded, and what a
//! request in flight holds is charged to the job's host-memory budget with
//! the sizes below.

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
