//! Answering calls made to the agent, through the library alone: what
//! the pump needs for a call whose room is gone, and [`super::rpc`] for
//! every other answer. Depends on nothing that holds the pump.

use super::proto::{self, ffi_request, ffi_response};
use super::sys::{Library, request_sync};
use crate::bindings::rpc::RpcError;
use crate::bindings::types::RoomError;
use crate::room::rpc_codes::RECIPIENT_DISCONNECTED;

/// An error with LiveKit's `code` and no data.
pub(super) fn error(code: u32, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
        data: None,
    }
}

/// Answers the invocation `invocation_id` made on the agent
/// `local_participant_handle`.
pub(super) fn respond(
    lib: &'static Library,
    local_participant_handle: u64,
    invocation_id: u64,
    response: Result<String, RpcError>,
) -> Result<(), RoomError> {
    let (payload, error) = match response {
        Ok(payload) => (Some(payload), None),
        Err(e) => (
            None,
            Some(proto::RpcError {
                code: e.code,
                message: e.message,
                data: e.data,
            }),
        ),
    };
    let request = ffi_request::Message::RpcMethodInvocationResponse(
        proto::RpcMethodInvocationResponseRequest {
            local_participant_handle,
            invocation_id,
            payload,
            error,
        },
    );
    let failed = |reason: String| RoomError::Transport(format!("answering a call: {reason}"));
    match request_sync(lib, request).map_err(failed)? {
        ffi_response::Message::RpcMethodInvocationResponse(r) => match r.error {
            Some(reason) if !reason.is_empty() => Err(failed(reason)),
            _ => Ok(()),
        },
        _ => Err(failed("unexpected answer".into())),
    }
}

/// Answers a call that reached no room (the agent left): 1503.
pub(super) fn answer_gone(lib: &'static Library, event: &proto::RpcMethodInvocationEvent) {
    let gone = error(RECIPIENT_DISCONNECTED, "the agent left the room");
    let answered = respond(
        lib,
        event.local_participant_handle,
        event.invocation_id,
        Err(gone),
    );
    if let Err(err) = answered {
        tracing::debug!(error = ?err, "answering a call for a room that is gone");
    }
}
