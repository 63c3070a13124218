//! The echo handler: `echo` replies with its text, `echo-bytes` with its
//! bytes. No auth hook, so every key is accepted.
//!
//! Build: `cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml`
//! Run:   `ws-host run examples/guests/target/wasm32-wasip2/release/echo.wasm --port 8080`

ws_host_guest::generate!({ world: "echo" });

use exports::example::echo::incoming::Guest;
use ws_host_guest::ClientId;

struct Echo;

impl Guest for Echo {
    fn echo(_from: ClientId, text: String) -> String {
        text
    }

    fn echo_bytes(_from: ClientId, data: Vec<u8>) -> Vec<u8> {
        data
    }
}

export!(Echo);
