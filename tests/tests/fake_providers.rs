//! The fake speech and language providers behave as the wire protocols
//! of issue 15 say (`agent_host_tests::{fake_openai, fake_speech}`), so
//! the voice pipeline's tests and the density benchmark measure agents,
//! not fakes. Each test is a small client on loopback: hyper for the
//! OpenAI-compatible HTTP endpoints, tokio-tungstenite for Deepgram's
//! WebSocket ones.
//!
//! What is proven: transcriptions answer the scripted transcripts in order
//! and then repeat the last, record model and audio length, and refuse a
//! file that is not WAVE with OpenAI's error body; speech streams a loud
//! tone whose length follows the text, in 100 ms chunks, no sooner than the
//! scripted delay, as PCM or WAVE, and refuses formats it cannot encode;
//! streaming STT sends growing interims while voiced audio arrives, the
//! whole transcript on `Finalize`, an empty final after silence, and
//! `Metadata` and a `1000` close on `CloseStream`; streaming TTS sends the
//! tone for what was spoken on `Flush` then `Flushed`, stops on `Clear`
//! with `Cleared`, and both record the `authorization` header; an unknown
//! message closes with `1008`.

use std::time::{Duration, Instant};

use agent_host_tests::fake_openai::{FakeOpenAi, Script, wave_file};
use agent_host_tests::fake_speech::FakeSpeech;
use agent_host_tests::speech_script::{SpeechScript, chunk_bytes, has_energy, tone};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// How long any one step may take: generous, these are not benchmarks.
const WAIT: Duration = Duration::from_secs(10);

/// A response as the test read it: status, content type, and the body's
/// frames with how long after the request each arrived.
struct Answer {
    status: u16,
    content_type: String,
    frames: Vec<(Duration, Bytes)>,
}

impl Answer {
    fn body(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|(_, f)| f.to_vec()).collect()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).expect("a JSON body")
    }
}

/// `POST`s `body` to `fake`'s `path` on a new connection.
async fn post(fake: &FakeOpenAi, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", fake.port()))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .header("authorization", "Bearer test-key")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let asked = Instant::now();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("the body in time")
    {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push((asked.elapsed(), data));
        }
    }
    Answer {
        status,
        content_type,
        frames,
    }
}

/// A multipart form of `(name, filename, bytes)` parts; its content type
/// and body.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "fake-providers-boundary";
    let mut body = Vec::new();
    for (name, filename, value) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!(
                    "content-disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     content-type: audio/wav\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends `file` for transcription by `model`.
async fn transcribe(fake: &FakeOpenAi, file: &[u8]) -> Answer {
    let (content_type, body) = form(&[
        ("model", None, b"whisper-1"),
        ("language", None, b"en"),
        ("response_format", None, b"json"),
        ("file", Some("audio.wav"), file),
    ]);
    post(fake, "/v1/audio/transcriptions", &content_type, body).await
}

#[tokio::test]
async fn transcriptions_answer_the_script_in_order_then_repeat_the_last() {
    let script = SpeechScript::hearing(&["what time is it", "thank you"]);
    let fake = FakeOpenAi::start_voice(Script::stream(&["unused"]), script).await;
    // Half a second at 16 kHz.
    let file = wave_file(16_000, &tone(16_000, Duration::from_millis(500)));
    let mut heard = Vec::new();
    for _ in 0..3 {
        let answer = transcribe(&fake, &file).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/json");
        heard.push(answer.json()["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(heard, ["what time is it", "thank you", "thank you"]);
    let asked = fake.transcriptions();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked[0].model, "whisper-1");
    assert_eq!(asked[0].language.as_deref(), Some("en"));
    assert_eq!(asked[0].response_format.as_deref(), Some("json"));
    assert_eq!((asked[0].sample_rate, asked[0].audio_ms), (16_000, 500));
    let headers = &fake.requests()[0].headers;
    assert!(headers.contains(&("authorization".into(), "Bearer test-key".into())));
}

#[tokio::test]
async fn a_transcription_of_something_not_wave_is_refused_as_openai_refuses() {
    let fake = FakeOpenAi::start(Script::stream(&["unused"])).await;
    let answer = transcribe(&fake, b"ID3 this is an mp3, or noise").await;
    assert_eq!(answer.status, 400);
    let error = &answer.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"].as_str().unwrap().contains("RIFF/WAVE"),
        "{error}"
    );
    // No model at all is refused too, before the file is looked at.
    let (content_type, body) = form(&[("file", Some("audio.wav"), b"RIFF")]);
    let answer = post(&fake, "/v1/audio/transcriptions", &content_type, body).await;
    assert_eq!(answer.status, 400);
    assert!(
        fake.transcriptions().is_empty(),
        "nothing refused is recorded as answered"
    );
}

/// Asks for `input` spoken in `format`.
async fn speak(fake: &FakeOpenAi, input: &str, format: &str) -> Answer {
    let request = serde_json::json!({
        "model": "tts-1", "input": input, "voice": "alloy", "response_format": format,
    });
    post(
        fake,
        "/v1/audio/speech",
        "application/json",
        request.to_string().into_bytes(),
    )
    .await
}

#[tokio::test]
async fn speech_streams_a_loud_tone_as_long_as_the_text_after_the_delay() {
    let delay = Duration::from_millis(300);
    let script = SpeechScript {
        first_byte_delay: delay,
        ..SpeechScript::default()
    };
    let fake = FakeOpenAi::start_voice(Script::stream(&["unused"]), script).await;
    let answer = speak(&fake, "Hello there, friend!", "pcm").await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "audio/pcm")
    );
    assert!(
        answer.frames[0].0 >= delay,
        "the first byte came after {:?}",
        answer.frames[0].0
    );
    // 20 characters at 40 ms: 800 ms at 24 kHz, s16 mono, in 100 ms chunks.
    let pcm = answer.body();
    assert_eq!(pcm.len(), 24_000 * 2 * 800 / 1000);
    // Sent in 100 ms chunks (the client may read them in smaller pieces).
    assert!(answer.frames.len() >= 8);
    assert!(
        answer
            .frames
            .iter()
            .all(|(_, f)| f.len() <= chunk_bytes(24_000))
    );
    assert!(
        pcm.chunks(480).all(has_energy),
        "10 ms of the tone is silent"
    );
    let asked = fake.speeches();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (
            asked[0].model.as_str(),
            asked[0].input.as_str(),
            asked[0].voice.as_str()
        ),
        ("tts-1", "Hello there, friend!", "alloy")
    );
}

#[tokio::test]
async fn speech_comes_as_wave_when_asked_and_is_refused_in_formats_without_an_encoder() {
    let fake = FakeOpenAi::start(Script::stream(&["unused"])).await;
    let answer = speak(&fake, "hi", "wav").await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "audio/wav")
    );
    let file = answer.body();
    assert_eq!(&file[..4], b"RIFF");
    assert_eq!(
        file,
        wave_file(24_000, &tone(24_000, Duration::from_millis(80)))
    );
    let answer = speak(&fake, "hi", "mp3").await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mp3")
    );
    assert_eq!(
        fake.speeches().len(),
        1,
        "only the answered request is recorded"
    );
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `fake`'s `path` with Deepgram's `Token` authorization.
async fn connect(fake: &FakeSpeech, path: &str) -> Client {
    let mut request = format!("{}{path}", fake.url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Token test-key".parse().unwrap());
    let (client, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connected in time")
        .unwrap();
    client
}

/// The next message from the fake.
async fn receive(client: &mut Client) -> Message {
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("a message in time")
        .expect("the socket is open")
        .unwrap()
}

/// The next text message, as JSON.
async fn receive_json(client: &mut Client) -> serde_json::Value {
    match receive(client).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn send_json(client: &mut Client, json: serde_json::Value) {
    client.send(Message::text(json.to_string())).await.unwrap();
}

/// `pcm` in 20 ms binary frames (16 kHz: 640 bytes), as a client streams it.
async fn stream_audio(client: &mut Client, pcm: &[u8]) {
    for frame in pcm.chunks(640) {
        client
            .send(Message::Binary(Bytes::copy_from_slice(frame)))
            .await
            .unwrap();
    }
}

fn transcript(results: &serde_json::Value) -> &str {
    results["channel"]["alternatives"][0]["transcript"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn streaming_stt_sends_growing_interims_then_the_final_on_finalize() {
    let script = SpeechScript::hearing(&["what is the weather", "bye"]);
    let fake = FakeSpeech::start(script).await;
    let path = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true";
    let mut client = connect(&fake, path).await;
    // 1 s of voice: interims at 300, 600 and 900 ms of it.
    let speech = tone(16_000, Duration::from_secs(1));
    stream_audio(&mut client, &speech).await;
    let mut interims = Vec::new();
    for _ in 0..3 {
        let results = receive_json(&mut client).await;
        assert_eq!(
            (results["type"].as_str(), results["is_final"].as_bool()),
            (Some("Results"), Some(false))
        );
        interims.push(transcript(&results).to_owned());
    }
    assert_eq!(interims, ["what", "what is", "what is the"]);
    send_json(&mut client, serde_json::json!({ "type": "Finalize" })).await;
    let last = receive_json(&mut client).await;
    assert_eq!(transcript(&last), "what is the weather");
    for flag in ["is_final", "speech_final", "from_finalize"] {
        assert_eq!(last[flag], true, "{flag} in {last}");
    }
    assert_eq!(
        (last["start"].as_f64(), last["duration"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    // Silence then Finalize: an empty final, and the script stays where it is.
    stream_audio(&mut client, &vec![0; 16_000]).await;
    send_json(&mut client, serde_json::json!({ "type": "KeepAlive" })).await;
    send_json(&mut client, serde_json::json!({ "type": "Finalize" })).await;
    let empty = receive_json(&mut client).await;
    assert_eq!(
        (transcript(&empty), empty["is_final"].as_bool()),
        ("", Some(true))
    );
    stream_audio(&mut client, &speech[..16_000]).await;
    send_json(&mut client, serde_json::json!({ "type": "CloseStream" })).await;
    // The pending half second (one interim at 300 ms) is finalized before
    // the metadata.
    let interim = receive_json(&mut client).await;
    assert_eq!(
        (transcript(&interim), interim["is_final"].as_bool()),
        ("bye", Some(false))
    );
    let results = receive_json(&mut client).await;
    assert_eq!(
        (transcript(&results), results["is_final"].as_bool()),
        ("bye", Some(true))
    );
    assert_eq!(results["from_finalize"], false);
    let metadata = receive_json(&mut client).await;
    assert_eq!(metadata["type"], "Metadata");
    assert_eq!(metadata["duration"].as_f64(), Some(2.0));
    match receive(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
    let connections = fake.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].path, path);
    assert_eq!(
        connections[0].authorization.as_deref(),
        Some("Token test-key")
    );
    assert_eq!(connections[0].audio_in, 64_000);
    assert_eq!(connections[0].messages.len(), 4);
}

#[tokio::test]
async fn streaming_tts_speaks_on_flush_and_stops_on_clear() {
    let fake = FakeSpeech::start(SpeechScript::default()).await;
    let path = "/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=24000";
    let mut client = connect(&fake, path).await;
    assert_eq!(receive_json(&mut client).await["type"], "Metadata");
    send_json(
        &mut client,
        serde_json::json!({ "type": "Speak", "text": "Hi " }),
    )
    .await;
    send_json(
        &mut client,
        serde_json::json!({ "type": "Speak", "text": "there" }),
    )
    .await;
    send_json(&mut client, serde_json::json!({ "type": "Flush" })).await;
    // 8 characters: 320 ms at 24 kHz, in 100 ms frames, then `Flushed` 0.
    let mut audio = Vec::new();
    let flushed = loop {
        match receive(&mut client).await {
            Message::Binary(frame) => audio.push(frame),
            Message::Text(text) => break serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        flushed,
        serde_json::json!({ "type": "Flushed", "sequence_id": 0 })
    );
    let sizes: Vec<usize> = audio.iter().map(Bytes::len).collect();
    assert_eq!(sizes, [4_800, 4_800, 4_800, 960]);
    assert!(audio.iter().all(|f| has_energy(f)));
    // A long text (10 s capped), cleared after its first frame.
    let long = "la ".repeat(200);
    send_json(
        &mut client,
        serde_json::json!({ "type": "Speak", "text": long }),
    )
    .await;
    send_json(&mut client, serde_json::json!({ "type": "Flush" })).await;
    assert!(matches!(receive(&mut client).await, Message::Binary(_)));
    send_json(&mut client, serde_json::json!({ "type": "Clear" })).await;
    let mut after = 0;
    let cleared = loop {
        match receive(&mut client).await {
            Message::Binary(_) => after += 1,
            Message::Text(text) => break serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        cleared,
        serde_json::json!({ "type": "Cleared", "sequence_id": 0 })
    );
    assert!(after < 98, "{after} frames went on after Clear");
    send_json(&mut client, serde_json::json!({ "type": "Close" })).await;
    match receive(&mut client).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
    let connections = fake.connections();
    assert_eq!(
        connections[0].authorization.as_deref(),
        Some("Token test-key")
    );
    assert!(connections[0].audio_out < 15_360 + 100 * 4_800);
}

#[tokio::test]
async fn an_unknown_message_or_path_is_closed_with_1008() {
    let fake = FakeSpeech::start(SpeechScript::default()).await;
    for (path, message) in [
        ("/v1/listen?sample_rate=16000", r#"{"type":"Transcribe"}"#),
        ("/v1/speak?sample_rate=24000", "not json"),
        ("/v1/elsewhere", ""),
    ] {
        let mut client = connect(&fake, path).await;
        if path.starts_with("/v1/speak") {
            assert_eq!(receive_json(&mut client).await["type"], "Metadata");
        }
        if !message.is_empty() {
            client.send(Message::text(message)).await.unwrap();
        }
        match receive(&mut client).await {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008, "{path}");
                assert!(!frame.reason.is_empty(), "{path}: the close says why");
            }
            other => panic!("{path}: expected a close, got {other:?}"),
        }
    }
}
