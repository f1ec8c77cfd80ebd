//! A fake OpenAI-compatible chat endpoint on loopback, for guests that
//! stream completions (`examples/assistant`).
//!
//! `POST /v1/chat/completions` is answered as OpenAI's API answers a
//! request with `"stream": true`: `200`, `content-type: text/event-stream`,
//! chunked, one `data: {"choices":[{"delta":...}]}` event per HTTP chunk
//! (a role delta first, a `: keep-alive` comment, then the content deltas),
//! ending with `data: [DONE]`. [`Script::Status`] answers every request with
//! an error status and JSON body instead; any other path is `404`.
//!
//! It records each request (method, path, headers, body) for the test to
//! check, and [`Script::Stream`]'s `hold_after` makes it stop after that
//! many content deltas until the test calls [`FakeOpenAi::release`], so a
//! test can act while a completion is provably still open. Dropping the
//! fake releases every held stream, so nothing waits past the test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use agent_host::room::sim::{SimOutput, SimRoom};
use agent_host::{HttpAllowList, JobLimits, Outcome};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::channel::{Channel, Sender};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the fake answers.
#[derive(Debug, Clone)]
pub enum Script {
    /// Stream `deltas` as a completion; with `hold_after: Some(n)`, stop
    /// after `n` of them until [`FakeOpenAi::release`].
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

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, as JSON (`Null` when it was not JSON).
    pub body: serde_json::Value,
}

/// The running fake; stops with the test's runtime.
pub struct FakeOpenAi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    release: watch::Sender<bool>,
}

impl FakeOpenAi {
    /// Starts the fake on `127.0.0.1` with `script` for every request.
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = watch::channel(false);
        let served = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let requests = served.clone();
                let script = script.clone();
                let released = released.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, script.clone(), requests.clone(), released.clone())
                    });
                    // A client that goes away mid-stream is no failure here.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            release,
        }
    }

    /// `http://127.0.0.1:<port>`, the base URL a guest is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port, for the allow-list rule.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The job metadata of `examples/assistant` pointed at this fake, and at
    /// a speech provider's WebSocket when given.
    pub fn assistant_metadata(&self, speech_url: Option<&str>) -> String {
        let mut metadata = serde_json::json!({ "base_url": self.url(), "model": "test-model" });
        if let Some(url) = speech_url {
            metadata["speech_url"] = url.into();
        }
        metadata.to_string()
    }

    /// `examples/assistant` pointed at this fake under `limits`, in a sim
    /// room, once it is in the room: the room, what the agent does in it,
    /// and the job.
    pub async fn assistant(
        &self,
        id: &str,
        limits: JobLimits,
    ) -> (SimRoom, UnboundedReceiver<SimOutput>, JoinHandle<Outcome>) {
        let metadata = self.assistant_metadata(None);
        let (room, mut outputs, job) =
            crate::sim::start_with(crate::guests::ASSISTANT, id, &metadata, limits).await;
        crate::sim::next(&mut outputs, |o| {
            matches!(o, SimOutput::AgentJoined(_)).then_some(())
        })
        .await;
        (room, outputs, job)
    }

    /// Limits that let a job reach this fake and `127.0.0.1:<port>` for
    /// each of `also`, nothing else.
    pub fn limits(&self, also: &[u16]) -> JobLimits {
        let rules = std::iter::once(self.port())
            .chain(also.iter().copied())
            .map(|port| format!("127.0.0.1:{port}"));
        JobLimits {
            http_allow: HttpAllowList::parse(rules.collect::<Vec<_>>(), false)
                .expect("loopback rules parse"),
            ..JobLimits::default()
        }
    }

    /// Lets every held stream go on to its end.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.release();
    }
}

async fn answer(
    request: Request<Incoming>,
    script: Script,
    requests: Arc<Mutex<Vec<Recorded>>>,
    mut released: watch::Receiver<bool>,
) -> Result<Response<Channel<Bytes, Infallible>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    requests.lock().unwrap().push(Recorded {
        method: head.method.to_string(),
        path: head
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        headers: head
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let (mut tx, channel) = Channel::new(4);
    let response = Response::builder();
    if head.method != hyper::Method::POST || head.uri.path() != "/v1/chat/completions" {
        return Ok(response.status(404).body(channel).unwrap());
    }
    match script {
        Script::Status(status, body) => {
            tokio::spawn(async move { tx.send_data(Bytes::from(body)).await });
            Ok(response
                .status(status)
                .header("content-type", "application/json")
                .body(channel)
                .unwrap())
        }
        Script::Stream { deltas, hold_after } => {
            tokio::spawn(async move {
                stream(&mut tx, &deltas, hold_after, &mut released).await;
            });
            Ok(response
                .status(200)
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(channel)
                .unwrap())
        }
    }
}

/// Writes the completion's events to `tx`, holding where asked; stops
/// early if the client went away.
async fn stream(
    tx: &mut Sender<Bytes, Infallible>,
    deltas: &[String],
    hold_after: Option<usize>,
    released: &mut watch::Receiver<bool>,
) {
    let event = |delta: serde_json::Value| {
        let chunk = serde_json::json!({
            "object": "chat.completion.chunk",
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
