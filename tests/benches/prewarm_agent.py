"""Official-SDK worker for the prewarm benchmark (`tests/benches/prewarm.rs`).

Started as `prewarm_agent.py start` against fake-livekit. Its `prewarm_fnc`
builds the table `examples/prewarm` builds (10 MiB of u32, SplitMix32's
finaliser of each index), as a Python agent loads its data: livekit-agents
runs it in every idle job process, before the process takes a job. When
it is done it appends

    <pid> <time.time_ns()>\n

to the file named by BENCH_PREWARMED, so the benchmark can tell when each
process is ready. Environment: BENCH_IDLE_PROCESSES (idle job processes),
CONFORMANCE_AGENT_NAME (agent name).
"""

import math
import os
import time
from array import array

from livekit.agents import JobContext, JobProcess, WorkerOptions, cli

ENTRIES = (10 << 20) // 4
MASK = 0xFFFFFFFF


def entry(i: int) -> int:
    z = (i + 0x9E3779B9) & MASK
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & MASK
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & MASK
    return z ^ (z >> 16)


def prewarm(proc: JobProcess) -> None:
    proc.userdata["table"] = array("I", map(entry, range(ENTRIES)))
    line = f"{os.getpid()} {time.time_ns()}\n".encode()
    fd = os.open(os.environ["BENCH_PREWARMED"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def entrypoint(ctx: JobContext) -> None:
    table = ctx.proc.userdata["table"]
    ctx.shutdown(reason=f"table[1234567] = {table[1234567]}")


if __name__ == "__main__":
    cli.run_app(
        WorkerOptions(
            entrypoint_fnc=entrypoint,
            prewarm_fnc=prewarm,
            agent_name=os.environ.get("CONFORMANCE_AGENT_NAME", "prewarm-bench"),
            load_fnc=lambda: 0.0,
            load_threshold=math.inf,
            num_idle_processes=int(os.environ["BENCH_IDLE_PROCESSES"]),
            # A prewarm of seconds must not be cut at the default 10 s.
            initialize_process_timeout=120.0,
            host="127.0.0.1",
            port=0,
        )
    )
