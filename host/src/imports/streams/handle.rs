//! The guest's handles of its text streams: the type the `streams`
//! bindings name for the `text-writer` resource (`with:` in `bindings.rs`).
//!
//! A handle is a number into the job's [`Streams`](super::Streams), which
//! holds each writer; so this type needs nothing from the rest of the
//! crate, and what the bindings name never leads back to it. The import's
//! `drop` removes the writer, which closes its stream.

/// A text stream being written, as the guest holds it.
pub struct TextWriter {
    /// Which writer of the job; never reused within a job.
    pub(super) id: u64,
}
