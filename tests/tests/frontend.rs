//! LiveKit's frontend contract in the sim room, through the raw 0.1.4
//! imports: the `frontend` guest (tests/guests/frontend) scripted by its
//! job metadata.
//!
//! What is proven: `lk.agent.state` reaches the room as the agent's
//! attribute; a transcription is one `lk.transcription` stream with its
//! three attributes, one chunk per word and `lk.transcription_final` =
//! `true` in its trailer; a transcription on behalf of a participant
//! names them as its sender, and one on behalf of someone absent is
//! denied; calls to the agent's methods are answered (a result, an error
//! with its code and data), an unregistered method is 1400, a call left
//! unanswered is 1502 and answering it later fails with `closed`; the
//! agent's calls on a participant get their answer or 1502, and a payload
//! over LiveKit's 15 KiB is `too-large`; byte streams reach the agent on
//! accepted topics only, whole, and one over the host's cap arrives
//! marked incomplete.

use std::time::Duration;

use agent_host::Outcome;
use agent_host::room::BYTE_STREAM_MAX_BYTES;
use agent_host::room::sim::{SimByteStream, SimOutput};
use agent_host_tests::guests;
use agent_host_tests::sim::{WAIT, next, start};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The next chat report of the guest, with the agent's identity.
async fn report(outputs: &mut UnboundedReceiver<SimOutput>) -> (String, String) {
    next(outputs, |o| match o {
        SimOutput::Text { from, text } if text.topic == "lk.chat" => Some((from, text.text)),
        _ => None,
    })
    .await
}

async fn succeeds(job: JoinHandle<Outcome>) {
    let outcome = tokio::time::timeout(WAIT, job).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Success);
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_state_and_a_transcription_streamed_word_by_word() {
    let script = "state thinking;transcribe seg-1 TR_mic hello there world;state speaking;\
                  unclosed seg-2 cut short";
    let (_room, mut outputs, job) = start(guests::FRONTEND, "AJ_fe_transcribe", script).await;
    let mut seen = Vec::new();
    let mut stream = None;
    let mut chunks = Vec::new();
    while seen.len() < 2 || stream.is_none() || chunks.len() < 4 {
        let output = tokio::time::timeout(WAIT, outputs.recv())
            .await
            .expect("the agent acts")
            .expect("the room is open");
        match output {
            SimOutput::Attributes { attributes, .. } => seen.extend(
                attributes
                    .into_iter()
                    .filter(|(k, _)| k == "lk.agent.state")
                    .map(|(_, v)| v),
            ),
            SimOutput::TextStreamOpened { id, options, .. } => {
                assert_eq!(options.topic, "lk.transcription");
                assert_eq!(
                    options.attributes,
                    pairs(&[
                        ("lk.segment_id", "seg-1"),
                        ("lk.transcribed_track_id", "TR_mic"),
                        ("lk.transcription_final", "false"),
                    ])
                );
                assert_eq!(options.sender, None, "the agent's own");
                stream = Some(id);
            }
            SimOutput::TextStreamChunk { id, text, .. } => {
                assert_eq!(Some(&id), stream.as_ref());
                chunks.push(text);
            }
            SimOutput::TextStreamClosed { id, attributes, .. } => {
                assert_eq!(Some(&id), stream.as_ref());
                assert_eq!(attributes, pairs(&[("lk.transcription_final", "true")]));
                chunks.push("<closed>".into());
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["thinking", "speaking"]);
    assert_eq!(chunks, ["hello ", "there ", "world", "<closed>"]);
    // A writer dropped without `close` ends its stream, trailer empty.
    let closed = next(&mut outputs, |o| match o {
        SimOutput::TextStreamClosed { id, attributes, .. } if Some(&id) != stream.as_ref() => {
            Some(attributes)
        }
        _ => None,
    })
    .await;
    assert!(closed.is_empty(), "{closed:?}");
    assert_eq!(report(&mut outputs).await.1, "dropped seg-2");
    succeeds(job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcription_on_behalf_of_a_participant_and_of_someone_absent() {
    let script = "user alice u-1 hi agent;user bob u-2 not here";
    let (_room, mut outputs, job) = start(guests::FRONTEND, "AJ_fe_user", script).await;
    let options = next(&mut outputs, |o| match o {
        SimOutput::TextStreamOpened { options, .. } => Some(options),
        _ => None,
    })
    .await;
    assert_eq!(options.sender.as_deref(), Some("alice"));
    assert_eq!(options.topic, "lk.transcription");
    assert!(
        options
            .attributes
            .contains(&("lk.transcription_final".into(), "true".into()))
    );
    assert_eq!(report(&mut outputs).await.1, "user u-1");
    let (_, denied) = report(&mut outputs).await;
    assert!(
        denied.starts_with("user error RoomError::Denied("),
        "{denied}"
    );
    succeeds(job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_both_ways_with_errors_timeouts_and_the_payload_cap() {
    let script = "register echo fail slow;serve 3;\
                  call alice ping 5000 hello;call alice ping 300 hello;bigcall alice";
    let (room, mut outputs, job) = start(guests::FRONTEND, "AJ_fe_rpc", script).await;
    let (agent, registered) = report(&mut outputs).await;
    assert_eq!(registered, "registered");
    let call = |method: &str, payload: &str, ms| {
        room.perform_rpc("alice", &agent, method, payload, Duration::from_millis(ms))
    };
    assert_eq!(call("echo", "hi", 10_000).await, Ok("hi".into()));
    let failed = call("fail", "why", 10_000).await.unwrap_err();
    assert_eq!(
        (failed.code, failed.message.as_str(), failed.data.as_deref()),
        (4001, "nope", Some("why"))
    );
    let unregistered = call("missing", "", 10_000).await.unwrap_err();
    assert_eq!(unregistered.code, 1400, "{unregistered:?}");
    let unanswered = call("slow", "", 300).await.unwrap_err();
    assert_eq!(unanswered.code, 1502, "{unanswered:?}");
    assert_eq!(report(&mut outputs).await.1, "served 3");
    assert_eq!(report(&mut outputs).await.1, "late Err(RoomError::Closed)");

    // The agent calls alice: answered, then left unanswered.
    let (id, outgoing) = next(&mut outputs, |o| match o {
        SimOutput::RpcRequest { id, call, .. } => Some((id, call)),
        _ => None,
    })
    .await;
    assert_eq!(
        (outgoing.destination.as_str(), outgoing.method.as_str()),
        ("alice", "ping")
    );
    assert_eq!(outgoing.payload, "hello");
    assert!(room.answer_rpc(&id, Ok("pong".into())));
    assert_eq!(report(&mut outputs).await.1, "answer pong");
    let timed_out = report(&mut outputs).await.1;
    assert!(timed_out.starts_with("rpc-error 1502 "), "{timed_out}");
    let too_large = report(&mut outputs).await.1;
    assert_eq!(too_large, "call error RoomError::TooLarge(15360)");
    succeeds(job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_streams_on_accepted_topics_only_and_capped() {
    let topic = "lk.agent.pre-connect-audio-buffer";
    let script = format!("accept {topic};receive 2");
    let (room, mut outputs, job) = start(guests::FRONTEND, "AJ_fe_bytes", &script).await;
    assert_eq!(report(&mut outputs).await.1, format!("accepted {topic}"));
    let stream = |topic: &str, len| SimByteStream {
        topic: topic.into(),
        name: "buffer".into(),
        mime_type: "application/octet-stream".into(),
        attributes: pairs(&[("sampleRate", "16000")]),
        bytes: vec![7; len],
    };
    room.send_bytes("alice", stream("other", 10), &[]);
    room.send_bytes("alice", stream(topic, 1000), &[]);
    room.send_bytes("alice", stream(topic, BYTE_STREAM_MAX_BYTES + 1), &[]);
    assert_eq!(
        report(&mut outputs).await.1,
        format!("bytes {topic} alice 1000 sampleRate=16000 None"),
        "the stream on a topic not accepted never arrives"
    );
    let capped = report(&mut outputs).await.1;
    let prefix = format!("bytes {topic} alice {BYTE_STREAM_MAX_BYTES} sampleRate=16000 Some(");
    assert!(capped.starts_with(&prefix), "{capped}");
    succeeds(job).await;
}
