//! The wit-bindgen bindings of `wit/agent.wit`.
//!
//! Public only so that [`export_agent!`](crate::export_agent) can reach the
//! generated export glue from the guest crate; guests use the re-exports at
//! the crate root instead.

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
    // Pollables are the `wasip2` crate's (which `wstd` and `wasi:http`
    // bindings use too), so that one `poll` waits on all of them.
    with: {
        "wasi:io/poll@0.2.12": wasip2::io::poll,
    },
});
