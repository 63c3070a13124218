//! Typed bindings of the host package `ws-host:server` (generated from `wit/`).

wasmtime::component::bindgen!({
    world: "ws-host:server/handler-with-lifecycle",
    path: "../wit",
});

pub use exports::ws_host::server::auth::Request;
pub use ws_host::server::host::Host;
pub use ws_host::server::types::LogLevel;

/// The host package's name without its version.
pub const PACKAGE: &str = "ws-host:server";
