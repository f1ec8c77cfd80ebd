//! The transport for workers without room I/O: the job runs, but its room
//! is out of reach.
//!
//! Policy: jobs that never touch the room work normally. Every room action
//! fails with a `transport` error that says why, `participants` is empty,
//! and `next-event` only ever returns when the job is terminated (or the
//! guest's own timeout passes), so a guest waiting for the room waits, as
//! it would in a quiet room.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{
    CallAnswer, ConnectRequest, OutgoingCall, OutgoingData, OutgoingText, Queued, RoomSession,
    RoomTransport, RpcError, TextStreamOptions, TextStreamWriter,
};
use crate::bindings::audio::AudioFormat;
use crate::bindings::types::{Participant, RoomError};

/// Why room actions fail under [`Offline`]: the worker runs without
/// LiveKit's client library, and this says how to install it.
pub const OFFLINE_REASON: &str = "room I/O is not available: LiveKit's client library (liblivekit_ffi.so) is not installed; run `agent-host setup`, or point --livekit-lib / LIVEKIT_LIB_PATH at it, and restart the worker";

/// A [`RoomTransport`] with no way to reach rooms.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

impl RoomTransport for Offline {
    fn connect(&self, _: ConnectRequest) -> BoxFuture<'_, Result<Box<dyn RoomSession>, RoomError>> {
        async { Ok(Box::new(OfflineSession) as Box<dyn RoomSession>) }.boxed()
    }
}

struct OfflineSession;

fn unavailable() -> BoxFuture<'static, Result<(), RoomError>> {
    async { Err(RoomError::Transport(OFFLINE_REASON.into())) }.boxed()
}

impl RoomSession for OfflineSession {
    fn participants(&self) -> Vec<Participant> {
        Vec::new()
    }

    fn next_incoming(&mut self) -> BoxFuture<'_, Option<Queued>> {
        std::future::pending().boxed()
    }

    fn publish_data(&mut self, _: OutgoingData) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn send_text(&mut self, _: OutgoingText) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn set_metadata(&mut self, _: String) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn set_attributes(&mut self, _: Vec<(String, String)>) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn subscribe_audio(
        &mut self,
        _: String,
        _: AudioFormat,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn unsubscribe_audio(&mut self, _: String) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }

    fn publish_audio(
        &mut self,
        _: String,
        _: AudioFormat,
    ) -> BoxFuture<'_, Result<String, RoomError>> {
        async { Err(RoomError::Transport(OFFLINE_REASON.into())) }.boxed()
    }

    fn write_audio(&mut self, _: Vec<i16>) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn clear_audio(&mut self) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn open_text_stream(
        &mut self,
        _: TextStreamOptions,
    ) -> BoxFuture<'_, Result<Box<dyn TextStreamWriter>, RoomError>> {
        async { Err(RoomError::Transport(OFFLINE_REASON.into())) }.boxed()
    }

    fn accept_byte_streams(&mut self, _: String) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn register_rpc(&mut self, _: String) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn unregister_rpc(&mut self, _: String) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }

    fn respond_rpc(
        &mut self,
        _: String,
        _: Result<String, RpcError>,
    ) -> BoxFuture<'_, Result<(), RoomError>> {
        unavailable()
    }

    fn perform_rpc(&mut self, _: OutgoingCall) -> BoxFuture<'_, Result<CallAnswer, RoomError>> {
        async { Err(RoomError::Transport(OFFLINE_REASON.into())) }.boxed()
    }

    fn close(&mut self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}
