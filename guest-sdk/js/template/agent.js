// {{name}}: a LiveKit agent in JavaScript. It greets the room, then answers
// every chat message with its text reversed. Edit `run`; `agent-host dev`
// rebuilds and swaps it in on save.

import { defineAgent, log, RoomError } from "@agent-host/sdk";

export default defineAgent({
  // Optional: look at the job offer and accept (the default) or reject it.
  onRequest(request) {
    log.info(`offered job ${request.id} in room ${request.room.name}`);
  },

  // The job body. A thrown error ends the job as FAILED with its message.
  run({ room }) {
    room.sendText("Hello from {{name}}!");
    for (const event of room.events()) {
      if (event.tag !== "text-received") continue;
      const { sender, topic, text } = event.val;
      try {
        room.sendText([...text].reverse().join(""), { topic, destinations: [sender] });
      } catch (e) {
        // The room closed meanwhile: nobody is left to answer.
        if (!(e instanceof RoomError && e.kind === "closed")) throw e;
      }
    }
  },
});
