//! Prewarm: a plugin's optional `prewarm` export, run once per version and
//! snapshotted into the component that every job of that version starts
//! from (WIT 0.1.5, world `agent-prewarm`).
//!
//! Policy:
//! - a component prewarms iff its top level exports a function `prewarm`
//!   (the host looks it up by name; the `agent` world has none);
//! - `prewarm` runs on a fresh instance of the component as instrumented
//!   by `wasmtime-wizer`, in a store with the job limits' memory and host
//!   memory caps (the runtime's largest job memory, so that any job of the
//!   version fits what the snapshot holds) and one bound of time,
//!   [`PREWARM_TIMEOUT`], over computing and waiting alike;
//! - it may use WASI as a job does (no files, no sockets, no environment;
//!   stdout and stderr go to the log) and the `log` import. Every other
//!   import (the job, the room, audio, events, the server API, WebSockets,
//!   streams, RPC, `wasi:http`) traps: there is no job and no room yet;
//! - a trap, an `err`, a limit or the timeout refuses the version with the
//!   reason ([`PluginError::Prewarm`]); so does a prewarm that returns with
//!   a handle still open (a stream, a pollable): the snapshot holds memory
//!   and globals only, and the handle's number would mean nothing, or
//!   another handle, in a job;
//! - the snapshot is taken by `wasmtime-wizer` from the memories and
//!   globals of that instance, and the rewritten component is what the
//!   caller compiles, caches and instantiates for every job. The identity
//!   of the version stays the original component's digest.
//!
//! `wasmtime-wizer`'s own runner (`Wizer::run_component`, its `wasmtime`
//! feature) is not used: that feature compiles GC, threads and the wave
//! parser into the engine, and it calls the function with no limits. This
//! module calls `prewarm` itself and hands the instance to wizer's
//! snapshot through [`ComponentInstanceState`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Instance, Lift, Linker, ResourceType, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::limits::JobLimits;
use super::plugin_error::PluginError;
use super::reason::failure_reason;
use super::state::JobState;
use crate::bindings::types::{DispatchInfo, JobInfo, JobType, RoomInfo};
use crate::config::job::PREWARM_TIMEOUT;
use crate::imports::{LogData, LogView};

/// The export a prewarming component has, at its top level.
pub(crate) const PREWARM_EXPORT: &str = "prewarm";

/// The linker of a prewarm: WASI as jobs have it and `log`; the other
/// imports are defined as traps per component ([`snapshot`]).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<JobState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::bindings::agent_host::agent::log::add_to_linker::<JobState, LogData>(
        &mut linker,
        |_| LogView,
    )?;
    Ok(linker)
}

/// Runs `bytes`' `prewarm` under `limits` and returns the component with
/// the state it left, and how long it ran.
///
/// Blocks the calling thread: the prewarm runs on a thread of its own with
/// a single-threaded tokio runtime (for WASI's clocks), so that loading
/// works the same from a CLI command, a hot swap's task or a test.
pub(crate) fn snapshot(
    engine: &Engine,
    linker: &Linker<JobState>,
    bytes: &[u8],
    limits: JobLimits,
) -> Result<(Vec<u8>, Duration), PluginError> {
    let started = Instant::now();
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(|e| PluginError::Prewarm(format!("cannot snapshot this component: {e:#}")))?;
    let component = Component::new(engine, &instrumented)
        .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
    let mut linker = linker.clone();
    deny_imports(engine, &mut linker, &component)
        .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
    let mut store = new_store(engine, limits);
    let run = async {
        let instance = linker
            .instantiate_async(&mut store, &component)
            .await
            .map_err(|e| refusal(&e, &store))?;
        call_prewarm(&mut store, &instance).await?;
        if store.data().holds_resources() {
            return Err(PluginError::Prewarm(
                "it returned with a handle still open (stdout, a stream, a pollable?): a snapshot \
                 holds memory, not handles; log with `agent_host_sdk::info!` and drop handles \
                 before returning"
                    .into(),
            ));
        }
        // Wizer reads the memories through `list<u8>` results, whole: the
        // guest's own hostcall budget is not for that.
        store.set_hostcall_fuel(usize::MAX);
        let mut state = Snapshotting {
            store: &mut store,
            instance,
        };
        Ok(wizer.snapshot_component(&cx, &mut state).await)
    };
    let bounded = async {
        match tokio::time::timeout(PREWARM_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => Err(PluginError::Prewarm(format!(
                "it was still running after {}",
                humantime::format_duration(PREWARM_TIMEOUT)
            ))),
        }
    };
    let snapshot = on_own_thread(bounded)??
        .map_err(|e| PluginError::Prewarm(format!("snapshot failed: {e:#}")))?;
    Ok((snapshot, started.elapsed()))
}

/// Calls `prewarm` and turns a trap or an `err` into the refusal.
async fn call_prewarm(store: &mut Store<JobState>, instance: &Instance) -> Result<(), PluginError> {
    let func = instance
        .get_typed_func::<(), (Result<(), String>,)>(&mut *store, PREWARM_EXPORT)
        .map_err(|e| {
            PluginError::WrongWorld(format!(
                "its `prewarm` export is not `func() -> result<_, string>`: {e:#}"
            ))
        })?;
    match func.call_async(&mut *store, ()).await {
        Ok((Ok(()),)) => Ok(()),
        Ok((Err(reason),)) => Err(PluginError::Prewarm(format!(
            "it returned an error: {}",
            crate::bounded::reason(reason)
        ))),
        Err(err) => Err(refusal(&err, store)),
    }
}

/// Defines every function of the imports a prewarm may not use (the agent
/// interfaces but `log` and `types`, and `wasi:http`) as a trap naming it,
/// and their resources as empty host types.
///
/// Not wasmtime's `define_unknown_imports_as_traps`: it looks names up
/// exactly, so a guest importing `wasi:io` at another patch version than
/// wasmtime-wasi defines would get stubs shadowing the real WASI.
fn deny_imports(
    engine: &Engine,
    linker: &mut Linker<JobState>,
    component: &Component,
) -> wasmtime::Result<()> {
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let interface = name.split('@').next().unwrap_or(name);
        let allowed = matches!(interface, "agent-host:agent/log" | "agent-host:agent/types");
        let denied =
            interface.starts_with("agent-host:agent/") || interface.starts_with("wasi:http/");
        if allowed || !denied {
            continue;
        }
        let mut root = linker.root();
        let mut stubs = root.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let called = format!("`{interface}#{export}`");
                    stubs.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("{DENIED}{called}")
                    })?;
                }
                ComponentItem::Resource(_) => {
                    stubs.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// How a denied import's trap begins, for [`refusal`].
const DENIED: &str = "prewarm may not call ";

fn refusal(err: &wasmtime::Error, store: &Store<JobState>) -> PluginError {
    let denied = err.chain().find_map(|cause| {
        let text = cause.to_string();
        text.strip_prefix(DENIED).map(str::to_string)
    });
    let reason = match denied {
        Some(import) => {
            format!("it called {import}: a prewarm has no job, no room and no network")
        }
        None => failure_reason(err, store.data()),
    };
    PluginError::Prewarm(reason)
}

/// A store like a job's, for no job: the limits' memory caps, and a yield
/// at every epoch tick so that the timeout is checked while it computes.
fn new_store(engine: &Engine, limits: JobLimits) -> Store<JobState> {
    let info = JobInfo {
        id: String::new(),
        job_type: JobType::Room,
        room: RoomInfo {
            sid: String::new(),
            name: String::new(),
            metadata: String::new(),
        },
        participant: None,
        agent_name: String::new(),
        metadata: String::new(),
        attributes: Vec::new(),
        identity: String::new(),
    };
    let dispatch = DispatchInfo {
        dispatch_id: String::new(),
        deployment: String::new(),
        enable_recording: false,
        enable_redaction: false,
    };
    let (end, _) = watch::channel(None);
    let hostcall_bytes = limits.hostcall_bytes;
    let mut store = Store::new(engine, JobState::new(info, dispatch, limits, Arc::new(end)));
    store.limiter(|state| &mut state.memory);
    store.set_hostcall_fuel(hostcall_bytes);
    store.epoch_deadline_async_yield_and_update(1);
    store
}

/// Runs `future` to its end on a new thread with its own tokio runtime.
fn on_own_thread<F: Future + Send>(future: F) -> Result<F::Output, PluginError>
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("agent-host-prewarm".into())
            .spawn_scoped(scope, || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
            })
            .map_err(|e| PluginError::Prewarm(format!("cannot start its thread: {e}")))?;
        match thread.join() {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(PluginError::Prewarm(format!(
                "cannot start its runtime: {e}"
            ))),
            Err(_) => Err(PluginError::Prewarm("its thread panicked".into())),
        }
    })
}

/// The instance after `prewarm`, as wizer reads its state: through the
/// accessor functions its instrumentation exported.
struct Snapshotting<'a> {
    store: &'a mut Store<JobState>,
    instance: Instance,
}

impl Snapshotting<'_> {
    /// Calls `instance#func`, an accessor wizer's instrumentation added.
    /// Its absence or a trap in it is a bug of wizer's, not of the guest:
    /// accessors only read memory and globals.
    async fn call<R: Lift + Send + Sync + 'static, O>(
        &mut self,
        instance: &str,
        func: &str,
        read: impl FnOnce(&Store<JobState>, R) -> O,
    ) -> O {
        let (_, exported) = self
            .instance
            .get_export(&mut *self.store, None, instance)
            .expect("wizer's instrumentation exports its accessor instance");
        let (_, func) = self
            .instance
            .get_export(&mut *self.store, Some(&exported), func)
            .expect("wizer's accessor instance exports each accessor");
        let func = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, func)
            .expect("wizer's accessors have the types it reads");
        let (ret,) = func
            .call_async(&mut *self.store, ())
            .await
            .expect("wizer's accessors only read state");
        read(self.store, ret)
    }
}

impl ComponentInstanceState for Snapshotting<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(store));
        })
        .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}
