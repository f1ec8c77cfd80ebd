//! LiveKit's participant RPC, both ways: methods the agent registers and
//! other participants call, and calls the agent makes on a participant.
//!
//! ```no_run
//! # async fn example() -> Result<(), String> {
//! use agent_host_sdk::rpc::{self, RpcError};
//!
//! rpc::register("get-weather")?;
//! let call = rpc::recv_call().await;
//! call.respond(Ok("sunny"))?;
//!
//! match rpc::perform("alice", "ping", "{}", 5_000).await {
//!     Ok(answer) => agent_host_sdk::info!("alice: {answer}"),
//!     Err(err) => agent_host_sdk::warn!("alice: {err}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Policy: payloads and responses are strings of at most 15 KiB
//! (LiveKit's cap). A call that cannot be made at all ([`perform`]'s room
//! error) becomes the [`RpcError`] LiveKit's SDKs give for it (1402
//! request payload too large for a payload over the cap, 1505 send failed
//! otherwise), so that a caller handles one error type.
//!
//! Invariants: a call is taken from the host only in the poll that
//! returns it, and a pending call's result only once, so dropping a future
//! of this module mid-wait loses nothing but that call's answer.

use std::fmt;

use crate::__bindings::agent_host::agent::rpc as wit;
use crate::RoomError;
use crate::task::ready;

pub use crate::__bindings::agent_host::agent::rpc::{Invocation, RpcError};

impl RpcError {
    /// LiveKit's code for an error of the application answering the call.
    pub const APPLICATION_ERROR: u32 = 1500;
    /// LiveKit's code for a call that got no answer in time.
    pub const RESPONSE_TIMEOUT: u32 = 1502;
    /// LiveKit's code for a call that could not be sent.
    pub const SEND_FAILED: u32 = 1505;
    /// LiveKit's code for a method the recipient did not register.
    pub const UNSUPPORTED_METHOD: u32 = 1400;
    /// LiveKit's code for a request payload over the cap.
    pub const REQUEST_PAYLOAD_TOO_LARGE: u32 = 1402;

    /// An application error (1500) saying `message`, the answer for a call
    /// the agent cannot serve.
    pub fn application(message: &str) -> Self {
        RpcError {
            code: Self::APPLICATION_ERROR,
            message: message.to_owned(),
            data: None,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RPC error {}: {}", self.code, self.message)?;
        if let Some(data) = &self.data {
            write!(f, " ({data})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}

/// Lets `?` turn an [`RpcError`] into the `Err(String)` of a job's `run`.
impl From<RpcError> for String {
    fn from(error: RpcError) -> Self {
        error.to_string()
    }
}

impl From<RoomError> for RpcError {
    fn from(error: RoomError) -> Self {
        let code = match error {
            RoomError::TooLarge(_) => RpcError::REQUEST_PAYLOAD_TOO_LARGE,
            _ => RpcError::SEND_FAILED,
        };
        RpcError {
            code,
            message: error.to_string(),
            data: None,
        }
    }
}

impl Invocation {
    /// Answer this call with a response or an error. Fails with
    /// [`RoomError::Closed`] when the call no longer waits for an answer
    /// (it timed out for the caller, or was answered already).
    pub fn respond(&self, response: Result<&str, RpcError>) -> Result<(), RoomError> {
        respond(&self.id, response)
    }
}

/// Accept calls to `method` from now on; calls to methods not registered
/// are answered by the host with 1400 (unsupported method).
pub fn register(method: &str) -> Result<(), RoomError> {
    Ok(wit::register(method)?)
}

/// Stop accepting calls to `method`; calls already queued stay.
pub fn unregister(method: &str) {
    wit::unregister(method)
}

/// The next call to a registered method, without waiting; `None` when
/// none is waiting.
pub fn next_call() -> Option<Invocation> {
    wit::next_call()
}

/// Wait for the next call to a registered method, letting the job's other
/// tasks run meanwhile. Needs the async runtime. Once the session is over
/// this waits forever, so await it beside the room (which says when it
/// closed).
pub async fn recv_call() -> Invocation {
    if let Some(call) = wit::next_call() {
        return call;
    }
    ready(wit::subscribe()).await;
    match wit::next_call() {
        Some(call) => call,
        // Ready without a call: the session ended or the job must end.
        None => std::future::pending().await,
    }
}

/// Answer the call `id` (see [`Invocation::respond`]).
pub fn respond(id: &str, response: Result<&str, RpcError>) -> Result<(), RoomError> {
    Ok(wit::respond(id, response.as_ref().map(|r| *r))?)
}

/// Call `method` on the participant `destination` with `payload` and wait
/// for its answer, at most `response_timeout_ms` milliseconds (the host
/// caps it). Needs the async runtime.
pub async fn perform(
    destination: &str,
    method: &str,
    payload: &str,
    response_timeout_ms: u32,
) -> Result<String, RpcError> {
    let pending = start(destination, method, payload, response_timeout_ms)?;
    loop {
        if let Some(result) = pending.get() {
            return result;
        }
        ready(pending.subscribe()).await;
    }
}

/// [`perform`] for a blocking [`Agent`](crate::Agent): waits on the
/// host, stalling nothing else since a blocking agent runs no tasks.
pub fn perform_blocking(
    destination: &str,
    method: &str,
    payload: &str,
    response_timeout_ms: u32,
) -> Result<String, RpcError> {
    let pending = start(destination, method, payload, response_timeout_ms)?;
    loop {
        match pending.get() {
            Some(result) => return result,
            None => pending.subscribe().block(),
        }
    }
}

/// The call, started; a failure to start it as LiveKit's error for it.
fn start(
    destination: &str,
    method: &str,
    payload: &str,
    response_timeout_ms: u32,
) -> Result<wit::PendingCall, RpcError> {
    wit::perform(destination, method, payload, response_timeout_ms)
        .map_err(|err| RpcError::from(RoomError::from(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_errors_become_livekit_codes() {
        assert_eq!(RpcError::from(RoomError::TooLarge(15_360)).code, 1402);
        assert_eq!(RpcError::from(RoomError::Closed).code, 1505);
    }

    #[test]
    fn errors_read_well() {
        let mut err = RpcError::application("no such city");
        assert_eq!(err.to_string(), "RPC error 1500: no such city");
        err.data = Some("{\"city\":\"x\"}".into());
        assert_eq!(
            String::from(err),
            "RPC error 1500: no such city ({\"city\":\"x\"})"
        );
    }
}
