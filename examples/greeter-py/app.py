"""Greeter: says hello to everyone present when the job starts and to each
participant who joins, and goodbye to each who leaves (as examples/greeter,
in Python).
"""

import logging

from agent_host import Agent, Closed, ParticipantJoined, ParticipantLeft, RoomClosed

log = logging.getLogger("greeter")


def display_name(participant):
    """The name to greet someone by: the display name, else the identity."""
    return participant.name or participant.identity


class Greeter(Agent):
    def run(self, ctx):
        room = ctx.room

        def say(text):
            # A room that closed meanwhile has nobody left to hear it: that
            # is not a failure of the job.
            try:
                room.send_text(text)
            except RoomClosed:
                pass

        for participant in room.participants():
            say(f"Hello, {display_name(participant)}!")
        for event in room.events():
            if isinstance(event, ParticipantJoined):
                say(f"Hello, {display_name(event.value)}!")
            elif isinstance(event, ParticipantLeft):
                say(f"Goodbye, {display_name(event.value)}!")
            elif isinstance(event, Closed):
                log.info("room closed: %s", event.value)
