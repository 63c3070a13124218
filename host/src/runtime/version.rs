//! One version of a handler, made ready off the event path: compiled (the
//! engine's cache makes an unchanged module cost nothing), its schema read,
//! linked, its initial memory images built, and one instance started.
//! Loading and hot swapping both go through [`prepare`], so a candidate that
//! would fail is refused before it can replace anything.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::{Component, InstancePre, Linker};

use super::Runtime;
use super::bindings;
use super::epoch::Ticker;
use super::host::HostState;
use super::instance::{Live, one_line};
use super::memory_image;
use super::schema::{Schema, SchemaError};
use crate::config::Config;
use crate::registry::Registry;

/// A loaded version of a handler.
#[derive(Debug)]
pub struct Version {
    /// Counts from 1 per handler; each swap adds one.
    pub number: u64,
    /// A hash of the component's bytes, to tell versions apart in the log.
    pub digest: String,
    pub size: usize,
    pub loaded_at: SystemTime,
    /// Time spent compiling (near zero on a cache hit).
    pub compile_time: Duration,
    /// Whether the compiled artifact came from the compile cache.
    pub compile_cache: CacheUse,
    pub schema: Schema,
}

/// What the compile cache did for one load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache configured (or a native handler): nothing to look up.
    Off,
    /// Compiled from scratch, and stored for next time.
    Miss,
    /// Read back from the cache: no compile.
    Hit,
}

impl std::fmt::Display for CacheUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheUse::Off => "off",
            CacheUse::Miss => "miss",
            CacheUse::Hit => "hit",
        })
    }
}

/// A version ready to serve: its instance is already running.
pub struct Candidate {
    pub version: Arc<Version>,
    pub pre: InstancePre<HostState>,
    pub live: Live,
}

/// Why a handler could not be loaded or swapped in. Each variant names the
/// phase. Causes are part of the message, not `source`s: printed with its
/// causes (`{:#}`), an error would otherwise say each twice.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read handler {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("handler {name} is not a WebAssembly component: {}", one_line(cause))]
    Compile { name: String, cause: wasmtime::Error },
    #[error("{name} is not a valid handler: {cause}")]
    Schema { name: String, cause: SchemaError },
    #[error("handler {name} cannot be linked: {}", one_line(cause))]
    Link { name: String, cause: wasmtime::Error },
    #[error("handler {name} failed while starting: {}", one_line(cause))]
    Start { name: String, cause: wasmtime::Error },
    #[error("handler {name}: the state hand-over failed: {reason}")]
    Handover { name: String, reason: String },
    #[error("handler {name} has stopped")]
    Stopped { name: String },
    #[error("handler {name} is native Rust code, compiled into the host: it cannot be swapped")]
    Native { name: String },
}

/// The [`Version::digest`] of a component's bytes.
pub fn digest(bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Compiles, checks, links and starts `bytes` as version `number`.
pub fn prepare(
    runtime: &Runtime,
    name: &Arc<str>,
    bytes: &[u8],
    number: u64,
    registry: &Arc<Registry>,
    config: &Config,
) -> Result<Candidate, LoadError> {
    let engine = runtime.engine();
    let named = || name.to_string();
    if !bytes.starts_with(b"\0asm") {
        let cause =
            wasmtime::format_err!("no WebAssembly header (a handler is a .wasm component built for wasm32-wasip2)");
        return Err(LoadError::Compile { name: named(), cause });
    }
    // Compiling a large component takes a while: say so before, and how long after.
    tracing::info!(handler = %name, bytes = bytes.len(), "compiling (instant when the compile cache has it)");
    let started = Instant::now();
    let hits_before = runtime.cache_hits();
    let component = Component::new(engine, bytes).map_err(|cause| LoadError::Compile { name: named(), cause })?;
    let compile_time = started.elapsed();
    // Another handler compiling at the same moment could count a hit here:
    // harmless for a log line.
    let compile_cache = match (hits_before, runtime.cache_hits()) {
        (Some(before), Some(after)) if after > before => CacheUse::Hit,
        (Some(_), _) => CacheUse::Miss,
        _ => CacheUse::Off,
    };
    let mut schema = Schema::read(engine, &component).map_err(|cause| LoadError::Schema { name: named(), cause })?;
    schema.count_into(registry.metrics());
    let pre = link(engine, &component, &schema).map_err(|cause| LoadError::Link { name: named(), cause })?;
    memory_image::build(&component, name).map_err(|cause| LoadError::Start { name: named(), cause })?;
    let live = start_off_runtime(&pre, &runtime.ticker, name, registry, config)
        .map_err(|cause| LoadError::Start { name: named(), cause })?;
    let version = Version {
        number,
        digest: digest(bytes),
        size: bytes.len(),
        loaded_at: SystemTime::now(),
        compile_time,
        compile_cache,
        schema,
    };
    Ok(Candidate { version: Arc::new(version), pre, live })
}

/// Starts the first instance on a thread of its own. Instantiating runs
/// guest code (a core start function), and guest code must never run on a
/// thread that drives tokio tasks: wasmtime-wasi's blocking calls wait
/// through tokio's `block_on`, which panics there. `prepare` is called from
/// async code (`Handler::load` in `ws-host run`), so it cannot rely on its
/// caller's thread; a thread costs tens of microseconds against the compile.
fn start_off_runtime(
    pre: &InstancePre<HostState>,
    ticker: &Ticker,
    name: &Arc<str>,
    registry: &Arc<Registry>,
    config: &Config,
) -> wasmtime::Result<Live> {
    std::thread::scope(|scope| {
        let starting = std::thread::Builder::new()
            .name(format!("start-{name}"))
            .spawn_scoped(scope, || Live::start(pre, ticker, name.clone(), registry.clone(), config))
            .map_err(|e| wasmtime::format_err!("cannot start a thread to instantiate on: {e}"))?;
        starting.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn link(engine: &wasmtime::Engine, component: &Component, schema: &Schema) -> wasmtime::Result<InstancePre<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    super::wasi_wait::add_to_linker(&mut linker)?;
    bindings::HandlerWithLifecycle::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
    if let Some((interface, events)) = &schema.outgoing {
        super::outgoing::add_to_linker(&mut linker, interface, events)?;
    }
    linker.instantiate_pre(component)
}
