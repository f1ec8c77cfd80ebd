//! The wit-bindgen bindings of the `agent-prewarm` world: only its
//! `prewarm` export is generated here; every interface is the one of
//! [`__bindings`](crate::__bindings), so the types are shared.
//!
//! Invariant: this world's component-type section reaches a guest only
//! through `export_agent!(..., prewarm = ...)`, which references
//! `__link_custom_section_describing_imports` (no import interface is
//! generated here to do it). A guest without a prewarm hook therefore
//! targets the `agent` world and exports no `prewarm`, which the host
//! would otherwise call.

wit_bindgen::generate!({
    path: "wit",
    world: "agent-prewarm",
    pub_export_macro: true,
    export_macro_name: "__export_agent_prewarm_world",
    default_bindings_module: "::agent_host_sdk::__bindings_prewarm",
    runtime_path: "::agent_host_sdk::__rt",
    with: {
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "agent-host:agent/types@0.1.5": crate::__bindings::agent_host::agent::types,
        "agent-host:agent/job@0.1.5": crate::__bindings::agent_host::agent::job,
        "agent-host:agent/room@0.1.5": crate::__bindings::agent_host::agent::room,
        "agent-host:agent/log@0.1.5": crate::__bindings::agent_host::agent::log,
        "agent-host:agent/audio@0.1.5": crate::__bindings::agent_host::agent::audio,
        "agent-host:agent/events@0.1.5": crate::__bindings::agent_host::agent::events,
        "agent-host:agent/server@0.1.5": crate::__bindings::agent_host::agent::server,
        "agent-host:agent/websocket@0.1.5": crate::__bindings::agent_host::agent::websocket,
        "agent-host:agent/streams@0.1.5": crate::__bindings::agent_host::agent::streams,
        "agent-host:agent/rpc@0.1.5": crate::__bindings::agent_host::agent::rpc,
    },
});
