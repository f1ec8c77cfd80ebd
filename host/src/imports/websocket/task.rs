//! The task of one socket: it opens the connection, then reads into the
//! socket's inbox and writes its outbox until the socket ends.
//!
//! Policy:
//! - **Backpressure, not loss**: the task reads the next message only
//!   while the inbox holds less than its cap, so a slow reader stops the
//!   socket (TCP pushes back on the server) and never loses a message or
//!   fails. While it does not read it does not answer pings either: a
//!   server with a keepalive may close a socket its guest leaves unread
//!   for long, which the guest then reads as the end.
//! - Messages go out in the order queued; the guest's close frame after
//!   the messages queued before it.
//! - An oversize message ends the socket with `too-large` and a close frame
//!   1009 to the peer; the transport breaking or the peer leaving without a
//!   close frame ends it with `failed` after the messages received before.
//! - Bounded life: after the host sent its close frame (the guest's close,
//!   or the guest dropping the socket) the task waits at most
//!   [`WEBSOCKET_CLOSE_WAIT`] for the peer's, then drops the connection. The
//!   task lives in the job's set of tasks, which aborts it when the job's
//!   store is dropped.

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::WebSocketPolicy;
use super::connect::{self, Dial};
use super::socket::{Closing, Socket, size, too_large};
use crate::bindings::agent_host::agent::websocket::{CloseFrame, Message, WebsocketError};
use crate::bounded;
use crate::config::net::WEBSOCKET_CLOSE_WAIT;

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<Box<dyn crate::net::Connection>>,
    WsMessage,
>;
type Stream = futures::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<Box<dyn crate::net::Connection>>,
>;

/// Runs one socket from its handshake to its end.
pub(crate) async fn run(policy: WebSocketPolicy, dial: Dial, state: watch::Sender<Socket>) {
    let config = connect::config(policy.message_bytes);
    let mut watch = state.subscribe();
    let opened = tokio::select! {
        opened = connect::open(&policy, dial, config) => opened,
        // A guest that lets go of a handshake in progress ends it.
        _ = watch.wait_for(|s| s.guest_gone) => Err(WebsocketError::Closed(None)),
    };
    let socket = match opened {
        Ok((socket, protocol)) => {
            state.send_modify(|s| s.handshaken(Ok(protocol)));
            socket
        }
        Err(err) => {
            state.send_modify(|s| {
                s.handshaken(Err(err.clone()));
                s.finish(err);
            });
            return;
        }
    };
    let (mut sink, mut stream) = socket.split();
    let end = tokio::select! {
        end = read(&mut stream, &state) => end,
        end = write(&mut sink, &state) => end,
        end = gone(&state) => end,
    };
    if let WebsocketError::TooLarge(_) = end {
        let frame = WsCloseFrame {
            code: CloseCode::Size,
            reason: "message too large".into(),
        };
        let _ = tokio::time::timeout(
            WEBSOCKET_CLOSE_WAIT,
            sink.send(WsMessage::Close(Some(frame))),
        )
        .await;
    }
    state.send_modify(|s| s.finish(end));
}

/// Reads messages into the inbox while it has room; returns how the
/// reading side ended.
async fn read(stream: &mut Stream, state: &watch::Sender<Socket>) -> WebsocketError {
    let mut watch = state.subscribe();
    let mut peer_close = None;
    loop {
        // The task holds a sender, so the wait ends only by its condition.
        let _ = watch.wait_for(Socket::may_read).await;
        let message = match stream.next().await {
            None => return WebsocketError::Closed(peer_close),
            // The peer may drop the transport once it sent its close.
            Some(Err(_)) if peer_close.is_some() => return WebsocketError::Closed(peer_close),
            Some(Err(err)) => return read_error(err, state),
            Some(Ok(message)) => message,
        };
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.as_str().to_owned()),
            WsMessage::Binary(bytes) => Message::Binary(bytes.into()),
            WsMessage::Close(frame) => {
                // tungstenite answers it; the stream ends once that is out.
                peer_close = Some(frame.map_or(
                    CloseFrame {
                        code: 1005,
                        reason: String::new(),
                    },
                    |f| CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().to_owned(),
                    },
                ));
                continue;
            }
            // tungstenite answers pings itself.
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
        };
        let mut refused = None;
        state.send_modify(|s| refused = s.received(message).err());
        if let Some(over) = refused {
            return WebsocketError::Failed(over.to_string());
        }
    }
}

/// The guest's error for a socket that broke while reading.
fn read_error(err: WsError, state: &watch::Sender<Socket>) -> WebsocketError {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            too_large(state.borrow().caps().message)
        }
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => WebsocketError::Failed(
            "the connection ended without a close frame (mid-message or dropped)".into(),
        ),
        err => WebsocketError::Failed(bounded::display(err, bounded::MAX_LOG_FIELD)),
    }
}

/// Sends the outbox, then the guest's close frame; returns only if the
/// transport fails or the peer does not answer the close in time.
async fn write(sink: &mut Sink, state: &watch::Sender<Socket>) -> WebsocketError {
    let mut watch = state.subscribe();
    loop {
        let _ = watch
            .wait_for(|s| !s.outbox.is_empty() || matches!(s.closing, Closing::Wanted(_)))
            .await;
        let mut next = None;
        state.send_if_modified(|s| {
            if let Some(message) = s.outbox.front() {
                next = Some(Next::Message(message.clone()));
            } else if let Closing::Wanted(frame) = &s.closing {
                next = Some(Next::Close(frame.clone()));
                s.closing = Closing::Sent;
                return true;
            }
            false
        });
        match next {
            Some(Next::Message(message)) => {
                let bytes = size(&message);
                let message = match message {
                    Message::Text(text) => WsMessage::text(text),
                    Message::Binary(bytes) => WsMessage::binary(bytes),
                };
                if let Err(err) = sink.send(message).await {
                    return WebsocketError::Failed(bounded::display(err, bounded::MAX_LOG_FIELD));
                }
                state.send_modify(|s| {
                    s.outbox.pop_front();
                    s.sent(bytes);
                });
            }
            Some(Next::Close(frame)) => {
                let frame = WsCloseFrame {
                    code: frame.code.into(),
                    reason: frame.reason.into(),
                };
                if let Err(err) = sink.send(WsMessage::Close(Some(frame))).await {
                    return WebsocketError::Failed(bounded::display(err, bounded::MAX_LOG_FIELD));
                }
                // The reader sees the peer's answer; this only bounds the wait.
                tokio::time::sleep(WEBSOCKET_CLOSE_WAIT).await;
                return WebsocketError::Closed(None);
            }
            None => {}
        }
    }
}

/// What the writer sends next.
enum Next {
    Message(Message),
    Close(CloseFrame),
}

/// Once the guest has let go, the socket has [`WEBSOCKET_CLOSE_WAIT`] to
/// send what was queued, close and hear the peer's close.
async fn gone(state: &watch::Sender<Socket>) -> WebsocketError {
    let mut watch = state.subscribe();
    let _ = watch.wait_for(|s| s.guest_gone).await;
    tokio::time::sleep(WEBSOCKET_CLOSE_WAIT).await;
    WebsocketError::Closed(None)
}
