//! The handler side: one engine per process, and per handler a component,
//! its schema, and one instance fed by an actor thread; or a native Rust
//! handler fed by the same kind of thread.

mod actor;
pub mod args;
mod bindings;
mod epoch;
mod guest_log;
mod handler;
mod host;
mod instance;
mod limiter;
mod memory_image;
pub mod metrics;
mod native;
mod outgoing;
mod scheduling;
pub mod schema;
mod version;
mod wasi_wait;

pub use handler::{Handler, RequestInfo};
pub use native::NativeHandler;
pub use version::{CacheUse, LoadError, Version, digest};

use wasmtime::{Config, Engine};

/// How the engine is built.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Keep compiled components here, keyed by content.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Meter fuel, so `Sandbox::fuel` can bound each event (slower calls).
    pub fuel: bool,
}

/// The WebAssembly engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// The shared wasmtime engine, with epoch interruption driven by a ticker
/// thread (`epoch`) that ends with the runtime and the instances it started.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    cache: Option<wasmtime::Cache>,
    ticker: epoch::Ticker,
}

impl Runtime {
    /// An engine that compiles every component it is given, without fuel.
    pub fn new() -> Result<Runtime, EngineError> {
        Runtime::with_options(&RuntimeOptions::default())
    }

    /// An engine that keeps compiled components in `dir`, keyed by their
    /// content: loading or swapping in an unchanged module costs no compile.
    pub fn with_cache(dir: &std::path::Path) -> Result<Runtime, EngineError> {
        Runtime::with_options(&RuntimeOptions { cache_dir: Some(dir.to_owned()), ..RuntimeOptions::default() })
    }

    pub fn with_options(options: &RuntimeOptions) -> Result<Runtime, EngineError> {
        let mut config = Config::new();
        config.consume_fuel(options.fuel);
        let cache = match &options.cache_dir {
            Some(dir) => {
                let mut cache = wasmtime::CacheConfig::new();
                cache.with_directory(dir);
                let cache = wasmtime::Cache::new(cache)
                    .map_err(|e| EngineError(format!("compile cache in {}: {e:#}", dir.display())))?;
                Some(cache)
            }
            None => None,
        };
        config.cache(cache.clone());
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Off: about 40% faster calls, and handlers are called synchronously.
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let ticker = epoch::Ticker::start(&engine)
            .map_err(|e| EngineError(format!("cannot start the epoch ticker thread: {e}")))?;
        Ok(Runtime { engine, cache, ticker })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many compiles the cache has answered so far; `None` without a cache.
    fn cache_hits(&self) -> Option<usize> {
        self.cache.as_ref().map(wasmtime::Cache::cache_hits)
    }
}
