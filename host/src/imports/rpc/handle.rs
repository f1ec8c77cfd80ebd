//! The guest's handles of the calls it made: the type the `rpc` bindings
//! name for the `pending-call` resource (`with:` in `bindings.rs`).
//!
//! A handle is a number into the job's [`Rpc`](super::Rpc), which holds
//! each call's answer; so this type needs nothing from the rest of the
//! crate, and what the bindings name never leads back to it. The import's
//! `drop` forgets the call.

/// A call the guest made, as it holds it.
pub struct PendingCall {
    /// Which call of the job; never reused within a job.
    pub(super) id: u64,
}
