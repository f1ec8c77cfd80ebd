"""An agent-like client of LiveKit's Python rtc SDK, to check the WebRTC double.

Run by `tests/tests/room.rs` inside a private network namespace with
LIVEKIT_URL and LIVEKIT_TOKEN set. It joins the room, answers every data
packet and every `lk.chat` text stream to its sender only ("echo: ..."),
subscribes to remote audio and counts the frames, publishes a microphone
track fed with silence, and exits when the room disconnects it (at most
60 s). Its last line is a JSON summary.
"""

import asyncio
import json
import os

from livekit import rtc


async def main() -> int:
    room = rtc.Room()
    done = asyncio.Event()
    seen, frames, reason = [], [0], [None]
    tasks = set()

    def spawn(coro):
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_data(pkt):
        sender = pkt.participant.identity if pkt.participant else ""
        spawn(room.local_participant.publish_data(
            b"echo: " + pkt.data, topic=pkt.topic, destination_identities=[sender]))

    async def answer_text(reader, identity):
        text = await reader.read_all()
        await room.local_participant.send_text(
            "echo: " + text, topic="lk.chat", destination_identities=[identity])

    async def count_frames(track):
        async for _ in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            frames[0] += 1

    def on_track(track, _publication, _participant):
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            spawn(count_frames(track))

    def on_disconnected(why):
        reason[0] = int(why)
        done.set()

    room.on("participant_connected", lambda p: seen.append(p.identity))
    room.on("data_received", on_data)
    room.on("track_subscribed", on_track)
    room.on("disconnected", on_disconnected)
    room.register_text_stream_handler(
        "lk.chat", lambda reader, identity: spawn(answer_text(reader, identity)))
    await room.connect(os.environ["LIVEKIT_URL"], os.environ["LIVEKIT_TOKEN"])

    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("voice", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))

    async def feed():
        frame = rtc.AudioFrame.create(48000, 1, 480)
        for _ in range(1000):  # 10 s at most
            await source.capture_frame(frame)

    spawn(feed())
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        pass
    for task in list(tasks):
        task.cancel()
    await room.disconnect()
    print(json.dumps({"seen": seen, "frames": frames[0], "disconnect_reason": reason[0]}))
    return 0


raise SystemExit(asyncio.run(main()))
