//! A fake OpenAI-compatible provider on loopback, for guests that stream
//! completions (`examples/assistant`) and voice agents (`examples/voice`,
//! the Python worker's `AgentSession` with the OpenAI plugin).
//!
//! It serves, as OpenAI's API does:
//! - `POST /v1/chat/completions`, streamed as [`Script`] says ([`chat`]);
//! - `POST /v1/audio/transcriptions` and `POST /v1/audio/speech`, as the
//!   [`SpeechScript`] says ([`audio`]).
//!
//! Any other method or path is `404`. It records each request (method,
//! path, headers, JSON body) and, for the audio endpoints, what was asked
//! ([`Transcription`], [`Speech`]), for the test to check. Dropping the
//! fake releases every held chat stream, so nothing waits past the test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use agent_host::room::sim::{SimOutput, SimRoom};
use agent_host::{HttpAllowList, JobLimits, Outcome};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::channel::Channel;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::speech_script::{SpeechScript, Transcripts};

mod audio;
mod chat;

pub use audio::{Speech, Transcription, wave_file};
pub use chat::Script;

/// A response body the fake writes as it goes.
type Body = Channel<Bytes, Infallible>;
/// The writing end of a [`Body`].
type Sender = http_body_util::channel::Sender<Bytes, Infallible>;

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

/// What the fake knows and saw, shared by its connections.
struct State {
    chat: Script,
    speech: SpeechScript,
    transcripts: Transcripts,
    requests: Mutex<Vec<Recorded>>,
    transcriptions: Mutex<Vec<Transcription>>,
    speeches: Mutex<Vec<Speech>>,
}

/// The running fake; stops with the test's runtime.
pub struct FakeOpenAi {
    addr: SocketAddr,
    state: Arc<State>,
    release: watch::Sender<bool>,
}

impl FakeOpenAi {
    /// Starts the fake on `127.0.0.1` with `script` for every chat request
    /// and the default [`SpeechScript`] for the audio endpoints.
    pub async fn start(script: Script) -> Self {
        Self::start_voice(script, SpeechScript::default()).await
    }

    /// Starts the fake on `127.0.0.1`: `chat` for every chat request,
    /// `speech` for the audio endpoints.
    pub async fn start_voice(chat: Script, speech: SpeechScript) -> Self {
        Self::start_on(
            "127.0.0.1:0".parse().expect("a loopback address"),
            chat,
            speech,
        )
        .await
    }

    /// [`start_voice`](Self::start_voice) on `addr` (a network namespace's
    /// address, for a benchmark whose agents run there).
    pub async fn start_on(addr: SocketAddr, chat: Script, speech: SpeechScript) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("binding the fake's port");
        let addr = listener.local_addr().expect("a bound address");
        let state = Arc::new(State {
            chat,
            transcripts: Transcripts::new(&speech),
            speech,
            requests: Mutex::default(),
            transcriptions: Mutex::default(),
            speeches: Mutex::default(),
        });
        let (release, released) = watch::channel(false);
        let served = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                let released = released.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, state.clone(), released.clone())
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
            state,
            release,
        }
    }

    /// `http://<addr>`, the base URL a guest is given (without `/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port, for the allow-list rule.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The transcription requests answered so far, in order.
    pub fn transcriptions(&self) -> Vec<Transcription> {
        self.state.transcriptions.lock().unwrap().clone()
    }

    /// The speech requests answered so far, in order.
    pub fn speeches(&self) -> Vec<Speech> {
        self.state.speeches.lock().unwrap().clone()
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

/// A response of `status` with `content-type` and `body`.
fn respond(status: u16, content_type: &'static str, body: Body) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body)
        .expect("a valid status and header")
}

/// OpenAI's error answer: `status`, `{"error":{"message","type"}}`.
fn error(status: u16, message: &str) -> Response<Body> {
    let json = serde_json::json!({
        "error": { "message": message, "type": "invalid_request_error" },
    });
    let (mut tx, body) = Body::new(1);
    tokio::spawn(async move { tx.send_data(Bytes::from(json.to_string())).await });
    respond(status, "application/json", body)
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
    released: watch::Receiver<bool>,
) -> Result<Response<Body>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state.requests.lock().unwrap().push(Recorded {
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
    if head.method != hyper::Method::POST {
        return Ok(respond(404, "application/json", Body::new(1).1));
    }
    Ok(match head.uri.path() {
        "/v1/chat/completions" => {
            let model = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|r| r["model"].as_str().map(str::to_owned))
                .unwrap_or_default();
            chat::answer(&state.chat, model, released)
        }
        "/v1/audio/transcriptions" => audio::transcribe(&head.headers, body, &state).await,
        "/v1/audio/speech" => audio::speak(&body, &state),
        _ => respond(404, "application/json", Body::new(1).1),
    })
}
