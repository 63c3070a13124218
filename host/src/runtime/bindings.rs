//! Typed bindings of the host package `ws-host:server` (generated from `wit/`).

wasmtime::component::bindgen!({
    world: "ws-host:server/handler-with-lifecycle",
    path: "../wit",
    // Sending and storing state in the host can exceed the sandbox's
    // limits, which stops the guest.
    imports: {
        "ws-host:server/host.send-raw": trappable,
        "ws-host:server/host.set-context": trappable,
        "ws-host:server/host.join": trappable,
        "ws-host:server/host.disconnect": trappable,
    },
});

pub use self::exports::ws_host::server::auth::Request;
pub use self::ws_host::server::host::Host;
pub use self::ws_host::server::types::{LogLevel, RawMessage, Target as WitTarget};

/// The host package's name without its version.
pub const PACKAGE: &str = "ws-host:server";
