// Echo: replies to every text message and data packet with the same
// content, addressed only to the sender (examples/echo in JavaScript).

import { defineAgent, log, RoomError } from "@agent-host/sdk";

/**
 * A reply to someone in a room that closed meanwhile has nobody to reach:
 * that ends the conversation, not the job with a failure.
 */
function unlessClosed(send) {
  try {
    send();
  } catch (e) {
    if (!(e instanceof RoomError && e.kind === "closed")) throw e;
  }
}

export default defineAgent({
  run({ room }) {
    for (const event of room.events()) {
      switch (event.tag) {
        case "text-received": {
          const msg = event.val;
          log.debug(`echoing text from ${msg.sender} on ${msg.topic}`);
          unlessClosed(() => room.sendText(msg.text, { topic: msg.topic, destinations: [msg.sender] }));
          break;
        }
        case "data-received": {
          const packet = event.val;
          // Packets from the server itself have no sender to answer.
          if (packet.sender === undefined) break;
          log.debug(`echoing ${packet.payload.length} bytes to ${packet.sender}`);
          unlessClosed(() =>
            room.publishData(packet.payload, { topic: packet.topic, destinations: [packet.sender] }),
          );
          break;
        }
        case "closed":
          log.info(`room closed: ${event.val}`);
          break;
      }
    }
  },
});
