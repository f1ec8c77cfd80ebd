"""The :class:`Agent` base class, the job context, and the world's exports.

Policy: an exception escaping ``run`` becomes the job's failure reason,
``"<ExceptionType>: <message>"`` (the guest's ``err(reason)``); one escaping
``on_request`` is logged at error level and the offer declined. The host
bounds a reason's length itself.
"""

import logging
import traceback
from typing import Dict, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import job as _job
from wit_world.imports import types as _types

from . import _log
from ._room import Audio, Room, Server


def accept(
    identity: str = "",
    name: str = "",
    metadata: str = "",
    attributes: Optional[Dict[str, str]] = None,
) -> _types.Decision:
    """Accepts the job; an empty identity lets the host choose ``agent-<job id>``."""
    pairs = list((attributes or {}).items())
    return _types.Decision_Accept(_types.AcceptOptions(identity, name, metadata, pairs))


def reject() -> _types.Decision:
    """Declines the job; the server may offer it to another worker."""
    return _types.Decision_Reject()


def reject_and_terminate() -> _types.Decision:
    """Declines the job and asks the server to offer it to no one else."""
    return _types.Decision_RejectAndTerminate()


class JobContext:
    """What a running job reaches: its info, room, audio and the server API."""

    def __init__(self) -> None:
        self.room = Room()
        self.audio = Audio()
        self.server = Server()

    @property
    def info(self) -> _types.JobInfo:
        """The job: id, type, room, participant, agent name, metadata, identity."""
        return _job.info()

    @property
    def dispatch(self) -> _types.DispatchInfo:
        """How the job was dispatched."""
        return _job.dispatch()

    def shutdown(self, reason: str = "") -> None:
        """Asks the host to end the job once ``run`` returns."""
        _job.shutdown(reason)


class Agent:
    """Subclass this in ``app.py``; the build exports the one subclass it finds.

    A fresh instance answers each job: the same object's ``run`` is called if
    the job is accepted and assigned.
    """

    def on_request(self, request: _types.JobRequest) -> _types.Decision:
        """Answers a job offer. Default: accept with the host's identity."""
        return accept()

    def run(self, ctx: JobContext) -> None:
        """The job body; returning ends the job as a success."""
        raise NotImplementedError("an Agent subclass must define run(self, ctx)")


def failure_reason(exc: BaseException) -> str:
    """``Type: message`` of an exception, as the job's failure reason."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def world_for(module) -> type:
    """The ``WitWorld`` export class for the one :class:`Agent` subclass in ``module``."""
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Agent) and v is not Agent
        and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TypeError(
            f"{module.__name__} must define exactly one agent_host.Agent subclass (found {names})"
        )
    agent_class = found[0]
    logger = logging.getLogger("agent_host")

    class WitWorld(wit_world.WitWorld):
        agent: Optional[Agent] = None

        def on_request(self, request: _types.JobRequest) -> _types.Decision:
            _log.install()
            try:
                WitWorld.agent = agent_class()
                return WitWorld.agent.on_request(request)
            except BaseException as exc:
                logger.error(
                    "on_request raised %s; declining the offer\n%s",
                    failure_reason(exc),
                    "".join(traceback.format_exception(exc)),
                )
                return reject()

        def run(self) -> None:
            _log.install()
            agent = WitWorld.agent or agent_class()
            try:
                agent.run(JobContext())
            except Err:
                raise
            except BaseException as exc:
                logger.debug("".join(traceback.format_exception(exc)))
                raise Err(failure_reason(exc)) from None

    return WitWorld
