// Types of @agent-host/sdk: the SDK's wrappers and the WIT types they pass
// through (agent-host:agent@0.1.5 as componentize-js binds it). Written from
// wit/agent.wit: jco 1.35's `guest-types` cannot read a WIT directory here
// (the same preopen failure as its `componentize` pre-check).

export declare const WIT_VERSION: string;

export type JobType = "room" | "publisher" | "participant";
export type ParticipantKind = "standard" | "ingress" | "egress" | "sip" | "agent" | "connector";
export type Attributes = Array<[string, string]>;

export interface Participant {
  sid: string;
  identity: string;
  name: string;
  metadata: string;
  attributes: Attributes;
  kind: ParticipantKind;
}

export interface RoomInfo {
  sid: string;
  name: string;
  metadata: string;
}

export interface JobRequest {
  id: string;
  jobType: JobType;
  room: RoomInfo;
  participant?: Participant;
  agentName: string;
  metadata: string;
  attributes: Attributes;
}

export interface JobInfo extends JobRequest {
  identity: string;
}

export interface AcceptOptions {
  identity?: string;
  name?: string;
  metadata?: string;
  attributes?: Record<string, string>;
}

export type Decision =
  | { tag: "accept"; val: { identity: string; name: string; metadata: string; attributes: Attributes } }
  | { tag: "reject" }
  | { tag: "reject-and-terminate" };

export interface DataPacket {
  sender?: string;
  topic?: string;
  payload: Uint8Array;
}

export interface TextMessage {
  sender: string;
  topic: string;
  text: string;
}

export type CloseReason = "room-closed" | "terminated" | "shutdown-requested";

export type RoomEvent =
  | { tag: "participant-joined"; val: Participant }
  | { tag: "participant-left"; val: Participant }
  | { tag: "participant-updated"; val: Participant }
  | { tag: "data-received"; val: DataPacket }
  | { tag: "text-received"; val: TextMessage }
  | { tag: "room-metadata-changed"; val: string }
  | { tag: "closed"; val: CloseReason };

export type RoomErrorPayload =
  | { tag: "too-large"; val: number }
  | { tag: "closed" }
  | { tag: "denied"; val: string }
  | { tag: "transport"; val: string };

/** What a room action throws. */
export declare class RoomError extends Error {
  constructor(payload: RoomErrorPayload);
  readonly kind: RoomErrorPayload["tag"];
  readonly payload: RoomErrorPayload;
}

/** The message of anything thrown. */
export declare function messageOf(thrown: unknown): string;

export interface TextOptions {
  /** Text stream topic; `lk.chat` by default. */
  topic?: string;
  /** Identities; everyone when empty. */
  destinations?: string[];
}

export interface DataOptions {
  topic?: string;
  /** Reliable delivery; true by default. */
  reliable?: boolean;
  destinations?: string[];
}

/** The room the job runs in. */
export declare class Room {
  participants(): Participant[];
  sendText(text: string, options?: TextOptions): void;
  publishData(payload: Uint8Array | string, options?: DataOptions): void;
  setMetadata(metadata: string): void;
  setAttributes(attributes: Record<string, string>): void;
  nextEvent(timeoutMs?: number): RoomEvent | undefined;
  /** The room's events, ending after `closed`. */
  events(): Generator<RoomEvent, void, void>;
}

export interface JobContext {
  job: JobInfo;
  room: Room;
}

export interface AgentDefinition {
  /** Answer a job offer; accepts when absent or when it returns nothing. */
  onRequest?(request: JobRequest): Decision | undefined;
  /** The job body; a thrown error (or rejection) fails the job with its message. */
  run(ctx: JobContext): void | Promise<void>;
}

export interface AgentExports {
  onRequest(request: JobRequest): Decision;
  run(): void | Promise<void>;
}

export declare function defineAgent(agent: AgentDefinition): AgentExports;
export declare function accept(options?: AcceptOptions): Decision;
export declare function reject(): Decision;
export declare function rejectAndTerminate(): Decision;

type LogFn = (...parts: unknown[]) => void;
export declare const log: Readonly<{ trace: LogFn; debug: LogFn; info: LogFn; warn: LogFn; error: LogFn }>;

/** The WIT interfaces themselves, as componentize-js binds them. */
export declare const job: { info(): JobInfo; shutdown(reason: string): void; dispatch(): unknown };
export declare const roomApi: Record<string, (...args: any[]) => any>;
export declare const audio: Record<string, (...args: any[]) => any>;
export declare const events: Record<string, (...args: any[]) => any>;
export declare const server: {
  sendData(payload: Uint8Array, topic: string | undefined, reliable: boolean, destinations: string[]): void;
  updateParticipant(identity: string, metadata: string | undefined, attributes: Attributes): void;
  removeParticipant(identity: string): void;
  muteTrack(identity: string, trackSid: string, muted: boolean): void;
};
export declare const streams: Record<string, any>;
export declare const rpc: Record<string, any>;
export declare const websocket: Record<string, any>;
