//! A job that streams an LLM answer while its room goes on: the
//! `assistant` guest against the fake OpenAI-compatible provider
//! (`agent_host_tests::fake_openai`) on loopback, in a sim room.
//!
//! What is proven: the answer arrives in the room in order and complete;
//! a chat `ping` is answered while the provider holds a completion open
//! (the stream is only released after the `pong` arrived, so neither
//! waits for the other); an error status reaches the room as an error and
//! the job goes on; an endpoint not on the allow-list is denied before
//! anything reaches it; and with a speech provider's WebSocket
//! (`agent_host_tests::websocket::talker`) the same job holds the socket,
//! forwards what it says, streams an answer and chats at once.

use std::sync::atomic::Ordering;

use agent_host::room::sim::{SimOutput, SimRoom};
use agent_host::{Credential, Credentials, JobLimits, Outcome};
use agent_host_tests::fake_openai::{FakeOpenAi, Script};
use agent_host_tests::sim::{WAIT, next, start_with};
use agent_host_tests::{guests, websocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The next chat text the agent sent, with its destinations.
async fn reply(outputs: &mut UnboundedReceiver<SimOutput>) -> (String, Vec<String>) {
    next(outputs, |o| match o {
        SimOutput::Text { text, .. } if text.topic == "lk.chat" => {
            Some((text.text, text.destinations))
        }
        _ => None,
    })
    .await
}

async fn ends_well(room: SimRoom, job: JoinHandle<Outcome>) {
    room.close();
    let outcome = tokio::time::timeout(WAIT, job).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_arrives_in_order_and_complete() {
    let deltas = ["Hel", "lo", ", wor", "ld", "!"];
    let fake = FakeOpenAi::start(Script::stream(&deltas)).await;
    let (room, mut outputs, job) = fake.assistant("AJ_llm_order", fake.limits(&[])).await;
    room.send_text("alice", "lk.chat", "say hello", &[]);
    let mut got = Vec::new();
    for _ in deltas {
        let (text, to) = reply(&mut outputs).await;
        assert_eq!(to, ["alice"], "answered to the sender only");
        got.push(text);
    }
    assert_eq!(got, deltas);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(request.body["model"], "test-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["messages"][0]["content"], "say hello");
    assert!(
        request
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/json")
    );
    assert!(
        !request.headers.iter().any(|(k, _)| k == "authorization"),
        "the guest holds no key and sends none"
    );
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_while_a_completion_is_held_open() {
    let fake = FakeOpenAi::start(Script::Stream {
        deltas: vec!["first".into(), " second".into()],
        hold_after: Some(1),
    })
    .await;
    let (room, mut outputs, job) = fake.assistant("AJ_llm_ping", fake.limits(&[])).await;
    room.send_text("alice", "lk.chat", "a long answer please", &[]);
    assert_eq!(reply(&mut outputs).await.0, "first");
    // The provider holds the rest until released: whatever comes now was
    // served while the completion is open.
    room.send_text("alice", "lk.chat", "ping", &[]);
    assert_eq!(
        reply(&mut outputs).await,
        ("pong".into(), vec!["alice".into()])
    );
    fake.release();
    assert_eq!(reply(&mut outputs).await.0, " second");
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_reaches_the_room_and_the_job_goes_on() {
    let body = r#"{"error":{"message":"rate limited","type":"requests"}}"#;
    let fake = FakeOpenAi::start(Script::Status(429, body.into())).await;
    let (room, mut outputs, job) = fake.assistant("AJ_llm_status", fake.limits(&[])).await;
    room.send_text("alice", "lk.chat", "hello", &[]);
    let (text, to) = reply(&mut outputs).await;
    assert_eq!(text, format!("error: 429 {body}"));
    assert_eq!(to, ["alice"]);
    room.send_text("alice", "lk.chat", "ping", &[]);
    assert_eq!(reply(&mut outputs).await.0, "pong", "the job goes on");
    assert!(!job.is_finished());
    ends_well(room, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_not_on_the_allow_list_is_denied() {
    let fake = FakeOpenAi::start(Script::stream(&["never"])).await;
    let (room, mut outputs, job) = fake.assistant("AJ_llm_denied", JobLimits::default()).await;
    room.send_text("alice", "lk.chat", "hello", &[]);
    let (text, _) = reply(&mut outputs).await;
    assert!(
        text.starts_with("error: denied by the host") && text.contains("HttpRequestDenied"),
        "{text}"
    );
    assert!(
        fake.requests().is_empty(),
        "a denied request reached the provider"
    );
    ends_well(room, job).await;
}

/// Issue 14's "done": one job listens to its room, streams from an LLM
/// over HTTP and holds a speech provider's WebSocket at the same time,
/// with keys the operator configured on the host for each provider: each
/// reaches its own provider, and the guest's code holds none (what it can
/// and cannot see of them is `credentials.rs`'s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_job_holds_a_speech_socket_streams_an_answer_and_chats_at_once() {
    const LLM_KEY: &str = "sk-llm-5f0e2a";
    const SPEECH_KEY: &str = "sk-speech-91bd47";
    let speech = websocket::talker(&["hello from speech", "a second transcript"]).await;
    let fake = FakeOpenAi::start(Script::Stream {
        deltas: vec!["first".into(), " second".into()],
        hold_after: Some(1),
    })
    .await;
    let metadata = fake.assistant_metadata(Some(&speech.url("/v1/listen")));
    let key = |port: u16, value: &'static str| {
        Credential::with_env(
            &format!("127.0.0.1:{port}"),
            "Authorization",
            "Bearer {env:KEY}",
            move |_| Some(value.into()),
        )
        .expect("a loopback credential")
    };
    let limits = JobLimits {
        credentials: Credentials::new([key(fake.port(), LLM_KEY), key(speech.port, SPEECH_KEY)])
            .expect("one credential per destination"),
        ..fake.limits(&[speech.port])
    };
    let (room, mut outputs, job) =
        start_with(guests::ASSISTANT, "AJ_llm_all", &metadata, limits).await;
    // Forwarded to everyone, in order.
    for expected in ["hello from speech", "a second transcript"] {
        assert_eq!(reply(&mut outputs).await, (expected.into(), vec![]));
    }
    room.send_text("alice", "lk.chat", "a long answer please", &[]);
    assert_eq!(reply(&mut outputs).await.0, "first");
    room.send_text("alice", "lk.chat", "ping", &[]);
    assert_eq!(reply(&mut outputs).await.0, "pong");
    fake.release();
    assert_eq!(reply(&mut outputs).await.0, " second");
    assert_eq!(
        speech.seen.ended.load(Ordering::Relaxed),
        0,
        "the socket is held"
    );
    ends_well(room, job).await;
    // The job's end closes the socket normally; it was the only one.
    tokio::time::timeout(WAIT, async {
        while speech.seen.ended.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the socket ends with the job");
    assert_eq!(speech.seen.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(*speech.seen.close_codes.lock().unwrap(), [1000]);
    // Each provider got its own key, from the host.
    assert_eq!(
        *speech.seen.authorizations.lock().unwrap(),
        [Some(format!("Bearer {SPEECH_KEY}"))]
    );
    let llm_keys: Vec<_> = fake
        .requests()
        .iter()
        .flat_map(|r| r.headers.clone())
        .filter(|(name, _)| name == "authorization")
        .map(|(_, value)| value)
        .collect();
    assert_eq!(llm_keys, [format!("Bearer {LLM_KEY}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speech_socket_not_on_the_allow_list_is_reported_and_the_job_goes_on() {
    let speech = websocket::talker(&["never heard"]).await;
    let fake = FakeOpenAi::start(Script::stream(&["unused"])).await;
    let metadata = fake.assistant_metadata(Some(&speech.url("/v1/listen")));
    let (room, mut outputs, job) = start_with(
        guests::ASSISTANT,
        "AJ_llm_speech_denied",
        &metadata,
        fake.limits(&[]),
    )
    .await;
    let (text, to) = reply(&mut outputs).await;
    assert!(
        text.starts_with("error: speech: WebSocket denied by the host"),
        "{text}"
    );
    assert!(to.is_empty());
    room.send_text("alice", "lk.chat", "ping", &[]);
    assert_eq!(reply(&mut outputs).await.0, "pong", "the job goes on");
    assert_eq!(speech.seen.accepted.load(Ordering::Relaxed), 0);
    ends_well(room, job).await;
}
