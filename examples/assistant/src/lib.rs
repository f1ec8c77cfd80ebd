//! Assistant: answers every chat message with a chat completion streamed
//! from an OpenAI-compatible endpoint, typed into the room as it arrives,
//! while it keeps answering the room.
//!
//! Job metadata (JSON): `{"base_url": "https://api.example.com", "model":
//! "gpt-4o-mini"}`. For each chat message (`lk.chat`) it sends
//! `POST {base_url}/v1/chat/completions` with `"stream": true` and sends
//! each `choices[0].delta.content` of the server-sent events back to the
//! sender as its own chat message (one `send-text` per delta, so the
//! answer appears as it is generated), until `data: [DONE]`. A chat `ping`
//! is answered `pong` at once, also while completions stream: each one is
//! its own task. A failed request (a denied endpoint, an error status) is
//! answered `error: <why>` and the job goes on.
//!
//! The guest holds no API key: the operator configures one for the
//! endpoint on the host (`--credential`), which adds it to the request.

use agent_host_sdk::{AsyncAgent, CHAT_TOPIC, JobContext, Room, RoomEvent, http, spawn, warn};
use serde::Deserialize;
use serde_json::json;

/// What the job's metadata names.
#[derive(Deserialize)]
struct Config {
    base_url: String,
    model: String,
}

/// One server-sent `data:` chunk of a streamed completion.
#[derive(Deserialize)]
struct Chunk {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Delta,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

struct Assistant;

impl AsyncAgent for Assistant {
    async fn run(ctx: JobContext) -> Result<(), String> {
        let config: Config = serde_json::from_str(&ctx.info().metadata)
            .map_err(|err| format!("job metadata: {err}"))?;
        let url = format!(
            "{}/v1/chat/completions",
            config.base_url.trim_end_matches('/')
        );
        let room = ctx.room();
        let mut answers = Vec::new();
        let mut events = room.stream();
        while let Some(event) = events.next().await {
            let RoomEvent::TextReceived(msg) = event else {
                continue;
            };
            if msg.topic != CHAT_TOPIC {
                continue;
            }
            if msg.text.trim() == "ping" {
                room.send_text_to(&[&msg.sender], "pong")?;
                continue;
            }
            let request = http::post(&url).json(&json!({
                "model": config.model,
                "stream": true,
                "messages": [{ "role": "user", "content": msg.text }],
            }));
            answers.retain(|task: &agent_host_sdk::Task<()>| !task.is_finished());
            answers.push(spawn(async move {
                if let Err(err) = answer(room, &msg.sender, request).await {
                    let _ = room.send_text_to(&[&msg.sender], &format!("error: {err}"));
                }
            }));
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(async Assistant);

/// Streams the completion `request` asks for to `to`, delta by delta.
async fn answer(room: Room, to: &str, request: http::RequestBuilder) -> Result<(), String> {
    let response = request.send().await?;
    if response.status() != 200 {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "{status} {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    let mut events = response.sse();
    while let Some(event) = events.next().await {
        let data = event?.data;
        if data == "[DONE]" {
            break;
        }
        match serde_json::from_str::<Chunk>(&data) {
            Ok(chunk) => {
                let delta = chunk.choices.into_iter().find_map(|c| c.delta.content);
                if let Some(text) = delta.filter(|t| !t.is_empty()) {
                    room.send_text_to(&[to], &text)?;
                }
            }
            Err(err) => warn!("a chunk that is not a completion: {err}"),
        }
    }
    Ok(())
}
