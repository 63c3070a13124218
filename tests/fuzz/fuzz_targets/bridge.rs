//! Any frame against the fixture handler's declared types (every mapped kind
//! of value): converting wire values to WIT values gives values or an error
//! message, never a panic. Needs the fixture component built by the tests
//! (`FIXTURE_WASM`, default `target/guests/wasm32-wasip2/release/fixture.wasm`).
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ws_host::codec::{Codec, Frame, Message};
use ws_host::{Config, Handler, Runtime};

fn handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let path = std::env::var("FIXTURE_WASM").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/guests/wasm32-wasip2/release/fixture.wasm").into()
        });
        let runtime = Runtime::new().expect("engine");
        Handler::load_file(&runtime, path.as_ref(), &Config::default())
            .expect("the fixture handler (run the tests once to build it)")
    })
}

fuzz_target!(|data: &[u8]| {
    let version = handler().version();
    let frames = [
        Some(Frame::Binary(Bytes::copy_from_slice(data))),
        std::str::from_utf8(data).ok().map(|t| Frame::Text(t.to_owned())),
    ];
    for frame in frames.into_iter().flatten() {
        if let Ok(Message::Event(mut event)) = Codec::decode(&frame) {
            let _ = version.schema.convert(&mut event);
        }
    }
});
