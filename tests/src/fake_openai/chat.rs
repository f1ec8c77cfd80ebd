//! `POST /v1/chat/completions` with `"stream": true`, as OpenAI answers it:
//! `200`, `content-type: text/event-stream`, chunked, one
//! `data: {"choices":[{"delta":...}]}` event per HTTP chunk (a role delta
//! first, a `: keep-alive` comment, then the content deltas), ending with
//! `data: [DONE]`. Each chunk carries what OpenAI's do and clients
//! validate (livekit-plugins-openai requires `id`): `id`, `object`,
//! `created`, the request's `model`. [`Script::Status`] answers with an error status and
//! JSON body instead. A [`Script::Stream`] with `hold_after` stops after
//! that many content deltas until the fake is released.

use bytes::Bytes;
use tokio::sync::watch;

use hyper::Response;

use super::{Body, Sender, respond};

/// How the fake answers chat completions.
#[derive(Debug, Clone)]
pub enum Script {
    /// Stream `deltas` as a completion; with `hold_after: Some(n)`, stop
    /// after `n` of them until [`super::FakeOpenAi::release`].
    Stream {
        /// The content deltas, in order.
        deltas: Vec<String>,
        /// Where to hold the stream open, if anywhere.
        hold_after: Option<usize>,
    },
    /// Answer with this status and body (`content-type: application/json`).
    Status(u16, String),
}

impl Script {
    /// A completion of `deltas`, streamed without holding.
    pub fn stream(deltas: &[&str]) -> Self {
        Script::Stream {
            deltas: deltas.iter().map(|d| d.to_string()).collect(),
            hold_after: None,
        }
    }
}

/// The answer to one chat request.
pub(super) fn answer(
    script: &Script,
    model: String,
    released: watch::Receiver<bool>,
) -> Response<Body> {
    let (mut tx, body) = Body::new(4);
    match script.clone() {
        Script::Status(status, json) => {
            tokio::spawn(async move { tx.send_data(Bytes::from(json)).await });
            respond(status, "application/json", body)
        }
        Script::Stream { deltas, hold_after } => {
            tokio::spawn(async move {
                stream(&mut tx, &model, &deltas, hold_after, released).await;
            });
            let mut response = respond(200, "text/event-stream", body);
            response.headers_mut().insert(
                "cache-control",
                hyper::header::HeaderValue::from_static("no-cache"),
            );
            response
        }
    }
}

/// Writes the completion's events to `tx`, holding where asked; stops
/// early if the client went away.
async fn stream(
    tx: &mut Sender,
    model: &str,
    deltas: &[String],
    hold_after: Option<usize>,
    mut released: watch::Receiver<bool>,
) {
    let event = |delta: serde_json::Value| {
        let chunk = serde_json::json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": null }],
        });
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    if tx
        .send_data(event(serde_json::json!({ "role": "assistant" })))
        .await
        .is_err()
        || tx
            .send_data(Bytes::from_static(b": keep-alive\n\n"))
            .await
            .is_err()
    {
        return;
    }
    for (i, delta) in deltas.iter().enumerate() {
        if hold_after == Some(i) && released.wait_for(|r| *r).await.is_err() {
            return;
        }
        if tx
            .send_data(event(serde_json::json!({ "content": delta })))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = tx.send_data(Bytes::from_static(b"data: [DONE]\n\n")).await;
}
