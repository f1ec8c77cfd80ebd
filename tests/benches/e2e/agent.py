"""Official-SDK worker for the end-to-end benchmark (`tests/benches/e2e`).

Started by the benchmark as `agent.py start` against fake-livekit, like
`tests/conformance/agent.py` (which the conformance test relies on and is
left as it is). The first thing each job's entrypoint does is append

    <job id> <time.time_ns()>\n

to the file named by BENCH_STARTS, so the benchmark can tell when the job
body started running (wall clock, the same clock as the benchmark's).

Job metadata: "sleep:<ms>" sleeps that long, then ctx.shutdown(); the job
never connects to the room (there is no RTC server).

Environment: CONFORMANCE_AGENT_NAME (agent name), BENCH_STARTS (file),
BENCH_IDLE_PROCESSES (prewarmed job processes, default 2).
"""

import asyncio
import math
import os
import time

from livekit.agents import JobContext, JobRequest, WorkerOptions, cli

STARTS = os.environ["BENCH_STARTS"]


async def entrypoint(ctx: JobContext) -> None:
    line = f"{ctx.job.id} {time.time_ns()}\n".encode()
    fd = os.open(STARTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    ms = 0
    meta = ctx.job.metadata
    if meta.startswith("sleep:"):
        ms = int(meta.split(":", 1)[1])
    await asyncio.sleep(ms / 1000)
    ctx.shutdown(reason="bench job done")


async def request_fnc(req: JobRequest) -> None:
    await req.accept(name="bench", metadata="bench-agent")


if __name__ == "__main__":
    cli.run_app(
        WorkerOptions(
            entrypoint_fnc=entrypoint,
            request_fnc=request_fnc,
            agent_name=os.environ.get("CONFORMANCE_AGENT_NAME", "bench-agent"),
            # Take every job offered, as agent-host does with
            # --load-threshold 2: the benchmark sizes the work itself. With a
            # finite threshold, 1.8.9 counts each accepted-but-not-started
            # job as threshold / num_idle_processes of load and declines the
            # rest of a burst; a busy 2-core machine would also turn it full.
            load_fnc=lambda: 0.0,
            load_threshold=math.inf,
            num_idle_processes=int(os.environ.get("BENCH_IDLE_PROCESSES", "2")),
            host="127.0.0.1",
            port=0,
        )
    )
