//! RPC between agents and remotes, as LiveKit's clients speak it over
//! data packets (version 1): the caller sends `RpcRequest`, the callee
//! answers `RpcAck` at once and then `RpcResponse` (a payload or an
//! `RpcError`), each packet addressed to the other side. The server only
//! forwards them; the double plays the remotes' clients:
//!
//! * a call an agent makes on a remote is answered by the handler the
//!   test gave for that method ([`crate::Remote::serve_rpc`]), or with
//!   1400 (unsupported method) as a client with no handler does; a call
//!   on someone not in the room is dropped, as the server drops packets
//!   for nobody (the agent's client then gives up on its own);
//! * a call a remote makes ([`crate::Remote::perform_rpc`]) waits for
//!   the agent's response at most its response timeout; its ack is noted
//!   and otherwise ignored.
//!
//! Bounds: at most [`MAX_WAITING`] calls of remotes wait at once (more
//! fail at once).

use std::collections::HashMap;
use std::sync::Arc;

use livekit_protocol::{
    DataPacket, RpcAck, RpcError, RpcRequest, RpcResponse, data_packet, rpc_response,
};
use tokio::sync::oneshot;

/// Calls of remotes waiting for an answer at once.
pub const MAX_WAITING: usize = 1024;

/// LiveKit's code for a method the callee has no handler for.
const UNSUPPORTED_METHOD: u32 = 1400;

/// An RPC answer: the payload, or the error's code and message.
pub type Answer = Result<String, (u32, String)>;

/// How a remote answers calls to one method: called with the caller's
/// identity and the payload.
pub type Handler = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

/// A room's RPC state.
#[derive(Default)]
pub(crate) struct Rpc {
    /// (remote identity, method) → its handler.
    handlers: HashMap<(String, String), Handler>,
    /// Request id → the remote's call waiting for the agent's answer.
    waiting: HashMap<String, oneshot::Sender<Answer>>,
}

fn from(sender: &str, to: &str, value: data_packet::Value) -> DataPacket {
    DataPacket {
        kind: data_packet::Kind::Reliable as i32,
        participant_identity: sender.to_string(),
        destination_identities: vec![to.to_string()],
        value: Some(value),
        ..Default::default()
    }
}

impl Rpc {
    /// Sets `remote`'s handler for `method`.
    pub(crate) fn serve(&mut self, remote: &str, method: &str, handler: Handler) {
        self.handlers
            .insert((remote.to_string(), method.to_string()), handler);
    }

    /// Forgets `remote`'s handlers (it left).
    pub(crate) fn forget(&mut self, remote: &str) {
        self.handlers.retain(|(r, _), _| r != remote);
    }

    /// `remote`'s answer to the call `request` of `agent`: the ack and the
    /// response packets, addressed to the agent.
    pub(crate) fn answer(
        &self,
        remote: &str,
        agent: &str,
        request: &RpcRequest,
    ) -> Vec<DataPacket> {
        let key = (remote.to_string(), request.method.clone());
        let answer = match self.handlers.get(&key) {
            Some(handler) => handler(agent, &request.payload),
            None => Err((
                UNSUPPORTED_METHOD,
                "Method not supported at destination".into(),
            )),
        };
        let value = match answer {
            Ok(payload) => rpc_response::Value::Payload(payload),
            Err((code, message)) => rpc_response::Value::Error(RpcError {
                code,
                message,
                data: String::new(),
            }),
        };
        let ack = RpcAck {
            request_id: request.id.clone(),
        };
        let response = RpcResponse {
            request_id: request.id.clone(),
            value: Some(value),
        };
        vec![
            from(remote, agent, data_packet::Value::RpcAck(ack)),
            from(remote, agent, data_packet::Value::RpcResponse(response)),
        ]
    }

    /// A call of `remote` on `agent`: the request packet and where its
    /// answer comes; `None` when too many calls wait.
    pub(crate) fn call(
        &mut self,
        remote: &str,
        agent: &str,
        request: RpcRequest,
    ) -> Option<(DataPacket, oneshot::Receiver<Answer>)> {
        self.waiting.retain(|_, tx| !tx.is_closed());
        if self.waiting.len() >= MAX_WAITING {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(request.id.clone(), tx);
        Some((
            from(remote, agent, data_packet::Value::RpcRequest(request)),
            rx,
        ))
    }

    /// An agent's response to a remote's call; false when no call waits
    /// for it.
    pub(crate) fn response(&mut self, response: &RpcResponse) -> bool {
        let Some(tx) = self.waiting.remove(&response.request_id) else {
            return false;
        };
        let answer = match &response.value {
            Some(rpc_response::Value::Payload(p)) => Ok(p.clone()),
            Some(rpc_response::Value::Error(e)) => Err((e.code, e.message.clone())),
            Some(rpc_response::Value::CompressedPayload(_)) | None => {
                Err((1500, "a response the double does not read".into()))
            }
        };
        let _ = tx.send(answer);
        true
    }

    /// Whether a remote's call `request_id` waits (for an agent's ack).
    pub(crate) fn waits(&self, request_id: &str) -> bool {
        self.waiting.contains_key(request_id)
    }
}
