//! What a job's store holds: its WASI context, its guards, and its link to
//! the room.
//!
//! Invariants: one `JobState` per store, one store per job; nothing in here
//! is shared with another job except read-only configuration. The room
//! session is `None` while the guest answers `on-request`, and set once the
//! job has joined its room. The agent imports reach this state only through
//! their views ([`AgentView`]), each lending exactly what its interface may
//! touch (see `imports`); the rest of the runtime reaches the guards, the
//! limits and the job's info, never the imports' state.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::guard::{CpuSlice, MemoryGuard};
use super::pool::Draw;
use super::stdio::{GuestOutput, Stdio};
use crate::bindings::types::{DispatchInfo, JobInfo};
use crate::host_memory::HostMemory;
use crate::imports::PublishedTrack;
use crate::imports::http::{HttpMeter, HttpPolicy};
use crate::imports::{
    AgentView, AudioView, EndSignal, EventsView, JobView, RoomLink, RoomView, Rpc, RpcView,
    ServerView, SessionCloser, Streams, StreamsView, WebSocketView, WebSockets,
};
use crate::room::RoomSession;
use crate::room::service::RoomScope;
use crate::runtime::limits::JobLimits;

/// The data of one job's store.
pub(crate) struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    /// Outbound HTTP's send hook: the allow-list and caps of this job.
    http_policy: HttpPolicy,
    /// Sizes the `wasi:http` resources of `table` before each HTTP call.
    http_meter: HttpMeter,
    /// Outbound WebSockets: their policy and tasks, which end when the
    /// store (and this) is dropped.
    websockets: WebSockets,
    /// Host memory held on the guest's behalf (HTTP, room queues, stdio).
    pub(super) host_memory: HostMemory,
    /// An empty table that holds nothing: what `wasi:http` calls see once
    /// the budget is exceeded, so each of them fails (and the job with it)
    /// instead of adding more.
    refused: ResourceTable,
    /// LiveKit's server API for this job's room; `None` where the host has
    /// no server credentials (console, simulated rooms).
    room_service: Option<RoomScope>,
    pub(super) memory: MemoryGuard,
    pub(super) cpu: CpuSlice,
    pub(super) limits: JobLimits,
    pub(super) info: JobInfo,
    /// How the job was dispatched (`job.dispatch`).
    dispatch: DispatchInfo,
    /// The guest's link to its room session.
    room: RoomLink,
    /// The agent's published audio track, once published.
    audio_out: Option<PublishedTrack>,
    /// The guest's RPC methods and calls in progress.
    rpc: Rpc,
    /// The guest's text-stream writers and accepted byte-stream topics.
    streams: Streams,
    pub(super) stderr: GuestOutput,
    /// The job's share of the pool, given back when the store is dropped.
    pub(super) pool: Option<Draw>,
}

impl JobState {
    pub(super) fn new(
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
            websockets: WebSockets::new(&limits, host_memory.clone()),
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
            room: RoomLink::new(end),
            audio_out: None,
            rpc: Rpc::default(),
            streams: Streams::default(),
            stderr,
            pool: None,
        }
    }

    /// Gives the job LiveKit's server API, scoped to its room.
    pub(super) fn grant_room_service(&mut self, scope: RoomScope) {
        self.room_service = Some(scope);
    }

    /// The job has joined its room: the guest acts through `session` now.
    pub(super) async fn join(&mut self, session: Box<dyn RoomSession>) {
        self.room.join(session).await;
    }

    /// Takes the session from the guest once the job has ended.
    pub(super) async fn take_session(&mut self) -> Option<Box<dyn RoomSession>> {
        self.room.take().await
    }
}

impl AgentView for JobState {
    fn job(&mut self) -> JobView<'_> {
        JobView {
            info: &self.info,
            dispatch: &self.dispatch,
            room: SessionCloser::new(&mut self.room),
        }
    }

    fn room(&mut self) -> RoomView<'_> {
        RoomView {
            link: &mut self.room,
            max_payload: self.limits.max_payload_bytes,
        }
    }

    fn audio(&mut self) -> AudioView<'_> {
        AudioView {
            link: &mut self.room,
            track: &mut self.audio_out,
            identity: &self.info.identity,
            max_payload: self.limits.max_payload_bytes,
        }
    }

    fn events(&mut self) -> EventsView<'_> {
        EventsView {
            link: &mut self.room,
            table: &mut self.table,
        }
    }

    fn server(&mut self) -> ServerView<'_> {
        ServerView {
            scope: self.room_service.as_ref(),
            max_payload: self.limits.max_payload_bytes,
        }
    }

    fn websocket(&mut self) -> WebSocketView<'_> {
        WebSocketView {
            table: &mut self.table,
            sockets: &mut self.websockets,
        }
    }

    fn streams(&mut self) -> StreamsView<'_> {
        StreamsView {
            link: &mut self.room,
            table: &mut self.table,
            state: &mut self.streams,
            identity: &self.info.identity,
            max_payload: self.limits.max_payload_bytes,
        }
    }

    fn rpc(&mut self) -> RpcView<'_> {
        RpcView {
            link: &mut self.room,
            table: &mut self.table,
            state: &mut self.rpc,
            max_payload: self.limits.max_payload_bytes,
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
