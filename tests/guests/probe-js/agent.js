// A test guest in JavaScript; its job's metadata says what it does:
//
// * `throw`: run throws a TypeError (an uncaught engine error);
// * `reject`: run is async and its promise rejects with a RangeError;
// * `refuse`: onRequest throws, so the SDK rejects the job;
// * `fetch URL`: run fetches URL and says `status body` in the room;
// * `quiet`: run ends at once without touching the room;
// * anything else: run says `job ID` and ends.

import { defineAgent, log } from "@agent-host/sdk";

export default defineAgent({
  onRequest(request) {
    if (request.metadata === "refuse") throw new Error("not this one");
    return undefined;
  },
  async run({ job, room }) {
    const [what, arg] = job.metadata.split(" ");
    switch (what) {
      case "throw":
        null.property;
        break;
      case "reject":
        await Promise.resolve();
        throw new RangeError(`rejected in job ${job.id}`);
      case "fetch": {
        const response = await fetch(arg);
        const body = await response.text();
        log.info(`fetched ${arg}: ${response.status}`);
        room.sendText(`${response.status} ${body}`);
        break;
      }
      case "quiet":
        break;
      default:
        room.sendText(`job ${job.id}`);
    }
  },
});
