//! What an instance may take from the host's memory: its linear memories and
//! tables together, under the one memory limit of its handler; and the values
//! one call may hand the host.
//!
//! wasmtime's own `StoreLimits` bound each memory and table on its own, so a
//! component with several memories (one per core module, or a module with
//! many: multi-memory is on) could hold the limit several times over, and a
//! table could grow without bound. Here every byte counts against one budget,
//! and the number of memories and tables is capped too: each memory reserves
//! gigabytes of the host's address space even while empty.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::Val;

use super::metrics::HandlerMetrics;

/// Bytes of the host's memory one table element takes (wasmtime: a pointer).
const TABLE_ELEMENT_BYTES: usize = size_of::<usize>();

/// Core instances, linear memories and tables one handler instance may
/// have. The Rust, JavaScript and Python examples have one memory and two
/// tables each; these leave room for components linked from many modules.
const MAX_INSTANCES: usize = 16;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;

/// wasmtime's own bound on what one call hands the host (its "hostcall
/// fuel"): bytes of the host's values, where a list item is a whole `Val`.
const HOSTCALL_FUEL: usize = 128 << 20;

/// What one call may hand the host: wasmtime's bound, or more if the max
/// message size allows a list of bytes that would not fit in it.
pub fn hostcall_fuel(max_payload_bytes: usize) -> usize {
    HOSTCALL_FUEL.max(max_payload_bytes.saturating_mul(size_of::<Val>()))
}

/// Names the bound when a call handed the host more than it, which wasmtime
/// says as "too much data is being copied"; `None` for any other error.
pub fn hostcall_fuel_exhausted(error: &wasmtime::Error, fuel: usize) -> Option<String> {
    error.to_string().contains("too much data is being copied").then(|| {
        format!(
            "it handed the host more than {fuel} bytes of values in one call (a list item takes {} bytes; the \
             bound follows `--max-payload`)",
            size_of::<Val>()
        )
    })
}

/// Names the counts when wasmtime refused one too many, which it says as
/// "<what> count too high at <n>"; `None` for any other error.
pub fn counts_exceeded(error: &wasmtime::Error) -> Option<String> {
    error.to_string().contains("count too high").then(|| {
        format!(
            "a handler instance may have at most {MAX_INSTANCES} core instances, {MAX_MEMORIES} linear memories \
             and {MAX_TABLES} tables"
        )
    })
}

pub struct Limits {
    /// Bytes the linear memories and tables may take together.
    budget: usize,
    /// Bytes they take now.
    used: usize,
    metrics: Arc<HandlerMetrics>,
    /// The total last refused in the running call, to name the limit in the
    /// failure it leads to (a guest aborts when its allocator gets nothing).
    pub refused: Option<usize>,
}

impl Limits {
    pub fn new(budget: usize, metrics: Arc<HandlerMetrics>) -> Self {
        Limits { budget, used: 0, metrics, refused: None }
    }

    /// Bytes the linear memories and tables may take together.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether a memory or table may grow from `current` to `desired` bytes.
    fn grow(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        // Past its own maximum the growth fails in wasmtime after the limiter
        // allowed it; refused here instead, so it is never counted.
        if maximum.is_some_and(|maximum| desired > maximum) {
            return false;
        }
        let used = self.used.saturating_sub(current).saturating_add(desired);
        if used > self.budget {
            self.refused = Some(used);
            return false;
        }
        self.used = used;
        self.metrics.memory(used);
        true
    }
}

/// A growth that fails after it was allowed (the system refused the memory)
/// stays counted: the budget errs on the strict side.
impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, maximum))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired), maximum.map(bytes)))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}
