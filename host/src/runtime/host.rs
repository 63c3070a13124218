//! The store's data and the host side of the `ws-host:server/host` interface.

use std::sync::Arc;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, LogLevel};
use super::guest_log::GuestLog;
use crate::registry::{ClientId, Registry};

/// What one handler instance's store holds.
pub struct HostState {
    pub handler: Arc<str>,
    pub registry: Arc<Registry>,
    pub limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A sandboxed state: no files, network, environment or arguments; the
    /// guest's stdout and stderr go to the log.
    pub fn new(handler: Arc<str>, registry: Arc<Registry>, limits: StoreLimits) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(GuestLog::new(handler.clone(), "stdout"))
            .stderr(GuestLog::new(handler.clone(), "stderr"))
            .build();
        HostState { handler, registry, limits, wasi, table: ResourceTable::new() }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::ws_host::server::types::Host for HostState {}

impl bindings::Host for HostState {
    fn disconnect(&mut self, client: ClientId, code: u16, reason: String) {
        self.registry.disconnect(client, code, &reason);
    }

    fn get_context(&mut self, client: ClientId) -> Option<String> {
        self.registry.context(client)
    }

    fn set_context(&mut self, client: ClientId, context: String) {
        self.registry.set_context(client, context);
    }

    fn join(&mut self, client: ClientId, room: String) {
        self.registry.join(client, &room);
    }

    fn leave(&mut self, client: ClientId, room: String) {
        self.registry.leave(client, &room);
    }

    fn members(&mut self, room: String) -> Vec<ClientId> {
        self.registry.members(&room)
    }

    fn rooms(&mut self, client: ClientId) -> Vec<String> {
        self.registry.rooms_of(client)
    }

    fn clients(&mut self) -> Vec<ClientId> {
        self.registry.clients()
    }

    fn is_authenticated(&mut self, client: ClientId) -> bool {
        self.registry.is_authenticated(client)
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let handler = &*self.handler;
        match level {
            LogLevel::Trace => tracing::trace!(target: "ws_host::guest", handler, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "ws_host::guest", handler, "{message}"),
            LogLevel::Info => tracing::info!(target: "ws_host::guest", handler, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "ws_host::guest", handler, "{message}"),
            LogLevel::Error => tracing::error!(target: "ws_host::guest", handler, "{message}"),
        }
    }
}
