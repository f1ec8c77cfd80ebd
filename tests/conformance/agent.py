"""Minimal official-SDK worker for the conformance test against fake-livekit.

Run (the fake server prints the env to use):

    LIVEKIT_URL=ws://127.0.0.1:PORT LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \
        target/conformance-venv/bin/python tests/conformance/agent.py start

The job never connects to the room (there is no RTC server). What it does is
chosen by the job metadata:

    ""  or  "sleep:<ms>"  sleep (default 200 ms), then ctx.shutdown() -> the
                           process exits 0 and the worker reports JS_SUCCESS
    "hold"                 return at once without connect()/shutdown(): the job
                           stays alive until the server terminates it
    "raise"                raise from the entrypoint
    "exit:<code>"          os._exit(code) from the job process

and by the request handler:

    "reject"               JobRequest.reject()                (terminate=True)
    "decline"              JobRequest.reject(terminate=False)

Environment: CONFORMANCE_AGENT_NAME (default "conformance-agent").
"""

import asyncio
import logging
import os

from livekit.agents import JobContext, JobRequest, WorkerOptions, cli

logger = logging.getLogger("conformance-agent")


async def request_fnc(req: JobRequest) -> None:
    meta = req.job.metadata
    if meta == "reject":
        await req.reject()
    elif meta == "decline":
        await req.reject(terminate=False)
    else:
        # Default identity is "agent-" + job id.
        await req.accept(name="conformance", metadata="conformance-agent")


async def entrypoint(ctx: JobContext) -> None:
    meta = ctx.job.metadata
    logger.info("job started", extra={"job_id": ctx.job.id, "metadata": meta})
    if meta == "hold":
        return
    if meta == "raise":
        raise RuntimeError("conformance: entrypoint raised")
    if meta.startswith("exit:"):
        os._exit(int(meta.split(":", 1)[1]))
    ms = 200
    if meta.startswith("sleep:"):
        ms = int(meta.split(":", 1)[1])
    await asyncio.sleep(ms / 1000)
    ctx.shutdown(reason="conformance job done")


if __name__ == "__main__":
    cli.run_app(
        WorkerOptions(
            entrypoint_fnc=entrypoint,
            request_fnc=request_fnc,
            agent_name=os.environ.get("CONFORMANCE_AGENT_NAME", "conformance-agent"),
            # The CPU of a shared build machine is not the point here: report
            # no load so the worker stays WS_AVAILABLE (the 0.7 threshold and
            # the drain behaviour are unchanged).
            load_fnc=lambda: 0.0,
            num_idle_processes=1,
            # Local HTTP health server on a random loopback port (default 8081
            # on all interfaces would clash between parallel runs).
            host="127.0.0.1",
            port=0,
        )
    )
