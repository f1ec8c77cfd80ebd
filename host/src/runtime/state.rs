//! What a job's store holds: its WASI context, its guards, and its link to
//! the room.
//!
//! Invariants: one `JobState` per store, one store per job; nothing in here
//! is shared with another job except read-only configuration. The room
//! session is `None` while the guest answers `on-request`, and set once the
//! job has joined its room.

use std::sync::Arc;

use tokio::sync::watch;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::guard::{CpuSlice, MemoryGuard};
use super::stdio::{GuestOutput, Stream};
use crate::bindings::types::{CloseReason, JobInfo};
use crate::limits::JobLimits;
use crate::room::RoomSession;

/// Signals from outside the guest to its job: `Some(reason)` once the job
/// must end (terminated by the worker, or shutdown requested by the guest).
pub(crate) type EndSignal = Arc<watch::Sender<Option<CloseReason>>>;

/// The data of one job's store.
pub(crate) struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryGuard,
    pub(crate) cpu: CpuSlice,
    pub(crate) limits: JobLimits,
    pub(crate) info: JobInfo,
    pub(crate) session: Option<Box<dyn RoomSession>>,
    /// Set once `next-event` has returned `closed`; later calls repeat it.
    pub(crate) closed: Option<CloseReason>,
    pub(crate) end: EndSignal,
    pub(crate) stderr: GuestOutput,
}

impl JobState {
    pub(crate) fn new(info: JobInfo, limits: JobLimits, end: EndSignal) -> Self {
        let stdout = GuestOutput::new(Stream::Stdout);
        let stderr = GuestOutput::new(Stream::Stderr);
        // No ambient authority: no preopened directory, no environment, no
        // arguments, no network (wasmtime-wasi 48 denies sockets and name
        // lookups unless allowed); stdin is empty. Clocks and randomness are
        // the real ones.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        Self {
            wasi,
            table,
            memory: MemoryGuard::new(limits.memory_bytes),
            cpu: CpuSlice::new(limits.cpu_slice),
            limits,
            info,
            session: None,
            closed: None,
            end,
            stderr,
        }
    }
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
