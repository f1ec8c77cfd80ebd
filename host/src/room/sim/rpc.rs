//! RPC in a sim room, as LiveKit's SDKs do it between participants.
//!
//! A call to an agent reaches its session as [`Incoming::Call`] only if the
//! agent registered the method (otherwise the caller gets 1400 at once);
//! the caller waits at most its response timeout (then 1502) and gets 1503
//! if the agent leaves first. A call an agent makes on a scripted
//! participant shows as [`SimOutput::RpcRequest`] and waits for
//! [`SimRoom::answer_rpc`]; on another agent it is delivered to that
//! agent's session as a call. A participant not in the room is 1401.

use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::oneshot;

use super::{SimOutput, SimRoom, lock};
use crate::bindings::rpc::{Invocation, RpcError};
use crate::bindings::types::RoomError;
use crate::room::queue::{Incoming, Queued};
use crate::room::rpc_codes::{
    RECIPIENT_DISCONNECTED, RECIPIENT_NOT_FOUND, RESPONSE_TIMEOUT, SEND_FAILED, UNSUPPORTED_METHOD,
};
use crate::room::{CallAnswer, OutgoingCall};

/// The answer side of a call waiting in the room.
pub(super) type Answer = oneshot::Sender<Result<String, RpcError>>;

fn error(code: u32, message: &str) -> RpcError {
    RpcError {
        code,
        message: message.to_string(),
        data: None,
    }
}

/// Waits for `answer` at most `timeout`: the callee's answer, 1502 after
/// the timeout, 1503 if the callee went away without answering.
fn await_answer(
    answer: oneshot::Receiver<Result<String, RpcError>>,
    timeout: Duration,
) -> CallAnswer {
    async move {
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(error(RECIPIENT_DISCONNECTED, "the recipient left")),
            Err(_) => Err(error(RESPONSE_TIMEOUT, "response timeout")),
        }
    }
    .boxed()
}

impl super::RoomState {
    /// A fresh call id, unique in the room.
    fn call_id(&mut self) -> String {
        self.next_call += 1;
        format!("sim-call-{}", self.next_call)
    }

    /// Delivers a call from `caller` to the agent `agent`'s session, if it
    /// registered the method; `None` when no agent has that identity.
    fn deliver_call(
        &mut self,
        agent: &str,
        caller: &str,
        method: String,
        payload: String,
        timeout: Duration,
    ) -> Option<Result<oneshot::Receiver<Result<String, RpcError>>, RpcError>> {
        let id = self.call_id();
        let session = self.sessions.iter_mut().find(|s| s.identity == agent)?;
        if !session.methods.contains(&method) {
            return Some(Err(error(UNSUPPORTED_METHOD, "method not registered")));
        }
        let call = Invocation {
            id: id.clone(),
            caller: caller.to_string(),
            method,
            payload,
            response_timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        };
        let delivered = Queued::charged(&session.memory, Incoming::Call(call))
            .map(|queued| session.events.try_send(queued).is_ok());
        if delivered != Ok(true) {
            // A full queue or budget: the call is not delivered, and says so.
            return Some(Err(error(SEND_FAILED, "the agent's queue is full")));
        }
        let (tx, rx) = oneshot::channel();
        session.calls.insert(id, tx);
        Some(Ok(rx))
    }
}

/// The answer to a call that could not be made.
fn failed(err: RpcError) -> CallAnswer {
    async move { Err(err) }.boxed()
}

impl SimRoom {
    /// Participant `from` calls `method` on the agent `agent`, waiting at
    /// most `timeout` for its answer.
    pub fn perform_rpc(
        &self,
        from: &str,
        agent: &str,
        method: &str,
        payload: &str,
        timeout: Duration,
    ) -> CallAnswer {
        let delivered = lock(&self.state).deliver_call(
            agent,
            from,
            method.to_string(),
            payload.to_string(),
            timeout,
        );
        match delivered {
            Some(Ok(answer)) => await_answer(answer, timeout),
            Some(Err(err)) => failed(err),
            None => failed(error(RECIPIENT_NOT_FOUND, "no such participant")),
        }
    }

    /// Answers the call `id` an agent made on a scripted participant (seen
    /// as [`SimOutput::RpcRequest`]); false if it no longer waits.
    pub fn answer_rpc(&self, id: &str, response: Result<String, RpcError>) -> bool {
        let answer = lock(&self.state).outgoing_calls.remove(id);
        answer.is_some_and(|answer| answer.send(response).is_ok())
    }
}

impl super::SimSession {
    /// The agent answers a call it received.
    pub(super) fn respond(
        &self,
        id: &str,
        response: Result<String, RpcError>,
    ) -> Result<(), RoomError> {
        let mut state = lock(&self.room.state);
        let session = state
            .sessions
            .iter_mut()
            .find(|s| s.id == self.id)
            .ok_or(RoomError::Closed)?;
        let answer = session.calls.remove(id).ok_or(RoomError::Closed)?;
        // A caller that gave up (timed out) dropped its receiver.
        answer.send(response).map_err(|_| RoomError::Closed)
    }

    /// The agent calls a participant: another agent's session, or a
    /// scripted participant whose answer the test gives.
    pub(super) fn perform(&self, call: OutgoingCall) -> CallAnswer {
        let timeout = call.response_timeout;
        let mut state = lock(&self.room.state);
        let delivered = state.deliver_call(
            &call.destination,
            &self.identity,
            call.method.clone(),
            call.payload.clone(),
            timeout,
        );
        match delivered {
            Some(Ok(answer)) => await_answer(answer, timeout),
            Some(Err(err)) => failed(err),
            None if state.participants.contains_key(&call.destination) => {
                let id = state.call_id();
                let (tx, rx) = oneshot::channel();
                state.outgoing_calls.insert(id.clone(), tx);
                state.notify(SimOutput::RpcRequest {
                    from: self.identity.clone(),
                    id,
                    call,
                });
                await_answer(rx, timeout)
            }
            None => failed(error(RECIPIENT_NOT_FOUND, "no such participant")),
        }
    }
}
