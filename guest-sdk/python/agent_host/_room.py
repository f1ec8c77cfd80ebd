"""The job's room, its audio and LiveKit's server API, as thin Python wrappers.

Every call that the WIT types as ``result<_, room-error>`` raises
:class:`RoomError` (or its subclass :class:`RoomClosed`) instead of returning
an error value.
"""

from typing import Iterator, List, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import audio as _audio
from wit_world.imports import room as _room
from wit_world.imports import server as _server
from wit_world.imports import types as _types

#: LiveKit's chat topic, the default for :meth:`Room.send_text`.
CHAT_TOPIC = "lk.chat"


class RoomError(Exception):
    """A room call failed; ``kind`` is ``too-large``, ``closed``, ``denied`` or ``transport``."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class RoomClosed(RoomError):
    """The room session ended: nobody is left to hear the agent."""

    def __init__(self) -> None:
        super().__init__("closed")


def _raise(err: Err) -> None:
    value = err.value
    if isinstance(value, _types.RoomError_Closed):
        raise RoomClosed() from None
    kind = {
        _types.RoomError_TooLarge: "too-large",
        _types.RoomError_Denied: "denied",
        _types.RoomError_Transport: "transport",
    }.get(type(value), "error")
    raise RoomError(kind, str(getattr(value, "value", ""))) from None


def _call(f, *args):
    try:
        return f(*args)
    except Err as err:
        _raise(err)


class Room:
    """The room the job runs in."""

    def participants(self) -> List[_types.Participant]:
        """Who is in the room now, the agent excluded."""
        return _room.participants()

    def send_text(
        self, text: str, topic: str = CHAT_TOPIC, destinations: Sequence[str] = ()
    ) -> None:
        """Sends a text message (a text stream on ``topic``); no destinations means everyone."""
        _call(_room.send_text, text, topic, list(destinations))

    def publish_data(
        self,
        payload: bytes,
        topic: Optional[str] = None,
        reliable: bool = True,
        destinations: Sequence[str] = (),
    ) -> None:
        """Sends a data packet; no destinations means everyone."""
        _call(_room.publish_data, bytes(payload), topic, reliable, list(destinations))

    def set_metadata(self, metadata: str) -> None:
        """Replaces the agent's own metadata."""
        _call(_room.set_metadata, metadata)

    def set_attributes(self, attributes: dict) -> None:
        """Sets (an empty value removes) the agent's own attributes."""
        _call(_room.set_attributes, list(attributes.items()))

    def next_event(self, timeout: Optional[float] = None):
        """The next room event, or ``None`` after ``timeout`` seconds."""
        ms = None if timeout is None else max(0, int(timeout * 1000))
        return _room.next_event(ms)

    def events(self) -> Iterator[object]:
        """Room events as they come; the last one is ``Closed``, then it stops."""
        while True:
            event = _room.next_event(None)
            if event is None:
                continue
            yield event
            if isinstance(event, _types.RoomEvent_Closed):
                return


class Audio:
    """PCM audio in and out (16-bit samples, interleaved channels)."""

    def subscribe(self, identity: str, sample_rate: int = 48000, channels: int = 1) -> None:
        """Receives ``identity``'s audio as ``audio`` events in this format."""
        _call(_audio.subscribe, identity, _audio.AudioFormat(sample_rate, channels))

    def unsubscribe(self, identity: str) -> None:
        """Stops receiving ``identity``'s audio."""
        _audio.unsubscribe(identity)

    def publish(self, name: str, sample_rate: int = 48000, channels: int = 1) -> None:
        """Publishes the agent's audio track ``name`` in this format."""
        _call(_audio.publish, name, _audio.AudioFormat(sample_rate, channels))

    def write(self, samples: Sequence[int]) -> None:
        """Queues samples on the published track."""
        _call(_audio.write, list(samples))


class Server:
    """LiveKit's server API, scoped to the job's room."""

    def send_data(
        self,
        payload: bytes,
        topic: Optional[str] = None,
        reliable: bool = True,
        destinations: Sequence[str] = (),
    ) -> None:
        """Sends a data packet from the server."""
        _call(_server.send_data, bytes(payload), topic, reliable, list(destinations))

    def update_participant(
        self,
        identity: str,
        metadata: Optional[str] = None,
        attributes: Sequence[Tuple[str, str]] = (),
    ) -> None:
        """Changes a participant's metadata or attributes."""
        _call(_server.update_participant, identity, metadata, list(attributes))

    def remove_participant(self, identity: str) -> None:
        """Removes a participant from the room."""
        _call(_server.remove_participant, identity)

    def mute_track(self, identity: str, track_sid: str, muted: bool) -> None:
        """Mutes or unmutes a participant's track."""
        _call(_server.mute_track, identity, track_sid, muted)
