//! Why a component could not be loaded as a plugin: the one error of every
//! step of loading (see `plugin.rs` for the order of the checks), and of a
//! refused prewarm (`prewarm.rs`). Each variant's message says what is
//! wrong in one line, in the user's terms.

/// Why a component could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The bytes are not WebAssembly.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic)")]
    NotWasm,
    /// The bytes are a core module.
    #[error(
        "this is a core WebAssembly module, not a component; build guests with `cargo build --target wasm32-wasip2` or `cargo component build`"
    )]
    CoreModule,
    /// The guest was built for a newer WIT than this host implements.
    #[error(
        "the guest was built with agent-host-sdk for WIT {guest}, but this host implements WIT {host}; upgrade agent-host"
    )]
    IncompatibleSdk {
        /// The version in the guest's marker.
        guest: String,
        /// The version this host implements.
        host: String,
    },
    /// The component failed to validate or compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component is valid but is not an `agent` world component.
    #[error("not an agent-host `agent` component: {0}")]
    WrongWorld(String),
    /// A `.cwasm`, but this runtime does not load precompiled code.
    #[error(
        "this is a precompiled plugin (native code, see SECURITY.md); load it with --allow-precompiled, or give the .wasm"
    )]
    PrecompiledNotAllowed,
    /// A `.cwasm` this host cannot or will not load.
    #[error("{0}; recompile it with `agent-host compile`")]
    Precompiled(String),
    /// The component's `prewarm` trapped, returned an error, exceeded a
    /// limit, or could not be snapshotted: the version is refused.
    #[error("prewarm failed, the version is refused: {0}")]
    Prewarm(String),
}
