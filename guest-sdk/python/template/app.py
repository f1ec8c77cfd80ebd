"""A LiveKit agent in Python, run by agent-host as a WebAssembly component.

It greets the room and echoes every chat message to its sender. Run it with
``agent-host console --plugin .`` (builds it, then you chat with it), and
under a LiveKit server with ``agent-host run --plugin .``.
"""

import logging

from agent_host import Agent, RoomClosed, TextReceived

log = logging.getLogger("agent")


class MyAgent(Agent):
    def on_request(self, request):
        log.info("offered job %s in room %s", request.id, request.room.name)
        return super().on_request(request)  # accept

    def run(self, ctx):
        room = ctx.room
        room.send_text("Hello! I echo what you say.")
        for event in room.events():
            if isinstance(event, TextReceived):
                msg = event.value
                try:
                    room.send_text(msg.text, topic=msg.topic, destinations=[msg.sender])
                except RoomClosed:
                    return
