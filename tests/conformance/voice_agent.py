"""The official Python worker's voice agent, for the voice density benchmark
(`tests/benches/voice.rs`): livekit-agents' `AgentSession` with Silero's VAD
and the OpenAI plugin's STT, LLM and TTS, every one pointed at the fake
OpenAI-compatible provider (`agent_host_tests::fake_openai`).

Started by the benchmark as `voice_agent.py start` against fake-livekit
(whose jobs join rooms on the WebRTC double), like `agent.py`. Each job
connects to its room and runs one session until the room closes.

What the plugins send, and the fake answers: STT posts the user's turn as a
WAVE file to /audio/transcriptions (whisper-1: `response_format`
`verbose_json`); LLM streams /chat/completions; TTS posts /audio/speech with
`response_format` `pcm` (its default, `mp3`, would need an encoder in the
fake) and reads raw 24 kHz PCM.

Environment: CONFORMANCE_AGENT_NAME (agent name), VOICE_OPENAI_URL (the
fake's base URL, `http://HOST:PORT/v1`), VOICE_IDLE_PROCESSES (prewarmed job
processes, default 2).
"""

import math
import os

from livekit.agents import Agent, AgentSession, JobContext, JobProcess, JobRequest, WorkerOptions, cli
from livekit.plugins import openai, silero

BASE_URL = os.environ["VOICE_OPENAI_URL"]
# The fake ignores the key; the plugins refuse to start without one.
API_KEY = "fake-key"


def prewarm(proc: JobProcess) -> None:
    # Loaded once per job process, as livekit-agents' examples do.
    proc.userdata["vad"] = silero.VAD.load()


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session = AgentSession(
        vad=ctx.proc.userdata["vad"],
        stt=openai.STT(base_url=BASE_URL, api_key=API_KEY, model="whisper-1"),
        llm=openai.LLM(base_url=BASE_URL, api_key=API_KEY, model="test-model"),
        tts=openai.TTS(
            base_url=BASE_URL,
            api_key=API_KEY,
            model="tts-1",
            voice="alloy",
            response_format="pcm",
        ),
    )
    await session.start(agent=Agent(instructions="You are a helpful voice assistant."), room=ctx.room)


async def request_fnc(req: JobRequest) -> None:
    await req.accept(name="voice", metadata="voice-agent")


if __name__ == "__main__":
    cli.run_app(
        WorkerOptions(
            entrypoint_fnc=entrypoint,
            request_fnc=request_fnc,
            prewarm_fnc=prewarm,
            agent_name=os.environ.get("CONFORMANCE_AGENT_NAME", "voice-agent"),
            # Take every job offered (as agent-host does with
            # --load-threshold 2): the benchmark sizes the work itself and
            # stops a side when its audio no longer keeps real time.
            load_fnc=lambda: 0.0,
            load_threshold=math.inf,
            num_idle_processes=int(os.environ.get("VOICE_IDLE_PROCESSES", "2")),
            host="127.0.0.1",
            port=0,
        )
    )
