//! The raw echo handler: every text or binary message goes back as it came.
//! No ezez protocol, no auth: a plain WebSocket echo server in a sandbox.
//!
//! Build: `cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml`
//! Run:   `ws-host run examples/guests/target/wasm32-wasip2/release/raw_echo.wasm --port 9001`
//! Test:  `bash tests/autobahn/run.sh` (the Autobahn protocol suite against it).

ws_host_guest::generate!({ world: "raw-echo" });

use exports::ws_host::server::raw::Guest;
use ws_host_guest::{ClientId, RawMessage, host};

struct RawEcho;

impl Guest for RawEcho {
    fn on_message(client: ClientId, message: RawMessage) {
        host::send_raw(client, &message);
    }
}

export!(RawEcho);
