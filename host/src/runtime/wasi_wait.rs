//! WASI's two waits, bounded by the call's deadline.
//!
//! The deadline stops wasm code through the engine's epoch, which is checked
//! only while wasm code runs: a guest waiting in a host call (a sleep is
//! `wasi:io/poll` on a clock's pollable) would hold its handler's thread as
//! long as it asked, and every client of the handler with it. These
//! definitions replace wasmtime-wasi's `poll` and `pollable.block` in the
//! linker with the same implementations, given only the time the call has
//! left; a wait past it is interrupted as wasm code past its deadline is.
//! The other blocking calls a sandboxed guest can make (its stdout and stderr
//! go to the log, its stdin is empty, sockets are off) never wait.

use std::time::Duration;

use wasmtime::Trap;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable};
use wasmtime_wasi::runtime::in_tokio;

use super::host::HostState;

/// The version wasmtime-wasi 48 defines (imports of older 0.2 versions
/// resolve to it); any other would open a new, incomplete instance beside
/// it, and the tests would fail (guests not linking, or the `sleep` case of
/// `tests/handler.rs` running past its deadline).
const POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces the waiting functions of `wasi:io/poll` in `linker` (after
/// `wasmtime_wasi::p2::add_to_linker_sync`).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let outcome = define(linker);
    linker.allow_shadowing(false);
    outcome
}

fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap("poll", |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
        let state = store.data_mut();
        let left = state.time_left();
        Ok((within(left, state.ctx().table.poll(pollables))??,))
    })?;
    poll.func_wrap("[method]pollable.block", |mut store, (pollable,): (Resource<DynPollable>,)| {
        let state = store.data_mut();
        let left = state.time_left();
        within(left, HostPollable::block(state.ctx().table, pollable))?
    })?;
    Ok(())
}

/// Waits for `wait` at most `left`, the way wasmtime-wasi's synchronous
/// bindings wait (on a tokio runtime of their own off the runtime's threads).
fn within<T>(left: Duration, wait: impl Future<Output = T>) -> wasmtime::Result<T> {
    in_tokio(async { tokio::time::timeout(left, wait).await }).map_err(|_| wasmtime::Error::new(Trap::Interrupt))
}
