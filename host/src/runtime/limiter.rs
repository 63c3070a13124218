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
/// `"<what> count too high at <n>"`; `None` for any other error.
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
    /// What `used` was before the growth last allowed: wasmtime can still
    /// fail that growth (the system refused the memory), and then it is
    /// taken back.
    before_growth: Option<usize>,
}

impl Limits {
    pub fn new(budget: usize, metrics: Arc<HandlerMetrics>) -> Self {
        Limits { budget, used: 0, metrics, refused: None, before_growth: None }
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
        self.before_growth = Some(self.used);
        self.set_used(used);
        true
    }

    /// The growth allowed last failed after all: it takes nothing.
    fn grow_failed(&mut self) {
        if let Some(before) = self.before_growth.take() {
            self.set_used(before);
        }
    }

    fn set_used(&mut self, used: usize) {
        self.used = used;
        self.metrics.memory(used);
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, maximum))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired), maximum.map(bytes)))
    }

    // wasmtime calls these when a growth this limiter allowed fails after all.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!("a linear memory's growth failed after it was allowed: {error:#}");
        self.grow_failed();
        Ok(())
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!("a table's growth failed after it was allowed: {error:#}");
        self.grow_failed();
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(budget: usize) -> Limits {
        Limits::new(budget, Arc::new(HandlerMetrics::default()))
    }

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut limits = limits(1000);
        assert!(limits.memory_growing(0, 600, None).unwrap());
        assert!(limits.table_growing(0, 50, None).unwrap(), "400 bytes of table elements fit beside");
        assert!(!limits.memory_growing(0, 1, None).unwrap(), "a second memory finds the budget spent");
        assert_eq!(limits.refused, Some(1001));
        assert!(!limits.memory_growing(600, 700, Some(650)).unwrap(), "past the memory's own maximum");
        assert_eq!(limits.metrics.snapshot().memory_bytes, 1000);
    }

    #[test]
    fn a_growth_wasmtime_fails_after_it_was_allowed_takes_nothing() {
        const PAGE: usize = 64 << 10;
        // Memories that may not move past a 1 MiB reservation: a growth
        // beyond it is allowed here, then fails in wasmtime.
        let mut config = wasmtime::Config::new();
        config.memory_reservation(16 * PAGE as u64).memory_may_move(false).memory_reservation_for_growth(0);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let mut store = wasmtime::Store::new(&engine, limits(40 * PAGE));
        store.limiter(|limits| limits);
        let memory = wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(1, None)).unwrap();
        assert!(memory.grow(&mut store, 32).is_err(), "33 pages do not fit the reservation");
        assert_eq!(store.data().metrics.snapshot().memory_bytes, PAGE as u64);
        // Had the failed growth stayed counted, 33 + 8 pages would be over the budget.
        memory.grow(&mut store, 8).unwrap();
        assert_eq!(store.data().metrics.snapshot().memory_bytes, 9 * PAGE as u64);
    }

    #[test]
    fn only_the_last_growth_is_taken_back_and_only_once() {
        let mut limits = limits(1000);
        assert!(limits.memory_growing(0, 100, None).unwrap());
        assert!(limits.table_growing(0, 900 / TABLE_ELEMENT_BYTES, None).unwrap());
        limits.table_grow_failed(wasmtime::Error::msg("no memory")).unwrap();
        limits.table_grow_failed(wasmtime::Error::msg("no memory")).unwrap();
        assert_eq!(limits.metrics.snapshot().memory_bytes, 100);
    }
}
