//! RPC in LiveKit rooms through the library, both ways.
//!
//! Policy:
//! - a method the job registers is registered with the library and kept
//!   in the room's table; the library answers calls to methods nobody
//!   registered (1400) itself, and a call that reaches the pump for a
//!   method the job unregistered meanwhile is answered 1400 here;
//! - a call is queued as [`Incoming::Call`] with the library's invocation
//!   id (in decimal) as its id; one the job's queue or budget cannot take
//!   fails the job (as any event would) and is answered 1503 (the agent is
//!   gone for the caller);
//! - a call still unanswered at its response timeout is answered 1502 by a
//!   timer on the job's runtime and forgotten, which releases the
//!   library's wait for it (the library itself would wait for ever); a
//!   later answer fails with `closed`. Answering a call, or leaving the
//!   room, stops its timer;
//! - a call the job performs carries its response timeout to the library,
//!   which answers 1502 itself when it passes; the host waits for the
//!   library at most that long plus [`ROOM_CALL_TIMEOUT`], then answers
//!   1502 too. A call that cannot be sent is 1505.

use std::time::Duration;

use futures::FutureExt as _;

use super::client::Client;
use super::connected::ConnectedRoom;
use super::in_flight::Waiting;
use super::proto::{self, ffi_event, ffi_request};
use super::rpc_answer::{error, respond};
use crate::bindings::rpc::{Invocation, RpcError};
use crate::bindings::types::RoomError;
use crate::config::rooms::ROOM_CALL_TIMEOUT;
use crate::room::queue::Incoming;
use crate::room::rpc_codes::{
    RECIPIENT_DISCONNECTED, RESPONSE_TIMEOUT, SEND_FAILED, UNSUPPORTED_METHOD,
};
use crate::room::{CallAnswer, OutgoingCall};

impl ConnectedRoom {
    /// A call to the agent, from the pump.
    pub(super) fn on_invocation(
        &mut self,
        client: &'static Client,
        event: proto::RpcMethodInvocationEvent,
    ) {
        let id = event.invocation_id;
        let local = event.local_participant_handle;
        let answer = |response| {
            if let Err(err) = respond(client.lib, local, id, response) {
                tracing::debug!(error = ?err, "answering a call the job does not get");
            }
        };
        if !self.methods.contains(&event.method) {
            return answer(Err(error(UNSUPPORTED_METHOD, "method not registered")));
        }
        let timeout = Duration::from_millis(event.response_timeout_ms.into());
        let call = Invocation {
            id: id.to_string(),
            caller: event.caller_identity,
            method: event.method,
            payload: event.payload,
            response_timeout_ms: event.response_timeout_ms,
        };
        if !self.queue(Incoming::Call(call)) {
            return answer(Err(error(
                RECIPIENT_DISCONNECTED,
                "the agent's session ended",
            )));
        }
        let room = self.handle_id;
        let timer = self.runtime.as_ref().map(|runtime| {
            runtime
                .spawn(async move {
                    tokio::time::sleep(timeout).await;
                    expire(client, room, id);
                })
                .abort_handle()
        });
        self.calls.insert(id, Waiting(timer));
    }
}

/// Answers the call `id` with 1502 if the job has not answered it yet.
fn expire(client: &'static Client, room: u64, id: u64) {
    let mut shared = client.lock();
    let Some(room) = shared.rooms.get_mut(&room) else {
        return;
    };
    if room.calls.remove(&id).is_none() {
        return;
    }
    let Some(local) = room.local_id() else { return };
    let late = error(RESPONSE_TIMEOUT, "the agent did not answer in time");
    if let Err(err) = respond(client.lib, local, id, Err(late)) {
        tracing::debug!(error = ?err, "answering a call the job left unanswered");
    }
}

/// Starts `call` as `local_participant_handle`; the answer comes through
/// the returned future.
pub(super) fn perform(
    client: &'static Client,
    local_participant_handle: u64,
    call: OutgoingCall,
) -> Result<CallAnswer, RoomError> {
    let timeout = call.response_timeout;
    let request = ffi_request::Message::PerformRpc(proto::PerformRpcRequest {
        local_participant_handle,
        destination_identity: call.destination,
        method: call.method,
        payload: call.payload,
        response_timeout_ms: Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)),
    });
    // The deadline is ours, below: the library always answers at last
    // (its own timeout), so a callback that comes after it is discarded.
    let wait = client.start(request, Duration::MAX)?;
    Ok(async move {
        let Ok(answer) = tokio::time::timeout(timeout + ROOM_CALL_TIMEOUT, wait).await else {
            return Err(error(
                RESPONSE_TIMEOUT,
                "the LiveKit client library did not answer in time",
            ));
        };
        match answer {
            Ok(ffi_event::Message::PerformRpc(callback)) => match callback.error {
                Some(e) => Err(RpcError {
                    code: e.code,
                    message: e.message,
                    data: e.data,
                }),
                None => Ok(callback.payload.unwrap_or_default()),
            },
            Ok(_) => Err(error(SEND_FAILED, "unexpected callback from the library")),
            Err(RoomError::Transport(reason)) => Err(error(SEND_FAILED, reason)),
            Err(other) => Err(error(SEND_FAILED, format!("{other:?}"))),
        }
    }
    .boxed())
}
