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
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guard::{CpuSlice, MemoryGuard};
use super::http::HttpPolicy;
use super::stdio::{GuestOutput, Stream};
use crate::bindings::audio::AudioFormat;
use crate::bindings::types::{CloseReason, DispatchInfo, JobInfo};
use crate::limits::JobLimits;
use crate::room::RoomSession;
use crate::room_service::RoomScope;

/// Signals to the job that it must end: `Some(reason)` once it was
/// terminated by the worker, shutdown was requested by the guest, or the
/// guest was told its room session ended.
pub(crate) type EndSignal = Arc<watch::Sender<Option<CloseReason>>>;

/// The data of one job's store.
pub(crate) struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    /// Outbound HTTP's send hook: the allow-list and caps of this job.
    http_policy: HttpPolicy,
    /// LiveKit's server API for this job's room; `None` where the host has
    /// no server credentials (console, simulated rooms).
    pub(crate) room_service: Option<RoomScope>,
    pub(crate) memory: MemoryGuard,
    pub(crate) cpu: CpuSlice,
    pub(crate) limits: JobLimits,
    pub(crate) info: JobInfo,
    /// How the job was dispatched (`job.dispatch`).
    pub(crate) dispatch: DispatchInfo,
    pub(crate) session: Option<Box<dyn RoomSession>>,
    /// The format of the agent's published audio track, once published.
    pub(crate) audio_out: Option<AudioFormat>,
    /// Set once `next-event` has returned `closed`; later calls repeat it.
    pub(crate) closed: Option<CloseReason>,
    pub(crate) end: EndSignal,
    pub(crate) stderr: GuestOutput,
}

impl JobState {
    pub(crate) fn new(
        info: JobInfo,
        dispatch: DispatchInfo,
        limits: JobLimits,
        end: EndSignal,
    ) -> Self {
        let stdout = GuestOutput::new(Stream::Stdout);
        let stderr = GuestOutput::new(Stream::Stderr);
        // No ambient authority: no preopened directory, no environment, no
        // arguments, no sockets (wasmtime-wasi 48 denies sockets and name
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
            http: WasiHttpCtx::new(),
            http_policy: HttpPolicy::new(&limits),
            room_service: None,
            memory: MemoryGuard::new(limits.memory_bytes),
            cpu: CpuSlice::new(limits.cpu_slice),
            limits,
            info,
            dispatch,
            session: None,
            audio_out: None,
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

impl WasiHttpView for JobState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}
