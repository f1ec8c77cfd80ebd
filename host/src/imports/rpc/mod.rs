//! `agent-host:agent/rpc`: LiveKit's participant RPC, both ways.
//!
//! Policy:
//! - as for `room`: before the job has joined its room every call is
//!   `denied`; once the guest asked to shut down, or was told its room
//!   closed, it is `closed`;
//! - a payload, a response, an error's message and data: at most
//!   [`RPC_MAX_PAYLOAD_BYTES`] (LiveKit's cap; `too-large` with it), and
//!   every guest string of a call counts against the payload cap too;
//! - at most [`RPC_MAX_METHODS`] methods registered (`denied` beyond);
//! - a call the job performs waits at most [`RPC_MAX_RESPONSE_TIMEOUT`],
//!   whatever the guest asks; it is a `pending-call` resource in the job's
//!   table, under its resource cap, and dropping it forgets the answer;
//! - which calls may still be answered, and the answers to unregistered
//!   methods and to calls left unanswered, are the transport's (see
//!   [`crate::room`]).
//!
//! [`RpcView`] is what the import reaches: the job's room link, its table
//! and its [`Rpc`] (methods registered, calls in progress).

pub(crate) mod handle;

use std::collections::{HashMap, HashSet};

use futures::FutureExt as _;
use futures::future::Shared;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use super::guest_bytes;
use super::room::{Kind, RoomLink};
use crate::bindings::agent_host::agent::rpc::{Host, HostPendingCall};
use crate::bindings::rpc::{Invocation, RpcError};
use crate::bindings::types::RoomError;
use crate::config::rooms::{RPC_MAX_METHODS, RPC_MAX_PAYLOAD_BYTES, RPC_MAX_RESPONSE_TIMEOUT};
use crate::room::{CallAnswer, Incoming, OutgoingCall};

use self::handle::PendingCall;

/// A call's answer, which its handle and its pollables share.
type Answer = Shared<CallAnswer>;

/// A call the guest made, in progress.
struct Call {
    answer: Answer,
    /// `get` handed the answer over.
    taken: bool,
}

/// A job's RPC methods and the calls it made.
#[derive(Default)]
pub(crate) struct Rpc {
    methods: HashSet<String>,
    /// Every call the guest holds, by the id its handle names.
    calls: HashMap<u64, Call>,
    /// The id of the next call.
    next: u64,
}

impl Rpc {
    fn call(&mut self, handle: &PendingCall) -> wasmtime::Result<&mut Call> {
        self.calls
            .get_mut(&handle.id)
            .ok_or_else(|| wasmtime::format_err!("a pending-call handle outlived its call"))
    }
}

/// What `pending-call.subscribe` returns: ready once the answer came.
struct AnswerReady(Answer);

#[async_trait::async_trait]
impl Pollable for AnswerReady {
    async fn ready(&mut self) {
        // Cancel-safe: the shared future keeps its progress.
        let _ = self.0.clone().await;
    }
}

/// What the `rpc` import reaches.
pub(crate) struct RpcView<'a> {
    /// The job's own session.
    pub(crate) link: &'a mut RoomLink,
    /// The job's resources: calls in progress and pollables.
    pub(crate) table: &'a mut ResourceTable,
    /// The job's methods and calls.
    pub(crate) state: &'a mut Rpc,
    /// [`JobLimits::max_payload_bytes`](crate::JobLimits::max_payload_bytes).
    pub(crate) max_payload: usize,
}

/// [`HasData`] for the `rpc` import, whose data is an [`RpcView`].
pub(crate) struct RpcData;

impl HasData for RpcData {
    type Data<'a> = RpcView<'a>;
}

fn too_large(cap: usize) -> RoomError {
    RoomError::TooLarge(u32::try_from(cap).unwrap_or(u32::MAX))
}

impl RpcView<'_> {
    /// Checks one call's guest input: `payload` against LiveKit's cap,
    /// everything (`fields`) against the payload cap.
    fn check<'a>(
        &self,
        payload: usize,
        fields: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RoomError> {
        if payload > RPC_MAX_PAYLOAD_BYTES {
            return Err(too_large(RPC_MAX_PAYLOAD_BYTES));
        }
        if guest_bytes(fields) > self.max_payload {
            return Err(too_large(self.max_payload));
        }
        Ok(())
    }

    async fn register_method(&mut self, method: String) -> Result<(), RoomError> {
        self.check(0, [method.as_str()])?;
        let methods = &self.state.methods;
        if !methods.contains(&method) && methods.len() >= RPC_MAX_METHODS {
            return Err(RoomError::Denied(format!(
                "a job may register at most {RPC_MAX_METHODS} RPC methods"
            )));
        }
        let mut session = self.link.joined_session().await?;
        session.register_rpc(method.clone()).await?;
        self.state.methods.insert(method);
        Ok(())
    }

    async fn answer(
        &mut self,
        id: String,
        response: Result<String, RpcError>,
    ) -> Result<(), RoomError> {
        let (payload, fields): (usize, Vec<&str>) = match &response {
            Ok(payload) => (payload.len(), vec![id.as_str(), payload.as_str()]),
            Err(err) => (
                err.message.len() + err.data.as_ref().map_or(0, String::len),
                [id.as_str(), err.message.as_str()]
                    .into_iter()
                    .chain(err.data.as_deref())
                    .collect(),
            ),
        };
        self.check(payload, fields)?;
        let mut session = self.link.joined_session().await?;
        session.respond_rpc(id, response).await
    }

    async fn call(&mut self, call: OutgoingCall) -> Result<Call, RoomError> {
        self.check(
            call.payload.len(),
            [
                call.destination.as_str(),
                call.method.as_str(),
                call.payload.as_str(),
            ],
        )?;
        let mut session = self.link.joined_session().await?;
        let answer = session.perform_rpc(call).await?;
        Ok(Call {
            answer: answer.shared(),
            taken: false,
        })
    }
}

impl Host for RpcView<'_> {
    async fn register(&mut self, method: String) -> wasmtime::Result<Result<(), RoomError>> {
        Ok(self.register_method(method).await)
    }

    async fn unregister(&mut self, method: String) -> wasmtime::Result<()> {
        if self.state.methods.remove(&method)
            && let Ok(mut session) = self.link.joined_session().await
        {
            session.unregister_rpc(method).await;
        }
        Ok(())
    }

    async fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(self.link.readiness(Kind::Call))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }

    async fn next_call(&mut self) -> wasmtime::Result<Option<Invocation>> {
        Ok(match self.link.next_now(Kind::Call).await {
            Some(Incoming::Call(call)) => Some(call),
            _ => None,
        })
    }

    async fn respond(
        &mut self,
        id: String,
        response: Result<String, RpcError>,
    ) -> wasmtime::Result<Result<(), RoomError>> {
        Ok(self.answer(id, response).await)
    }

    async fn perform(
        &mut self,
        destination: String,
        method: String,
        payload: String,
        response_timeout_ms: u32,
    ) -> wasmtime::Result<Result<Resource<PendingCall>, RoomError>> {
        let response_timeout = std::time::Duration::from_millis(response_timeout_ms.into())
            .min(RPC_MAX_RESPONSE_TIMEOUT);
        let call = OutgoingCall {
            destination,
            method,
            payload,
            response_timeout,
        };
        let call = match self.call(call).await {
            Ok(call) => call,
            Err(err) => return Ok(Err(err)),
        };
        let id = self.state.next;
        let handle = self.table.push(PendingCall { id })?;
        self.state.next += 1;
        self.state.calls.insert(id, call);
        Ok(Ok(handle))
    }
}

impl HostPendingCall for RpcView<'_> {
    async fn subscribe(
        &mut self,
        call: Resource<PendingCall>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let answer = self.state.call(self.table.get(&call)?)?.answer.clone();
        let ready = self.table.push(AnswerReady(answer))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }

    async fn get(
        &mut self,
        call: Resource<PendingCall>,
    ) -> wasmtime::Result<Option<Result<String, RpcError>>> {
        let call = self.state.call(self.table.get(&call)?)?;
        if call.taken {
            return Ok(None);
        }
        let result = call.answer.clone().now_or_never();
        call.taken = result.is_some();
        Ok(result)
    }

    async fn drop(&mut self, call: Resource<PendingCall>) -> wasmtime::Result<()> {
        let handle = self.table.delete(call)?;
        self.state.calls.remove(&handle.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bindings::events::Event;
    use crate::bindings::types::RoomEvent;
    use crate::imports::testing::{Joined, joined};
    use crate::room::sim::SimOutput;

    const AGENT: &str = "agent-AJ_test";

    struct Fixture {
        joined: Joined,
        table: ResourceTable,
        state: Rpc,
    }

    impl Fixture {
        async fn new(room: &str) -> Self {
            Self {
                joined: joined(room).await,
                table: ResourceTable::new(),
                state: Rpc::default(),
            }
        }

        fn view(&mut self) -> RpcView<'_> {
            RpcView {
                link: &mut self.joined.link,
                table: &mut self.table,
                state: &mut self.state,
                max_payload: 64 << 10,
            }
        }
    }

    #[tokio::test]
    async fn a_registered_method_is_called_and_answered_once() -> wasmtime::Result<()> {
        let mut f = Fixture::new("rpc").await;
        f.view().register("echo".into()).await??;
        let caller =
            f.joined
                .room
                .perform_rpc("alice", AGENT, "echo", "hi", Duration::from_secs(30));
        let mut rpc = f.view();
        let call = rpc.next_call().await?.expect("the call is queued");
        assert_eq!(
            (
                call.caller.as_str(),
                call.method.as_str(),
                call.payload.as_str()
            ),
            ("alice", "echo", "hi")
        );
        assert_eq!(call.response_timeout_ms, 30_000);
        assert_eq!(
            rpc.respond(call.id.clone(), Ok("hi!".into())).await?,
            Ok(())
        );
        assert_eq!(caller.await, Ok("hi!".into()));
        assert_eq!(
            rpc.respond(call.id, Ok("again".into())).await?,
            Err(RoomError::Closed),
            "a call is answered once"
        );
        Ok(())
    }

    #[tokio::test]
    async fn unregistered_is_1400_and_unanswered_is_1502() -> wasmtime::Result<()> {
        let mut f = Fixture::new("codes").await;
        let room = f.joined.room.clone();
        let unregistered = room.perform_rpc("alice", AGENT, "nope", "", Duration::from_secs(5));
        assert!(matches!(unregistered.await, Err(e) if e.code == 1400));
        f.view().register("slow".into()).await??;
        f.view().unregister("slow".into()).await?;
        let unregistered = room.perform_rpc("alice", AGENT, "slow", "", Duration::from_secs(5));
        assert!(
            matches!(unregistered.await, Err(e) if e.code == 1400),
            "unregistered again"
        );

        f.view().register("slow".into()).await??;
        let caller = room.perform_rpc("alice", AGENT, "slow", "", Duration::from_millis(20));
        assert!(matches!(caller.await, Err(e) if e.code == 1502));
        let mut rpc = f.view();
        let call = rpc.next_call().await?.expect("still queued for the guest");
        assert_eq!(
            rpc.respond(call.id, Ok("too late".into())).await?,
            Err(RoomError::Closed)
        );
        Ok(())
    }

    #[tokio::test]
    async fn calls_wait_aside_while_events_keep_their_order() -> wasmtime::Result<()> {
        let mut f = Fixture::new("order").await;
        f.view().register("ping".into()).await??;
        let room = f.joined.room.clone();
        room.join_identity("alice");
        let _caller = room.perform_rpc("alice", AGENT, "ping", "1", Duration::from_secs(30));
        room.send_text("alice", "lk.chat", "after the call", &[]);
        let mut rpc = f.view();
        assert!(rpc.next_call().await?.is_some(), "the call, past the join");
        assert_eq!(rpc.next_call().await?, None);
        let first = f.joined.link.next_any(None).await;
        assert!(matches!(
            first,
            Some(Event::Room(RoomEvent::ParticipantJoined(p))) if p.identity == "alice"
        ));
        let second = f.joined.link.next_any(None).await;
        assert!(matches!(
            second,
            Some(Event::Room(RoomEvent::TextReceived(t))) if t.text == "after the call"
        ));
        Ok(())
    }

    #[tokio::test]
    async fn a_call_on_a_participant_waits_for_its_answer() -> wasmtime::Result<()> {
        let mut f = Fixture::new("perform").await;
        f.joined.room.join_identity("alice");
        let mut rpc = f.view();
        let pending = rpc
            .perform("alice".into(), "ask".into(), "q".into(), 600_000)
            .await??;
        let rep = pending.rep();
        assert_eq!(
            rpc.get(Resource::new_borrow(rep)).await?,
            None,
            "not answered yet"
        );
        let Some(SimOutput::RpcRequest { id, call, .. }) = f.joined.next_output() else {
            panic!("the call reached the room");
        };
        assert_eq!(call.response_timeout, RPC_MAX_RESPONSE_TIMEOUT, "capped");
        assert!(f.joined.room.answer_rpc(&id, Ok("a".into())));
        let mut rpc = f.view();
        AnswerReady(rpc.state.calls[&0].answer.clone())
            .ready()
            .await;
        assert_eq!(
            rpc.get(Resource::new_borrow(rep)).await?,
            Some(Ok("a".into()))
        );
        assert_eq!(
            rpc.get(Resource::new_borrow(rep)).await?,
            None,
            "taken once"
        );

        let absent = rpc
            .perform("nobody".into(), "ask".into(), "q".into(), 1_000)
            .await??;
        AnswerReady(rpc.state.calls[&1].answer.clone())
            .ready()
            .await;
        assert!(matches!(
            rpc.get(Resource::new_borrow(absent.rep())).await?,
            Some(Err(e)) if e.code == 1401
        ));
        Ok(())
    }

    #[tokio::test]
    async fn payloads_and_methods_are_capped() -> wasmtime::Result<()> {
        let mut f = Fixture::new("caps").await;
        f.joined.room.join_identity("alice");
        let mut rpc = f.view();
        let big = "x".repeat(RPC_MAX_PAYLOAD_BYTES + 1);
        assert!(matches!(
            rpc.perform("alice".into(), "m".into(), big.clone(), 1_000)
                .await?,
            Err(RoomError::TooLarge(15_360))
        ));
        assert_eq!(
            rpc.respond("any".into(), Ok(big)).await?,
            Err(RoomError::TooLarge(15_360))
        );
        for n in 0..RPC_MAX_METHODS {
            rpc.register(format!("m{n}")).await??;
        }
        assert!(matches!(
            rpc.register("one-more".into()).await?,
            Err(RoomError::Denied(_))
        ));
        Ok(())
    }
}
