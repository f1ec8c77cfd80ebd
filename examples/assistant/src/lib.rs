//! Assistant: answers every chat message with a chat completion streamed
//! from an OpenAI-compatible endpoint, typed into the room as it arrives,
//! while it keeps answering the room.
//!
//! Job metadata (JSON): `{"base_url": "https://api.example.com", "model":
//! "gpt-4o-mini"}`. For each chat message (`lk.chat`) it sends
//! `POST {base_url}/v1/chat/completions` with `"stream": true` and sends
//! each `choices[0].delta.content` of the server-sent events back to the
//! sender as its own chat message (one `send-text` per delta, so the
//! answer appears as it is generated), until `data: [DONE]`: the SDK's
//! [`OpenAiLlm`], the client the voice pipeline uses too. A chat `ping`
//! is answered `pong` at once, also while completions stream: each one is
//! its own task. A failed request (a denied endpoint, an error status) is
//! answered `error: <why>` and the job goes on.
//!
//! With `"speech_url": "wss://..."` in the metadata too, it opens that
//! WebSocket (a speech provider) at the start, holds it for the job's life,
//! and forwards each text message it receives into the room as chat to
//! everyone; one task waits on the room and the socket at once. A socket
//! that cannot be opened is reported into the room as `error: speech:
//! <why>`, and the job goes on without it; at the end the job closes it
//! (1000) and waits up to a second for the provider's answer.
//!
//! The guest holds no API key: the operator configures one for the
//! endpoint on the host (`--credential`), which adds it to the request.

use std::time::Duration;

use agent_host_sdk::futures_lite::future;
use agent_host_sdk::voice::{ChatMessage, OpenAiLlm, Role};
use agent_host_sdk::websocket::{Message, WebSocket};
use agent_host_sdk::{
    AsyncAgent, CHAT_TOPIC, JobContext, Room, RoomError, RoomEvent, Task, spawn, timeout, warn,
};
use serde::Deserialize;

/// How long the speech provider has to answer our close at the job's end.
/// Its reply only confirms; a second is plenty on any network.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the job's metadata names.
#[derive(Deserialize)]
struct Config {
    base_url: String,
    model: String,
    speech_url: Option<String>,
}

/// What the job waits on: the room, and the speech socket if it has one.
enum Next {
    Room(RoomEvent),
    Speech(Option<Result<Message, agent_host_sdk::websocket::Error>>),
}

struct Assistant;

impl AsyncAgent for Assistant {
    async fn run(ctx: JobContext) -> Result<(), String> {
        let config: Config = serde_json::from_str(&ctx.info().metadata)
            .map_err(|err| format!("job metadata: {err}"))?;
        let room = ctx.room();
        let mut speech = None;
        if let Some(url) = &config.speech_url {
            match WebSocket::connect(url).await {
                Ok(socket) => speech = Some(socket),
                Err(err) => room.send_text(&format!("error: speech: {err}"))?,
            }
        }
        let mut answers: Vec<Task<()>> = Vec::new();
        loop {
            let next = future::or(async { Next::Room(room.recv().await) }, async {
                match &speech {
                    Some(socket) => Next::Speech(socket.recv().await),
                    None => future::pending().await,
                }
            })
            .await;
            match next {
                Next::Room(RoomEvent::Closed(_)) => break,
                Next::Room(RoomEvent::TextReceived(msg)) if msg.topic == CHAT_TOPIC => {
                    if msg.text.trim() == "ping" {
                        unless_closed(room.send_text_to(&[&msg.sender], "pong"))?;
                    } else {
                        answers.retain(|task| !task.is_finished());
                        answers.push(spawn(answer(room, config.llm(), msg.text, msg.sender)));
                    }
                }
                Next::Room(_) => {}
                Next::Speech(Some(Ok(Message::Text(text)))) => {
                    unless_closed(room.send_text(&text))?
                }
                Next::Speech(Some(Ok(Message::Binary(_)))) => {}
                Next::Speech(Some(Err(err))) => warn!("speech: {err}"),
                Next::Speech(None) => speech = None,
            }
        }
        // A clean close, confirmed by the provider (or not, in time); one
        // that closed first needs none.
        if let Some(socket) = speech.filter(|s| s.close(1000, "the job is over").is_ok()) {
            let _ = timeout(CLOSE_WAIT, async { while socket.recv().await.is_some() {} }).await;
        }
        Ok(())
    }
}

/// A message to a room that closed meanwhile reaches nobody: that ends the
/// job as the closed room does, not with a failure.
fn unless_closed(sent: Result<(), RoomError>) -> Result<(), RoomError> {
    match sent {
        Err(RoomError::Closed) => Ok(()),
        sent => sent,
    }
}

agent_host_sdk::export_agent!(async Assistant);

impl Config {
    /// The SDK's client of the endpoint (OpenAI's base URL has `/v1`).
    fn llm(&self) -> OpenAiLlm {
        let base = format!("{}/v1", self.base_url.trim_end_matches('/'));
        OpenAiLlm::new(&base, &self.model)
    }
}

/// Streams the completion of `text` to `to`, or why it failed.
async fn answer(room: Room, llm: OpenAiLlm, text: String, to: String) {
    if let Err(err) = stream(room, &llm, text, &to).await {
        let _ = room.send_text_to(&[&to], &format!("error: {err}"));
    }
}

/// Streams the completion of `text` to `to`, delta by delta.
async fn stream(room: Room, llm: &OpenAiLlm, text: String, to: &str) -> Result<(), String> {
    let mut deltas = llm.stream(&[ChatMessage::new(Role::User, text)]).await?;
    while let Some(delta) = deltas.next_delta().await {
        room.send_text_to(&[to], &delta?)?;
    }
    Ok(())
}
