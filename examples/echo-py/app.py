"""Echo: replies to every text message and data packet with the same
content, addressed only to the sender (as examples/echo, in Python).

A message whose text is ``raise``, or a job whose metadata is ``raise``,
makes the job fail with a Python exception, so the failure path (exception
-> FAILED with its message) can be seen.
"""

import logging

from agent_host import Agent, DataReceived, RoomClosed, TextReceived

log = logging.getLogger("echo")


class Echo(Agent):
    def run(self, ctx):
        if ctx.info.metadata == "raise":
            raise RuntimeError("the job's metadata asked this agent to fail")
        room = ctx.room
        for event in room.events():
            try:
                if isinstance(event, TextReceived):
                    msg = event.value
                    if msg.text == "raise":
                        raise ValueError(f"asked to fail by {msg.sender}")
                    log.debug("echoing text from %s on %s", msg.sender, msg.topic)
                    room.send_text(msg.text, topic=msg.topic, destinations=[msg.sender])
                elif isinstance(event, DataReceived):
                    packet = event.value
                    # Packets from the server itself have no sender to answer.
                    if packet.sender is not None:
                        log.debug("echoing %d bytes to %s", len(packet.payload), packet.sender)
                        room.publish_data(
                            packet.payload,
                            topic=packet.topic,
                            destinations=[packet.sender],
                        )
            except RoomClosed:
                # Nobody left to reach: that ends the conversation, not the job.
                pass
