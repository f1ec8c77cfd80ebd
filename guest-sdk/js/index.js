// @agent-host/sdk: write LiveKit agents in JavaScript that run as
// WebAssembly components on agent-host.
//
// A thin layer over the `agent-host:agent` WIT world, as componentize-js
// binds it (variants are `{ tag, val }`, enums are strings, `option<T>` is
// `T | undefined`, `list<u8>` is a `Uint8Array`, a `result` error is thrown).
// What it adds:
//
// * `defineAgent({ onRequest, run })`: the two exports of the world. An
//   error thrown by `run` (or a rejected promise it returns) ends the job
//   as FAILED with the error's message as the reason, instead of the trap
//   componentize-js makes of an uncaught exception; one thrown by
//   `onRequest` is logged and the job is rejected.
// * `Room`: text, data, metadata and attributes, and the room's events as
//   an iterator that ends after `closed`.
// * `log`: the job's log, one function per level.
// * `RoomError`: what a room action throws, with `kind` (`closed`,
//   `too-large`, `denied`, `transport`) and a message.
// * The WIT interfaces themselves (`job`, `room`, `audio`, `events`,
//   `server`, `streams`, `rpc`, `websocket`) for what the wrappers leave out.
//
// `fetch` is StarlingMonkey's, over `wasi:http`: it reaches only the hosts on
// the host's allow-list. `run` may be `async` to await it.
//
// The interface versions below are the WIT package's; a test in the host
// (guest_build::js) keeps them equal to wit/agent.wit's.

import * as job from "agent-host:agent/job@0.1.5";
import * as room from "agent-host:agent/room@0.1.5";
import * as logApi from "agent-host:agent/log@0.1.5";
import * as audio from "agent-host:agent/audio@0.1.5";
import * as events from "agent-host:agent/events@0.1.5";
import * as server from "agent-host:agent/server@0.1.5";
import * as streams from "agent-host:agent/streams@0.1.5";
import * as rpc from "agent-host:agent/rpc@0.1.5";
import * as websocket from "agent-host:agent/websocket@0.1.5";

export { job, room as roomApi, audio, events, server, streams, rpc, websocket };

/** The version of the WIT package this SDK targets. */
export const WIT_VERSION = "0.1.5";

/** The message of anything thrown, for a failure reason or a log line. */
export function messageOf(thrown) {
  if (thrown instanceof RoomError) return thrown.message;
  if (thrown instanceof Error) {
    const payload = thrown.payload;
    if (payload !== undefined) return describeRoomError(payload);
    return thrown.name && thrown.name !== "Error"
      ? `${thrown.name}: ${thrown.message}`
      : thrown.message;
  }
  return String(thrown);
}

function describeRoomError(payload) {
  if (payload && typeof payload === "object" && "tag" in payload) {
    switch (payload.tag) {
      case "too-large":
        return `the payload is larger than the host allows (${payload.val} bytes)`;
      case "closed":
        return "the room session has ended";
      case "denied":
        return `denied: ${payload.val}`;
      case "transport":
        return `transport: ${payload.val}`;
    }
  }
  return String(payload);
}

/** What a room action throws. */
export class RoomError extends Error {
  /**
   * @param {{tag: string, val?: unknown}} payload the WIT `room-error`
   */
  constructor(payload) {
    super(describeRoomError(payload));
    this.name = "RoomError";
    /** `closed`, `too-large`, `denied` or `transport`. */
    this.kind = payload.tag;
    /** The WIT value itself. */
    this.payload = payload;
  }
}

/** Calls a WIT function that returns `result<_, room-error>`. */
function roomCall(f) {
  try {
    return f();
  } catch (e) {
    if (e && typeof e === "object" && e.payload && typeof e.payload === "object" && "tag" in e.payload) {
      throw new RoomError(e.payload);
    }
    throw e;
  }
}

/** The job's log, one function per level; arguments are joined by spaces. */
export const log = Object.freeze(
  Object.fromEntries(
    ["trace", "debug", "info", "warn", "error"].map((level) => [
      level,
      (...parts) => logApi.log(level, parts.map((p) => (typeof p === "string" ? p : String(p))).join(" ")),
    ]),
  ),
);

/** Accept the job, optionally with the agent's identity, name, metadata and attributes. */
export function accept(options = {}) {
  return {
    tag: "accept",
    val: {
      identity: options.identity ?? "",
      name: options.name ?? "",
      metadata: options.metadata ?? "",
      attributes: Object.entries(options.attributes ?? {}),
    },
  };
}

/** Decline the job; the server offers it to another worker. */
export function reject() {
  return { tag: "reject" };
}

/** Decline the job and ask the server not to offer it to anyone else. */
export function rejectAndTerminate() {
  return { tag: "reject-and-terminate" };
}

/** The room the job runs in. */
export class Room {
  /** The participants in the room now, the agent excluded. */
  participants() {
    return room.participants();
  }

  /**
   * Send a text message (a text stream, `lk.chat` unless `topic` says otherwise)
   * to `destinations` (identities; everyone when empty).
   */
  sendText(text, { topic = "lk.chat", destinations = [] } = {}) {
    return roomCall(() => room.sendText(text, topic, destinations));
  }

  /** Publish a data packet (`Uint8Array`, or a string sent as UTF-8). */
  publishData(payload, { topic, reliable = true, destinations = [] } = {}) {
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    return roomCall(() => room.publishData(bytes, topic, reliable, destinations));
  }

  /** Set the agent participant's metadata. */
  setMetadata(metadata) {
    return roomCall(() => room.setMetadata(metadata));
  }

  /** Set the agent participant's attributes (an object of strings). */
  setAttributes(attributes) {
    return roomCall(() => room.setAttributes(Object.entries(attributes)));
  }

  /** The next room event, waiting at most `timeoutMs` when given; `undefined` on timeout. */
  nextEvent(timeoutMs) {
    return room.nextEvent(timeoutMs);
  }

  /**
   * The room's events (`{ tag, val }`, tags as in the WIT `room-event`:
   * `participant-joined`, `text-received`, `data-received`, ...), ending
   * after the `closed` event.
   */
  *events() {
    for (;;) {
      const event = room.nextEvent(undefined);
      if (event === undefined) continue;
      yield event;
      if (event.tag === "closed") return;
    }
  }
}

/**
 * Defines the agent: returns the exports of the `agent` world, which the
 * entry module exports (`export default defineAgent({...})`; the build
 * script does the rest).
 *
 * @param {{ onRequest?: (request: object) => object | undefined, run: (ctx: { job: object, room: Room }) => void | Promise<void> }} agent
 */
export function defineAgent(agent) {
  if (!agent || typeof agent.run !== "function") {
    throw new TypeError("defineAgent needs an object with a run(ctx) function");
  }
  return {
    onRequest(request) {
      if (typeof agent.onRequest !== "function") return accept();
      try {
        return agent.onRequest(request) ?? accept();
      } catch (e) {
        logApi.log("error", `onRequest threw; rejecting the job: ${messageOf(e)}`);
        return reject();
      }
    },
    run() {
      const ctx = { job: job.info(), room: new Room() };
      let result;
      try {
        result = agent.run(ctx);
      } catch (e) {
        throw failure(e);
      }
      if (result && typeof result.then === "function") {
        return result.then(
          () => undefined,
          (e) => {
            throw failure(e);
          },
        );
      }
      return undefined;
    },
  };
}

/** The value componentize-js lowers to `err(message)` of `run`. */
function failure(thrown) {
  const message = messageOf(thrown);
  logApi.log("error", `run failed: ${message}`);
  const error = new Error(message);
  error.payload = message;
  return error;
}
