"""A Python agent that fetches over WASI HTTP (agent_host.http): it GETs the
URL in its job metadata and POSTs a streamed body to it, and sends
``<status> <body>`` of each response as a text message; an HTTP error fails
the job with its reason. An offer whose metadata is ``raise`` makes
``on_request`` raise (the SDK logs it and declines).
"""

from agent_host import Agent
from agent_host import http


class Fetch(Agent):
    def on_request(self, request):
        if request.metadata == "raise":
            raise KeyError("no such offer")
        return super().on_request(request)

    def run(self, ctx):
        url = ctx.info.metadata
        got = http.get(url)
        ctx.room.send_text(f"{got.status} {got.text()}")
        sent = http.post(url, (chunk for chunk in [b"a" * 5000, b"b" * 3000]))
        ctx.room.send_text(f"{sent.status} {sent.text()}")
