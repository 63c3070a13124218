//! Test fixture: a valid component that is not a handler.

ws_host_guest::generate!({ world: "bare" });

struct Bare;

impl exports::ws_host::server::connected::Guest for Bare {
    fn on_auth_ok(_client: ws_host_guest::ClientId) {}
}

export!(Bare);
