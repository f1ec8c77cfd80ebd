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
use super::http_meter::HttpMeter;
use super::stdio::{GuestOutput, Stdio};
use crate::bindings::audio::AudioFormat;
use crate::bindings::types::{CloseReason, DispatchInfo, JobInfo};
use crate::host_memory::HostMemory;
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
    /// Sizes the `wasi:http` resources of `table` before each HTTP call.
    http_meter: HttpMeter,
    /// Host memory held on the guest's behalf (HTTP, room queues, stdio).
    pub(crate) host_memory: HostMemory,
    /// An empty table that holds nothing: what `wasi:http` calls see once
    /// the budget is exceeded, so each of them fails (and the job with it)
    /// instead of adding more.
    refused: ResourceTable,
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
        let host_memory = HostMemory::new(limits.host_memory_bytes);
        let stdout = GuestOutput::new(Stdio::Stdout, &host_memory);
        let stderr = GuestOutput::new(Stdio::Stderr, &host_memory);
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
            http_policy: HttpPolicy::new(&limits, host_memory.clone()),
            http_meter: HttpMeter::new(&host_memory),
            host_memory,
            refused: {
                let mut refused = ResourceTable::new();
                refused.set_max_capacity(0);
                refused
            },
            room_service: None,
            memory: MemoryGuard::new(limits.memory_bytes),
            cpu: CpuSlice::new(limits.cpu_slice, limits.cpu_quota),
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
    /// Runs first in every `wasi:http` call: the meter charges what the
    /// guest's HTTP resources hold before the call can add more. Once the
    /// budget is exceeded, the call gets an empty table: it fails (every
    /// `wasi:http` call looks up or creates a resource) and ends the job
    /// with the budget's reason, so no call adds to what is held.
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_meter.measure(&mut self.table);
        let table = if self.host_memory.exceeded().is_some() {
            &mut self.refused
        } else {
            &mut self.table
        };
        WasiHttpCtxView {
            ctx: &mut self.http,
            table,
            hooks: &mut self.http_policy,
        }
    }
}
