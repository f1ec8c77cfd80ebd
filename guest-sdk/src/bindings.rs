//! The wit-bindgen bindings of `wit/agent.wit`.
//!
//! Public only so that [`export_agent!`](crate::export_agent) can reach the
//! generated export glue from the guest crate; guests use the re-exports at
//! the crate root instead.
//!
//! The WIT leaves some record fields and cases undocumented; the
//! `additional_member_attributes` below give them rustdoc so that every
//! public item of the SDK is documented.

wit_bindgen::generate!({
    path: "wit",
    world: "agent",
    // The export macro is expanded in the guest crate by `export_agent!`.
    pub_export_macro: true,
    export_macro_name: "__export_agent_world",
    default_bindings_module: "::agent_host_sdk::__bindings",
    // Guests depend on the SDK only, not on wit-bindgen.
    runtime_path: "::agent_host_sdk::__rt",
    additional_derives: [PartialEq, Eq],
    additional_type_attributes: {
        "agent-host:agent/log@0.1.0/level": [#[doc = "How severe a log message is."]],
    },
    additional_member_attributes: {
        "agent-host:agent/types@0.1.0/participant-kind.standard": [#[doc = "A regular client."]],
        "agent-host:agent/types@0.1.0/participant-kind.ingress": [#[doc = "A LiveKit Ingress (RTMP, WHIP, URL input)."]],
        "agent-host:agent/types@0.1.0/participant-kind.egress": [#[doc = "A LiveKit Egress (recording, streaming out)."]],
        "agent-host:agent/types@0.1.0/participant-kind.sip": [#[doc = "A phone call bridged through LiveKit SIP."]],
        "agent-host:agent/types@0.1.0/participant-kind.agent": [#[doc = "An agent, such as this one."]],
        "agent-host:agent/types@0.1.0/participant-kind.connector": [#[doc = "A LiveKit connector (for example WhatsApp or Twilio)."]],

        "agent-host:agent/types@0.1.0/participant.sid": [#[doc = "Server-assigned participant id, `PA_...`."]],
        "agent-host:agent/types@0.1.0/participant.identity": [#[doc = "Identity, unique in the room; the address for targeted messages."]],
        "agent-host:agent/types@0.1.0/participant.name": [#[doc = "Display name (may be empty)."]],
        "agent-host:agent/types@0.1.0/participant.metadata": [#[doc = "Application-defined metadata."]],
        "agent-host:agent/types@0.1.0/participant.attributes": [#[doc = "Application-defined key/value attributes."]],
        "agent-host:agent/types@0.1.0/participant.kind": [#[doc = "What kind of client this is."]],

        "agent-host:agent/types@0.1.0/room-info.sid": [#[doc = "Server-assigned room id, `RM_...`."]],
        "agent-host:agent/types@0.1.0/room-info.name": [#[doc = "Room name."]],
        "agent-host:agent/types@0.1.0/room-info.metadata": [#[doc = "Room metadata when the job was dispatched."]],

        "agent-host:agent/types@0.1.0/job-request.job-type": [#[doc = "Which kind of dispatch created the job."]],
        "agent-host:agent/types@0.1.0/job-request.room": [#[doc = "The room the job is for."]],

        "agent-host:agent/types@0.1.0/accept-options.metadata": [#[doc = "The agent participant's initial metadata."]],
        "agent-host:agent/types@0.1.0/accept-options.attributes": [#[doc = "The agent participant's initial attributes."]],

        "agent-host:agent/types@0.1.0/job-info.id": [#[doc = "Job id, `AJ_...`."]],
        "agent-host:agent/types@0.1.0/job-info.job-type": [#[doc = "Which kind of dispatch created the job."]],
        "agent-host:agent/types@0.1.0/job-info.room": [#[doc = "The room the job runs in, as known at dispatch."]],
        "agent-host:agent/types@0.1.0/job-info.participant": [#[doc = "The participant the job is for (publisher and participant jobs)."]],
        "agent-host:agent/types@0.1.0/job-info.agent-name": [#[doc = "The agent name the job was dispatched to (\"\" for automatic dispatch)."]],
        "agent-host:agent/types@0.1.0/job-info.metadata": [#[doc = "Metadata given by whoever dispatched the job."]],
        "agent-host:agent/types@0.1.0/job-info.attributes": [#[doc = "Attributes given by whoever dispatched the job."]],

        "agent-host:agent/types@0.1.0/data-packet.topic": [#[doc = "Topic the sender chose, if any."]],
        "agent-host:agent/types@0.1.0/data-packet.payload": [#[doc = "The bytes sent."]],

        "agent-host:agent/types@0.1.0/text-message.sender": [#[doc = "Identity of the sender."]],
        "agent-host:agent/types@0.1.0/text-message.topic": [#[doc = "Text stream topic; `lk.chat` for chat."]],
        "agent-host:agent/types@0.1.0/text-message.text": [#[doc = "The message."]],

        "agent-host:agent/types@0.1.0/room-event.participant-joined": [#[doc = "A participant joined the room."]],
        "agent-host:agent/types@0.1.0/room-event.participant-left": [#[doc = "A participant left the room."]],
        "agent-host:agent/types@0.1.0/room-event.data-received": [#[doc = "A data packet arrived."]],
        "agent-host:agent/types@0.1.0/room-event.text-received": [#[doc = "A text message arrived."]],
        "agent-host:agent/types@0.1.0/room-event.room-metadata-changed": [#[doc = "The room's metadata changed; this is the new value."]],

        "agent-host:agent/log@0.1.0/level.trace": [#[doc = "Very detailed tracing."]],
        "agent-host:agent/log@0.1.0/level.debug": [#[doc = "Debugging information."]],
        "agent-host:agent/log@0.1.0/level.info": [#[doc = "Normal operation."]],
        "agent-host:agent/log@0.1.0/level.warn": [#[doc = "Something unexpected that the agent can live with."]],
        "agent-host:agent/log@0.1.0/level.error": [#[doc = "A failure."]],
    },
});
