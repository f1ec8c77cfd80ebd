// Greeter: says hello to everyone in the room and to whoever joins, and
// goodbye to whoever leaves (examples/greeter in JavaScript).

import { defineAgent, log, RoomError } from "@agent-host/sdk";

/** @param {import("@agent-host/sdk").Participant} participant */
function displayName(participant) {
  return participant.name === "" ? participant.identity : participant.name;
}

/**
 * Says `text` to the room; a room that closed meanwhile has nobody to
 * hear it, which ends the conversation rather than failing the job.
 */
function say(room, text) {
  try {
    room.sendText(text);
  } catch (e) {
    if (!(e instanceof RoomError && e.kind === "closed")) throw e;
  }
}

export default defineAgent({
  run({ room }) {
    for (const participant of room.participants()) {
      say(room, `Hello, ${displayName(participant)}!`);
    }
    for (const event of room.events()) {
      switch (event.tag) {
        case "participant-joined":
          say(room, `Hello, ${displayName(event.val)}!`);
          break;
        case "participant-left":
          say(room, `Goodbye, ${displayName(event.val)}!`);
          break;
        case "closed":
          log.info(`room closed: ${event.val}`);
          break;
      }
    }
  },
});
