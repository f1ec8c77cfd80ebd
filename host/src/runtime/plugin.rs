//! A plugin: one compiled, type-checked version of a guest component.
//!
//! Loading checks, in this order, and stops at the first problem with an
//! error that says what is wrong in one line:
//! 1. the bytes are WebAssembly at all (or an `agent-host compile` `.cwasm`,
//!    only if the runtime allows precompiled plugins, and only one compiled
//!    by this agent-host with this engine configuration; see
//!    `precompiled.rs`);
//! 2. they are a component, not a core module;
//! 3. the SDK marker (if present) names a WIT version this host supports;
//! 4. the component compiles (or its compiled form is in the cache, or it
//!    was precompiled);
//! 5. if it exports `prewarm` (world `agent-prewarm`), that prewarm
//!    succeeds, and the snapshot it leaves is what gets compiled (see
//!    `prewarm.rs`; a cached or precompiled snapshot does not run it again);
//! 6. its imports are all provided by the host and its exports match the
//!    `agent` world.
//!
//! A plugin's identity is the SHA-256 of its component's bytes; a `.cwasm`
//! has the identity of the component it was compiled from.
//!
//! A `Plugin` is immutable and shared (`Arc`) by every job started on it;
//! jobs keep the version they started on.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use super::cache::{self, ArtifactCache};
use super::limits::JobLimits;
pub use super::plugin_error::PluginError;
use super::pool::{self, Footprint};
use super::precompiled::{self, Header};
use super::prewarm;
use super::state::JobState;
use crate::bindings::AgentPre;
use crate::config::engine::{
    MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
};

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.5";

/// Custom section in which `agent-host-sdk` records the WIT version it targets.
pub const SDK_VERSION_SECTION: &str = "agent-host:sdk-version";
/// Custom section in which `export_agent!` records the guest crate's version.
pub const GUEST_VERSION_SECTION: &str = "agent-host:guest-version";

/// Whether and how a plugin's `prewarm` ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prewarm {
    /// The component exports no `prewarm`.
    None,
    /// `prewarm` ran while this plugin loaded, for this long (instrumenting
    /// and snapshotting included, compiling the snapshot not).
    Ran(Duration),
    /// The compiled snapshot came from the on-disk cache: `prewarm` did not
    /// run again.
    Cached,
    /// The snapshot was taken when the `.cwasm` was compiled
    /// (`agent-host compile`).
    Precompiled,
}

/// What loading a plugin needs from the runtime.
pub(crate) struct Loader<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<JobState>,
    pub prewarm_linker: &'a Linker<JobState>,
    pub cache: Option<&'a ArtifactCache>,
    pub allow_precompiled: bool,
    /// The limits a `prewarm` runs under.
    pub prewarm_limits: JobLimits,
}

/// Versions and digest that identify a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginVersion {
    /// SHA-256 of the component bytes, hex.
    pub digest: String,
    /// WIT version from the SDK marker, if the guest carries one.
    pub sdk: Option<String>,
    /// The guest crate's own version, if the guest carries one.
    pub guest: Option<String>,
}

impl PluginVersion {
    /// The first 12 hex digits of the digest, for logs.
    pub fn short_digest(&self) -> &str {
        &self.digest[..12.min(self.digest.len())]
    }
}

impl fmt::Display for PluginVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.guest {
            Some(v) => write!(f, "{} ({})", v, self.short_digest()),
            None => write!(f, "{}", self.short_digest()),
        }
    }
}

/// A compiled, type-checked guest component, ready to instantiate.
pub struct Plugin {
    pub(crate) pre: AgentPre<JobState>,
    component: Component,
    version: PluginVersion,
    footprint: Footprint,
    compile_time: Duration,
    from_cache: bool,
    prewarm: Prewarm,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("version", &self.version)
            .field("compile_time", &self.compile_time)
            .field("from_cache", &self.from_cache)
            .field("prewarm", &self.prewarm)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Loads a component, or a `.cwasm` when the loader allows precompiled
    /// plugins.
    pub(crate) fn load(loader: &Loader<'_>, bytes: &[u8]) -> Result<Self, PluginError> {
        let started = Instant::now();
        let loaded = if precompiled::is_precompiled(bytes) {
            let (header, artifact) = precompiled::decode(bytes).map_err(damaged)?;
            check_precompiled(loader.engine, &header, loader.allow_precompiled)?;
            // SAFETY: see `check_precompiled`, whose checks passed.
            let component =
                unsafe { cache::deserialize(loader.engine, artifact) }.map_err(refused)?;
            Loaded::precompiled(component, header)
        } else {
            compile_or_cached(loader, bytes)?
        };
        Self::type_check(loader.linker, loaded, started)
    }

    /// Loads the plugin in the file at `path`. A `.cwasm` is mapped, not
    /// read (its code and data are paged in as used); anything else is read
    /// and loaded as [`Plugin::load`] does.
    pub(crate) fn load_file(loader: &Loader<'_>, path: &Path) -> anyhow::Result<Self> {
        let started = Instant::now();
        let Some(header) = precompiled::read_file_header(path)? else {
            let bytes = std::fs::read(path)?;
            return Ok(Self::load(loader, &bytes)?);
        };
        let header = header.map_err(damaged)?;
        check_precompiled(loader.engine, &header, loader.allow_precompiled)?;
        // SAFETY: see `check_precompiled`, whose checks passed.
        let component = unsafe { cache::deserialize_file(loader.engine, path) }.map_err(refused)?;
        Ok(Self::type_check(
            loader.linker,
            Loaded::precompiled(component, header),
            started,
        )?)
    }

    /// Step 6: the component against the host's imports and the `agent` world.
    fn type_check(
        linker: &Linker<JobState>,
        loaded: Loaded,
        started: Instant,
    ) -> Result<Self, PluginError> {
        let Loaded {
            component,
            version,
            from_cache,
            prewarm,
            core_instances,
        } = loaded;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
        let pre =
            AgentPre::new(instance_pre).map_err(|e| PluginError::WrongWorld(format!("{e:#}")))?;
        let footprint = footprint(&component, core_instances);
        Ok(Self {
            pre,
            component,
            version,
            footprint,
            compile_time: started.elapsed(),
            from_cache,
            prewarm,
        })
    }

    /// This plugin as an `agent-host compile` `.cwasm`: the compiled code
    /// (serialized as the compile cache stores it) behind a header binding
    /// it to this agent-host and engine, with the component's identity.
    pub(crate) fn precompiled(&self) -> Result<Vec<u8>, PluginError> {
        let artifact = cache::serialize(&self.component)
            .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        let header = Header {
            agent_host: env!("CARGO_PKG_VERSION").to_string(),
            engine: cache::engine_key(self.pre.engine()),
            digest: self.version.digest.clone(),
            sdk: self.version.sdk.clone(),
            guest: self.version.guest.clone(),
            prewarmed: self.prewarm != Prewarm::None,
            core_instances: Some(self.footprint.core_instances),
        };
        Ok(precompiled::encode(&header, &artifact))
    }

    /// Digest and versions of this plugin.
    pub fn version(&self) -> &PluginVersion {
        &self.version
    }

    /// What one job of this plugin takes from the pool.
    pub fn footprint(&self) -> Footprint {
        self.footprint
    }

    /// How long loading took (compiling, or reading the cache, plus type-checking).
    pub fn load_time(&self) -> Duration {
        self.compile_time
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// Whether this version prewarms, and whether its `prewarm` ran now.
    pub fn prewarm(&self) -> Prewarm {
        self.prewarm
    }

    /// Names of the component's imports, sorted.
    pub fn imports(&self) -> Vec<String> {
        let engine = self.pre.engine();
        let mut names: Vec<String> = self
            .component
            .component_type()
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        names.sort();
        names
    }

    /// Names of the component's exports (functions and instances), sorted.
    pub fn exports(&self) -> Vec<String> {
        let engine = self.pre.engine();
        let mut names: Vec<String> = self
            .component
            .component_type()
            .exports(engine)
            .map(|(name, item)| match item.ty {
                ComponentItem::ComponentFunc(_) => format!("{name}: func"),
                _ => name.to_string(),
            })
            .collect();
        names.sort();
        names
    }
}

/// What one instance of `component` takes from the pool: its memories and
/// tables as wasmtime counts them, and `core_instances`; where either is
/// unknown, the per-component maximum (the most it can be, since wasmtime
/// refuses larger components).
fn footprint(component: &Component, core_instances: Option<u32>) -> Footprint {
    let resources = component.resources_required();
    Footprint {
        core_instances: core_instances.unwrap_or(MAX_CORE_INSTANCES_PER_COMPONENT),
        memories: resources
            .as_ref()
            .map_or(MAX_MEMORIES_PER_COMPONENT, |r| r.num_memories),
        tables: resources.map_or(MAX_TABLES_PER_COMPONENT, |r| r.num_tables),
    }
}

/// The identity of a plugin version, hex: SHA-256 of a component's bytes;
/// for a `.cwasm`, that of the component it was compiled from (read from its
/// header, or of the file's bytes if the header is unreadable, which loading
/// then refuses).
pub fn digest(bytes: &[u8]) -> String {
    if precompiled::is_precompiled(bytes)
        && let Ok((header, _)) = precompiled::decode(bytes)
    {
        return header.digest;
    }
    hex::encode(Sha256::digest(bytes))
}

/// A compiled component and what is known of it, before type-checking.
struct Loaded {
    component: Component,
    version: PluginVersion,
    from_cache: bool,
    prewarm: Prewarm,
    /// The walk's count of core instances (`None` for a `.cwasm` whose
    /// header does not record it: the per-component maximum is assumed).
    /// A prewarm snapshot keeps the component's instances as they were.
    core_instances: Option<u32>,
}

impl Loaded {
    fn precompiled(component: Component, header: Header) -> Self {
        let prewarm = if header.prewarmed {
            Prewarm::Precompiled
        } else {
            Prewarm::None
        };
        Self {
            component,
            core_instances: header.core_instances,
            version: header.into(),
            from_cache: false,
            prewarm,
        }
    }
}

/// Compiles a component (after its prewarm, if it has one), or loads its
/// compiled form from the cache.
fn compile_or_cached(loader: &Loader<'_>, bytes: &[u8]) -> Result<Loaded, PluginError> {
    if Engine::detect_precompiled(bytes).is_some() {
        return Err(PluginError::Precompiled(
            "this is wasmtime's precompiled code without agent-host's header (from `wasmtime compile`?)"
                .into(),
        ));
    }
    let markers = read_markers(bytes)?;
    if let Some(sdk) = &markers.sdk {
        check_sdk_version(sdk)?;
    }
    let digest = digest(bytes);
    let key = if markers.prewarms {
        cache::prewarmed_key(&digest)
    } else {
        digest.clone()
    };
    let cached = loader.cache.and_then(|c| c.load(loader.engine, &key));
    let from_cache = cached.is_some();
    let (component, prewarm) = match cached {
        Some(component) if markers.prewarms => (component, Prewarm::Cached),
        Some(component) => (component, Prewarm::None),
        None => {
            let (code, prewarm) = if markers.prewarms {
                let (snapshot, took) = prewarm::snapshot(
                    loader.engine,
                    loader.prewarm_linker,
                    bytes,
                    loader.prewarm_limits.clone(),
                )?;
                (std::borrow::Cow::Owned(snapshot), Prewarm::Ran(took))
            } else {
                (std::borrow::Cow::Borrowed(bytes), Prewarm::None)
            };
            let component = Component::new(loader.engine, &code)
                .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
            if let Some(cache) = loader.cache {
                cache.store(&key, &component);
            }
            (component, prewarm)
        }
    };
    let version = PluginVersion {
        digest,
        sdk: markers.sdk,
        guest: markers.guest,
    };
    if prewarm != Prewarm::None {
        tracing::info!(plugin = %version, ?prewarm, "prewarmed version");
    }
    Ok(Loaded {
        component,
        version,
        from_cache,
        prewarm,
        core_instances: Some(pool::core_instances(bytes).map_err(PluginError::Invalid)?),
    })
}

/// Whether a `.cwasm` with this header may be deserialized here: the
/// operator opted in, and it was compiled by this agent-host with this
/// engine's configuration for a WIT this host serves.
///
/// This is the safety argument of every `deserialize` of a `.cwasm`:
/// deserializing runs the file's machine code unverified. The runtime loads
/// one only when its operator opted in (`allow_precompiled`,
/// `--allow-precompiled`): that flag is the operator's statement that their
/// precompiled plugins come from their own `agent-host compile`
/// (SECURITY.md, "Ahead-of-time plugins"), so their provenance is the
/// operator's responsibility, as that of the agent-host binary is. The
/// header checks only catch honest mistakes (another release or
/// configuration), not forgeries; wasmtime checks its own version and
/// configuration header again.
fn check_precompiled(
    engine: &Engine,
    header: &Header,
    allow_precompiled: bool,
) -> Result<(), PluginError> {
    if !allow_precompiled {
        return Err(PluginError::PrecompiledNotAllowed);
    }
    let host = env!("CARGO_PKG_VERSION");
    if header.agent_host != host {
        return Err(PluginError::Precompiled(format!(
            "it was compiled by agent-host {}, this is {host}",
            header.agent_host
        )));
    }
    let key = cache::engine_key(engine);
    if header.engine != key {
        return Err(PluginError::Precompiled(format!(
            "it was compiled by a different wasmtime or engine configuration (engine {}, this host's is {key}; \
             the CPU's features and settings such as --memory-limit must match)",
            header.engine
        )));
    }
    if let Some(sdk) = &header.sdk {
        check_sdk_version(sdk)?;
    }
    Ok(())
}

fn damaged(err: String) -> PluginError {
    PluginError::Precompiled(format!("not a valid .cwasm: {err}"))
}

fn refused(err: anyhow::Error) -> PluginError {
    PluginError::Precompiled(format!("wasmtime refused its code: {err:#}"))
}

impl From<Header> for PluginVersion {
    fn from(header: Header) -> Self {
        Self {
            digest: header.digest,
            sdk: header.sdk,
            guest: header.guest,
        }
    }
}

/// What a component's bytes say of it before it is compiled.
#[derive(Debug, Default, PartialEq, Eq)]
struct Markers {
    /// The SDK's WIT version marker.
    sdk: Option<String>,
    /// The guest crate's version marker.
    guest: Option<String>,
    /// Whether its top level exports a function named `prewarm`.
    prewarms: bool,
}

/// Checks the magic and the component/module distinction, then returns the
/// SDK and guest version markers, searching nested core modules too, and
/// whether the component exports `prewarm`.
fn read_markers(bytes: &[u8]) -> Result<Markers, PluginError> {
    use wasmparser::{ComponentExternalKind, Payload};
    if !bytes.starts_with(b"\0asm") {
        return Err(PluginError::NotWasm);
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(PluginError::CoreModule);
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(PluginError::Invalid(
            "unknown WebAssembly binary version".into(),
        ));
    }
    let mut markers = Markers::default();
    // Nesting depth: payloads of nested modules and components come inline,
    // each ending with its own `End`.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::Invalid(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.map_err(|e| PluginError::Invalid(e.to_string()))?;
                    if export.name.name == prewarm::PREWARM_EXPORT
                        && export.kind == ComponentExternalKind::Func
                    {
                        markers.prewarms = true;
                    }
                }
            }
            Payload::CustomSection(section) => {
                let text = || String::from_utf8_lossy(section.data()).trim().to_string();
                match section.name() {
                    SDK_VERSION_SECTION => markers.sdk = Some(text()),
                    GUEST_VERSION_SECTION => markers.guest = Some(text()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(markers)
}

/// A guest may target this host's WIT version or an older one of the same
/// major. Project policy, stricter than semver's 0.x rules: a new minor or
/// patch version only ever adds to the WIT, and the host keeps serving every
/// older version of the same major.
fn check_sdk_version(guest: &str) -> Result<(), PluginError> {
    let incompatible = || PluginError::IncompatibleSdk {
        guest: guest.to_string(),
        host: WIT_VERSION.to_string(),
    };
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    let (Some(g), Some(h)) = (parse(guest), parse(WIT_VERSION)) else {
        return Err(incompatible());
    };
    if g.0 == h.0 && (g.1, g.2) <= (h.1, h.2) {
        Ok(())
    } else {
        Err(incompatible())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_wasm_and_core_modules() {
        assert!(matches!(read_markers(b"hello"), Err(PluginError::NotWasm)));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(read_markers(core), Err(PluginError::CoreModule)));
    }

    /// A component lifting a core function as `name`, optionally nested in
    /// an outer component that exports nothing.
    fn exporting(name: &str, nested: bool) -> Vec<u8> {
        let inner = format!(
            r#"(core module $m (func (export "f")))
               (core instance $i (instantiate $m))
               (func $f (canon lift (core func $i "f")))
               (export "{name}" (func $f))"#
        );
        let text = if nested {
            format!("(component (component {inner}))")
        } else {
            format!("(component {inner})")
        };
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn prewarm_is_a_top_level_function_export_named_prewarm() {
        assert!(read_markers(&exporting("prewarm", false)).unwrap().prewarms);
        assert!(!read_markers(&exporting("run", false)).unwrap().prewarms);
        // A nested component's export is not the plugin's.
        assert!(!read_markers(&exporting("prewarm", true)).unwrap().prewarms);
    }

    #[test]
    fn prewarmed_snapshots_have_their_own_cache_key() {
        let digest = "ab".repeat(32);
        assert_ne!(cache::prewarmed_key(&digest), digest);
        assert!(cache::prewarmed_key(&digest).contains("prewarmed"));
    }

    #[test]
    fn sdk_versions() {
        assert!(check_sdk_version("0.1.0").is_ok());
        assert!(check_sdk_version("0.1.1").is_ok());
        assert!(check_sdk_version("0.1.2").is_ok());
        assert!(check_sdk_version("0.1.3").is_ok());
        assert!(check_sdk_version("0.1.4").is_ok());
        assert!(check_sdk_version("0.1.5").is_ok());
        assert!(check_sdk_version("0.1.6").is_err());
        assert!(check_sdk_version("0.2.0").is_err());
        assert!(check_sdk_version("1.0.0").is_err());
        assert!(check_sdk_version("garbage").is_err());
    }
}
