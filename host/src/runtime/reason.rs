//! Why a guest call failed, in words a user understands: the failure
//! reason of a job (and of a refused prewarm).
//!
//! Policy: the limit that was hit is the reason when one was (a runaway, a
//! CPU quota, the host-memory budget, the memory limit, the handle limit),
//! before whatever the guest did afterwards; a trap is named for what it
//! usually means in a guest; anything else is the error's chain without
//! the backtrace. A reason is at most [`MAX_FAILURE_REASON`] bytes. The
//! wasm backtrace, whose frame names come from the guest's own name
//! section, never reaches a reason: it goes to the debug log, each name cut
//! to [`MAX_FRAME_NAME`].

use wasmtime::component::ResourceTableError;
use wasmtime::{Trap, WasmBacktrace};

use super::guard::{CpuQuotaExceeded, Runaway};
use super::state::JobState;
use crate::bounded::{self, MAX_FAILURE_REASON, MAX_FRAME_NAME};

/// Turns an error from a guest call into words a user understands, naming
/// the limit that was hit when one was; at most [`MAX_FAILURE_REASON`]
/// bytes. The wasm backtrace (whose frame names come from the guest's own
/// name section) is never part of it: it goes to the debug log, with each
/// name cut to [`MAX_FRAME_NAME`].
pub(crate) fn failure_reason(err: &wasmtime::Error, state: &JobState) -> String {
    let backtrace = err.downcast_ref::<WasmBacktrace>();
    if let Some(backtrace) = backtrace {
        log_backtrace(backtrace);
    }
    if let Some(runaway) = err.downcast_ref::<Runaway>() {
        return runaway.to_string();
    }
    if let Some(over) = err.downcast_ref::<CpuQuotaExceeded>() {
        return over.to_string();
    }
    // A guest that ran out of host memory often fails in its own way
    // afterwards (a refused request, a trap); the budget is the reason.
    if let Some(over) = state.host_memory.exceeded() {
        return over.to_string();
    }
    if let Some(reason) = state.memory.reason() {
        return reason;
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref() {
        return format!(
            "resource limit of {} handles exceeded",
            state.limits.max_resources
        );
    }
    let reason = match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow (unbounded recursion in the guest?)".into(),
        Some(Trap::UnreachableCodeReached) => match state.stderr.panic_message() {
            Some(message) => format!("guest panicked: {message}"),
            None => "trap: unreachable code reached (the guest aborted)".into(),
        },
        Some(Trap::MemoryOutOfBounds) => {
            "trap: out of bounds memory access (a stack overflow in the guest, or a bad pointer)"
                .into()
        }
        Some(trap) => format!("trap: {trap}"),
        None => error_chain(err, backtrace),
    };
    bounded::reason(reason)
}

/// `err`'s messages, outermost first, as `{err:#}` shows them but without
/// the backtrace, each formatted only up to the reason's cap.
fn error_chain(err: &wasmtime::Error, backtrace: Option<&WasmBacktrace>) -> String {
    // The backtrace is one link of the chain (wasmtime adds it as context);
    // it is recognised by how it starts, which is all that is formatted.
    const HEAD: usize = 256;
    let backtrace_head = backtrace.map(|bt| bounded::display(bt, HEAD));
    let mut parts = Vec::new();
    for link in err.chain() {
        let is_backtrace = backtrace_head
            .as_deref()
            .is_some_and(|head| bounded::display(link, HEAD) == head);
        if is_backtrace {
            continue;
        }
        parts.push(bounded::display(link, MAX_FAILURE_REASON));
    }
    parts.join(": ")
}

/// Logs a guest backtrace at debug level, on one line, each function name cut
/// to [`MAX_FRAME_NAME`] (wasmtime keeps at most 20 frames).
fn log_backtrace(backtrace: &WasmBacktrace) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let frames: Vec<String> = backtrace
        .frames()
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let name = match frame.func_name() {
                Some(name) => bounded::cut(name, MAX_FRAME_NAME).into_owned(),
                None => format!("<function {}>", frame.func_index()),
            };
            let offset = frame.module_offset().unwrap_or_default();
            format!("{i}: {offset:#x} {name}")
        })
        .collect();
    // One line: frames apart by ` | `.
    let frames = frames.join(" | ");
    tracing::debug!(backtrace = %bounded::log_line(&frames), "guest backtrace");
}
