//! Tests with the real library and no network: ignored when it is not
//! installed, failed when it is missing on CI (see `super::testing`).

use std::path::Path;
use std::time::Duration;

use prost::Message as _;

use super::client::Client;
use super::connected::{AUDIO_QUEUE, EVENT_QUEUE};
use super::handle::OwnedHandle;
use super::proto::{self, ffi_event, ffi_request, ffi_response, room_event};
use super::session::{connect, fake_session};
use super::testing::rooms;
use super::{FfiError, FfiRooms};
use crate::bindings::audio::AudioFormat;
use crate::bindings::events::Event;
use crate::bindings::streams::ByteStream;
use crate::bindings::types::{JobInfo, JobType, RoomError, RoomEvent, RoomInfo};
use crate::host_memory::HostMemory;
use crate::room::{
    BYTE_STREAM_MAX_BYTES, ConnectRequest, Incoming, OutgoingData, RoomSession, RoomTransport,
};

/// The session's next event (these tests queue only events).
async fn next_event(session: &mut dyn RoomSession) -> Option<Event> {
    loop {
        if let Incoming::Event(event) = session.next_incoming().await?.into_item() {
            return Some(event);
        }
    }
}

fn request(url: &str) -> ConnectRequest {
    ConnectRequest {
        job: JobInfo {
            id: "AJ_ffi_test".into(),
            job_type: JobType::Room,
            room: RoomInfo {
                sid: String::new(),
                name: "ffi-test".into(),
                metadata: String::new(),
            },
            participant: None,
            agent_name: String::new(),
            metadata: String::new(),
            attributes: Vec::new(),
            identity: "agent-ffi-test".into(),
        },
        url: url.into(),
        token: "not-a-token".into(),
        host_memory: budget(),
    }
}

/// A job's default host-memory budget.
fn budget() -> HostMemory {
    HostMemory::new(crate::config::job::DEFAULT_HOST_MEMORY_BYTES)
}

#[test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
fn loads_once_per_process() {
    let first = rooms();
    let again = FfiRooms::load(first.library_path()).expect("loading again");
    assert_eq!(first.library_path(), again.library_path());
    assert!(std::ptr::eq(first.client, again.client), "the same client");
    match FfiRooms::load(Path::new("/bin/sh")) {
        Err(FfiError::OtherLibrary { loaded, .. }) => assert_eq!(loaded, first.library_path()),
        other => panic!("expected OtherLibrary, got {other:?}"),
    }
}

#[test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
fn undecodable_events_are_dropped() {
    let rooms = rooms();
    // Not protobuf, a truncated message, and an unknown variant.
    rooms.client.on_bytes(&[0xff, 0xff, 0xff]);
    rooms.client.on_bytes(&[0x0a, 0x10, 0x01]);
    rooms.client.on_bytes(&[0xfa, 0x0f, 0x00]);
    assert!(rooms.client.check_usable().is_ok());
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn connect_without_a_server_fails_with_a_transport_error() {
    let rooms = rooms();
    let err = tokio::time::timeout(
        Duration::from_secs(90),
        rooms.connect(request("ws://127.0.0.1:9")),
    )
    .await
    .expect("the connect ends")
    .err()
    .expect("nothing listens on port 9");
    match err {
        RoomError::Transport(reason) => {
            assert!(
                reason.contains("could not connect to ws://127.0.0.1:9"),
                "{reason}"
            );
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    let err = rooms.connect(request("")).await.err().expect("no URL");
    assert!(
        matches!(err, RoomError::Transport(ref r) if r.contains("no LiveKit URL")),
        "{err:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn audio_source_handles_are_released_once() {
    let rooms = rooms();
    let client = rooms.client;
    let response = client
        .request(ffi_request::Message::NewAudioSource(
            proto::NewAudioSourceRequest {
                r#type: proto::AudioSourceType::AudioSourceNative as i32,
                options: Some(proto::AudioSourceOptions {
                    echo_cancellation: false,
                    noise_suppression: false,
                    auto_gain_control: false,
                }),
                sample_rate: Some(48_000),
                num_channels: Some(1),
                queue_size_ms: Some(1000),
            },
        ))
        .expect("creating a source");
    let ffi_response::Message::NewAudioSource(created) = response else {
        panic!("unexpected response {response:?}");
    };
    let source = OwnedHandle::take(client.lib, created.source.handle).expect("a source handle");
    let id = source.id();

    // A frame goes through the async route (response, then callback).
    let samples = vec![0i16; 480];
    let event = client
        .call(
            ffi_request::Message::CaptureAudioFrame(proto::CaptureAudioFrameRequest {
                source_handle: id,
                buffer: proto::AudioFrameBufferInfo {
                    data_ptr: samples.as_ptr() as u64,
                    num_channels: 1,
                    sample_rate: 48_000,
                    samples_per_channel: 480,
                },
            }),
            Duration::from_secs(10),
        )
        .await
        .expect("capturing a frame");
    drop(samples);
    let ffi_event::Message::CaptureAudioFrame(callback) = event else {
        panic!("unexpected callback {event:?}");
    };
    assert_eq!(callback.error.unwrap_or_default(), "");

    drop(source);
    assert!(
        !client.lib.drop_handle(id),
        "the handle was released when its owner was dropped"
    );
}

fn encode(event: ffi_event::Message) -> Vec<u8> {
    proto::FfiEvent {
        message: Some(event),
    }
    .encode_to_vec()
}

fn room_event(room: u64, event: room_event::Message) -> Vec<u8> {
    encode(ffi_event::Message::RoomEvent(proto::RoomEvent {
        room_handle: room,
        message: Some(event),
    }))
}

fn joined(room: u64, identity: &str, handle: u64) -> Vec<u8> {
    room_event(
        room,
        room_event::Message::ParticipantConnected(proto::ParticipantConnected {
            info: proto::OwnedParticipant {
                handle: proto::FfiOwnedHandle { id: handle },
                info: proto::ParticipantInfo {
                    sid: format!("PA_{identity}"),
                    name: identity.into(),
                    identity: identity.into(),
                    metadata: String::new(),
                    attributes: Default::default(),
                    kind: proto::ParticipantKind::Standard as i32,
                },
            },
        }),
    )
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn a_library_panic_fails_every_session_and_every_later_connect() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let (a_id, b_id) = (u64::MAX - 10, u64::MAX - 20);
    let mut a = fake_session(client, a_id, budget());
    let mut b = fake_session(client, b_id, budget());
    client.on_bytes(&joined(a_id, "alice", u64::MAX - 11));
    match next_event(&mut a).await {
        Some(Event::Room(RoomEvent::ParticipantJoined(p))) => assert_eq!(p.identity, "alice"),
        other => panic!("expected alice to join, got {other:?}"),
    }
    assert_eq!(a.participants().len(), 1);
    assert!(
        b.participants().is_empty(),
        "events go to their own room only"
    );

    client.on_bytes(&encode(ffi_event::Message::Panic(proto::Panic {
        message: "boom".into(),
    })));
    for session in [&mut a, &mut b] {
        assert!(next_event(session).await.is_none(), "the session is over");
        let failure = session.failure().expect("the session failed");
        assert!(
            failure.contains("LiveKit's client library panicked: boom"),
            "{failure}"
        );
        let err = session
            .publish_data(OutgoingData {
                payload: b"x".to_vec(),
                topic: None,
                reliable: true,
                destinations: Vec::new(),
            })
            .await;
        assert_eq!(err, Err(RoomError::Closed));
    }
    match connect(client, request("ws://127.0.0.1:9")).await {
        Err(RoomError::Transport(reason)) => {
            assert!(reason.contains("panicked (boom)"), "{reason}")
        }
        Err(other) => panic!("expected a transport error, got {other:?}"),
        Ok(_) => panic!("connected after a panic"),
    }
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn a_job_that_does_not_read_its_events_fails_without_blocking_the_pump() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let id = u64::MAX - 30;
    let mut session = fake_session(client, id, budget());
    let capacity = EVENT_QUEUE + AUDIO_QUEUE;
    for i in 0..=capacity {
        client.on_bytes(&room_event(
            id,
            room_event::Message::RoomMetadataChanged(proto::RoomMetadataChanged {
                metadata: i.to_string(),
            }),
        ));
    }
    let failure = session.failure().expect("the session failed");
    assert!(
        failure.contains("did not read its room events"),
        "{failure}"
    );
    // What was queued is still delivered, in order, then the session ends.
    for i in 0..capacity {
        match next_event(&mut session).await {
            Some(Event::Room(RoomEvent::RoomMetadataChanged(m))) => assert_eq!(m, i.to_string()),
            other => panic!("event {i}: {other:?}"),
        }
    }
    assert!(next_event(&mut session).await.is_none());
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn unread_audio_is_dropped_and_nothing_else_is() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let (id, stream) = (u64::MAX - 40, u64::MAX - 41);
    let mut session = fake_session(client, id, budget());
    let format = AudioFormat {
        sample_rate: 48_000,
        channels: 1,
    };
    session
        .subscribe_audio("alice".into(), format)
        .await
        .unwrap();
    client
        .lock()
        .routes
        .streams
        .insert(stream, (id, "alice".into()));
    let frame = |n: u64| {
        encode(ffi_event::Message::AudioStreamEvent(
            proto::AudioStreamEvent {
                stream_handle: stream,
                message: Some(proto::audio_stream_event::Message::FrameReceived(
                    proto::AudioFrameReceived {
                        frame: proto::OwnedAudioFrameBuffer {
                            handle: proto::FfiOwnedHandle {
                                id: u64::MAX - 1000 - n,
                            },
                            // No samples: the pointer is null.
                            info: proto::AudioFrameBufferInfo {
                                data_ptr: 0,
                                num_channels: 1,
                                sample_rate: 48_000,
                                samples_per_channel: 480,
                            },
                        },
                    },
                )),
            },
        ))
    };
    for n in 0..(AUDIO_QUEUE as u64 + 50) {
        client.on_bytes(&frame(n));
    }
    client.on_bytes(&room_event(
        id,
        room_event::Message::RoomMetadataChanged(proto::RoomMetadataChanged {
            metadata: "after the audio".into(),
        }),
    ));
    assert_eq!(session.failure(), None);
    for n in 0..AUDIO_QUEUE {
        match next_event(&mut session).await {
            Some(Event::Audio(frame)) => {
                assert_eq!(frame.participant, "alice");
                assert_eq!(frame.format, format);
            }
            other => panic!("frame {n}: {other:?}"),
        }
    }
    match next_event(&mut session).await {
        Some(Event::Room(RoomEvent::RoomMetadataChanged(m))) => assert_eq!(m, "after the audio"),
        other => panic!("expected the metadata change, got {other:?}"),
    }
    // Reading made room for new frames.
    client.on_bytes(&frame(10_000));
    assert!(matches!(
        next_event(&mut session).await,
        Some(Event::Audio(_))
    ));
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn unread_events_over_the_host_memory_budget_fail_the_job() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let id = u64::MAX - 50;
    let memory = HostMemory::new(1 << 20);
    let mut session = fake_session(client, id, memory.clone());
    // 64 KiB metadata changes: the 1 MiB budget takes 15, far below the
    // queue's count cap.
    let metadata = "m".repeat(64 << 10);
    for _ in 0..32 {
        client.on_bytes(&room_event(
            id,
            room_event::Message::RoomMetadataChanged(proto::RoomMetadataChanged {
                metadata: metadata.clone(),
            }),
        ));
    }
    let failure = session.failure().expect("the session failed");
    assert_eq!(failure, "host memory limit 1 MiB exceeded (room events)");
    assert_eq!(memory.exceeded().map(|e| e.to_string()), Some(failure));
    assert!(memory.used() <= 1 << 20);
    let mut delivered = 0;
    while next_event(&mut session).await.is_some() {
        delivered += 1;
    }
    assert_eq!(delivered, 15);
    assert_eq!(memory.used(), 0, "read events give their bytes back");
}

fn byte_event(reader: u64, detail: proto::byte_stream_reader_event::Detail) -> Vec<u8> {
    encode(ffi_event::Message::ByteStreamReaderEvent(
        proto::ByteStreamReaderEvent {
            reader_handle: reader,
            detail: Some(detail),
        },
    ))
}

fn chunk(reader: u64, content: Vec<u8>) -> Vec<u8> {
    byte_event(
        reader,
        proto::byte_stream_reader_event::Detail::ChunkReceived(
            proto::ByteStreamReaderChunkReceived { content },
        ),
    )
}

fn arriving(topic: &str) -> ByteStream {
    ByteStream {
        id: format!("BS_{topic}"),
        sender: "alice".into(),
        topic: topic.into(),
        name: "buffer".into(),
        mime_type: "application/octet-stream".into(),
        attributes: vec![("sampleRate".into(), "16000".into())],
        bytes: Vec::new(),
        incomplete: None,
    }
}

/// The next item, waiting at most a second (none: nothing came).
async fn next_item(session: &mut dyn RoomSession) -> Option<Incoming> {
    tokio::time::timeout(Duration::from_secs(1), session.next_incoming())
        .await
        .ok()
        .flatten()
        .map(|q| q.into_item())
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn byte_streams_are_charged_as_they_arrive_and_queued_whole_up_to_the_cap() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let id = u64::MAX - 60;
    let memory = budget();
    let mut session = fake_session(client, id, memory.clone());
    session
        .accept_byte_streams("lk.agent.pre-connect-audio-buffer".into())
        .await
        .expect("accepting a topic");
    // A stream on a topic nobody accepted is disposed of as it opens.
    client.on_bytes(&room_event(
        id,
        room_event::Message::ByteStreamOpened(proto::ByteStreamOpened {
            reader: proto::OwnedByteStreamReader {
                handle: proto::FfiOwnedHandle { id: u64::MAX - 61 },
                info: proto::ByteStreamInfo {
                    stream_id: "BS_other".into(),
                    mime_type: String::new(),
                    topic: "other".into(),
                    total_length: None,
                    attributes: Default::default(),
                    name: String::new(),
                },
            },
            participant_identity: "alice".into(),
        }),
    ));
    assert!(client.lock().routes.readers.is_empty(), "not read");

    // An accepted one is read chunk by chunk (its reader made up: the
    // library never saw it, so reading is started by hand).
    let (small, big) = (u64::MAX - 62, u64::MAX - 63);
    let topic = "lk.agent.pre-connect-audio-buffer";
    for reader in [small, big] {
        let mut shared = client.lock();
        let super::client::PumpState { rooms, routes, .. } = &mut *shared;
        let handle = OwnedHandle::take(client.lib, proto::FfiOwnedHandle { id: reader }).unwrap();
        rooms
            .get_mut(&id)
            .unwrap()
            .read_bytes(handle, arriving(topic), routes);
    }
    let before = memory.used();
    client.on_bytes(&chunk(small, vec![1; 1000]));
    assert!(
        memory.used() >= before + 1000,
        "a chunk is charged as it arrives"
    );
    client.on_bytes(&chunk(small, vec![2; 24]));
    assert!(
        next_item(&mut session).await.is_none(),
        "not before its end"
    );
    client.on_bytes(&byte_event(
        small,
        proto::byte_stream_reader_event::Detail::Eos(proto::ByteStreamReaderEos {
            error: None,
            attributes: [("channels".to_string(), "1".to_string())].into(),
        }),
    ));
    match next_item(&mut session).await {
        Some(Incoming::Bytes(stream)) => {
            assert_eq!(stream.bytes.len(), 1024);
            assert_eq!(stream.bytes[1000..], [2; 24]);
            assert_eq!(stream.sender, "alice");
            assert_eq!(stream.incomplete, None);
            assert_eq!(
                stream.attributes,
                [
                    ("channels".to_string(), "1".to_string()),
                    ("sampleRate".to_string(), "16000".to_string())
                ],
                "the trailer's attributes are merged into the header's"
            );
        }
        other => panic!("expected the byte stream, got {other:?}"),
    }

    // Past the cap the stream is queued at once, incomplete, and its
    // reader released; later chunks are ignored.
    client.on_bytes(&chunk(big, vec![0; BYTE_STREAM_MAX_BYTES - 10]));
    client.on_bytes(&chunk(big, vec![0; 20]));
    client.on_bytes(&chunk(big, vec![0; 20]));
    match next_item(&mut session).await {
        Some(Incoming::Bytes(stream)) => {
            assert_eq!(stream.bytes.len(), BYTE_STREAM_MAX_BYTES);
            let reason = stream.incomplete.expect("marked incomplete");
            assert!(reason.contains("cap"), "{reason}");
        }
        other => panic!("expected the capped stream, got {other:?}"),
    }
    assert!(client.lock().routes.readers.is_empty(), "readers released");
    assert!(next_item(&mut session).await.is_none());
    assert_eq!(memory.used(), 0, "every byte given back");
}

fn invocation(room_local: u64, id: u64, method: &str, timeout_ms: u32) -> Vec<u8> {
    encode(ffi_event::Message::RpcMethodInvocation(
        proto::RpcMethodInvocationEvent {
            local_participant_handle: room_local,
            invocation_id: id,
            method: method.into(),
            request_id: format!("req-{id}"),
            caller_identity: "alice".into(),
            payload: "hi".into(),
            response_timeout_ms: timeout_ms,
        },
    ))
}

#[tokio::test]
#[cfg_attr(
    not(has_livekit_lib),
    ignore = "needs LiveKit's client library: run `agent-host setup`"
)]
async fn calls_reach_the_job_for_its_methods_only_and_expire_at_their_timeout() {
    let rooms = rooms();
    let client = Client::isolated(rooms.client.lib);
    let id = u64::MAX - 70;
    // fake_session's local participant handle.
    let local = id - 1;
    let mut session = fake_session(client, id, budget());
    // Registering asks the library, which does not know the made-up
    // participant: add the method to the room's table by hand.
    client
        .lock()
        .rooms
        .get_mut(&id)
        .unwrap()
        .methods
        .insert("echo".into());

    client.on_bytes(&invocation(local, 7, "not-registered", 10_000));
    client.on_bytes(&invocation(local, 8, "echo", 10_000));
    match next_item(&mut session).await {
        Some(Incoming::Call(call)) => {
            assert_eq!(
                call.id, "8",
                "the invocation id, and no call for the other method"
            );
            assert_eq!(
                (
                    call.caller.as_str(),
                    call.method.as_str(),
                    call.payload.as_str()
                ),
                ("alice", "echo", "hi")
            );
            assert_eq!(call.response_timeout_ms, 10_000);
        }
        other => panic!("expected the call, got {other:?}"),
    }
    // The answer goes to the library (which refuses the made-up
    // participant); once answered, the call waits no more.
    let _ = session.respond_rpc("8".into(), Ok("hi".into())).await;
    assert_eq!(
        session.respond_rpc("8".into(), Ok("again".into())).await,
        Err(RoomError::Closed)
    );
    assert_eq!(
        session
            .respond_rpc("not-a-call".into(), Ok(String::new()))
            .await,
        Err(RoomError::Closed)
    );

    // A call left unanswered is answered by the transport at its timeout.
    client.on_bytes(&invocation(local, 9, "echo", 50));
    assert!(matches!(
        next_item(&mut session).await,
        Some(Incoming::Call(_))
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(client.lock().rooms[&id].calls.is_empty(), "expired");
    assert_eq!(
        session.respond_rpc("9".into(), Ok("late".into())).await,
        Err(RoomError::Closed)
    );
}
