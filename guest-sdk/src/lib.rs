//! Write ws-host WebSocket handlers in Rust.
//!
//! A handler is a WebAssembly component built for `wasm32-wasip2`. You declare
//! your events in WIT, this crate generates the Rust traits and functions
//! for them, and `ws-host run your_handler.wasm` serves it to
//! `@ezez/ws-client` front-ends. Depend on this one crate; it re-exports
//! `wit-bindgen` and the host's interfaces.
//!
//! # Walkthrough
//!
//! 1. `cargo new --lib my-handler`, then in its `Cargo.toml`:
//!
//!    ```toml
//!    [lib]
//!    crate-type = ["cdylib"]
//!
//!    [dependencies]
//!    ws-host-guest = { path = "../ws-host/guest-sdk" }
//!    ```
//!
//!    Keep the dependency's name `ws-host-guest`: the generated code refers to
//!    `ws_host_guest::...`.
//!
//! 2. Put the host's WIT package in `wit/deps/ws-host/server.wit`
//!    (`ws-host wit > wit/deps/ws-host/server.wit`), and declare your events in
//!    `wit/world.wit`. Each function of `incoming` is an event a client may
//!    send (the first parameter `from: client-id` is filled by the host, the
//!    others are the event's arguments; a return value is sent back as the
//!    reply). Each function of `outgoing` is an event you may send (the first
//!    parameter `to: target` says to whom):
//!
//!    ```wit
//!    package my:chat;
//!
//!    interface incoming {
//!        use ws-host:server/types@0.1.0.{client-id};
//!        say: func(%from: client-id, room: string, text: string) -> u32;
//!    }
//!
//!    interface outgoing {
//!        use ws-host:server/types@0.1.0.{target};
//!        said: func(to: target, room: string, text: string);
//!    }
//!
//!    world handler {
//!        include ws-host:server/handler@0.1.0;
//!        import outgoing;
//!        export incoming;
//!        // optional lifecycle hooks:
//!        export ws-host:server/auth@0.1.0;
//!    }
//!    ```
//!
//! 3. Generate the bindings and implement the traits:
//!
//!    ```ignore
//!    ws_host_guest::generate!({ world: "handler", path: "wit" });
//!
//!    use exports::my::chat::incoming::Guest as Incoming;
//!    use exports::ws_host::server::auth::Guest as Auth;
//!    use my::chat::outgoing::said;
//!    use ws_host_guest::{ClientId, Request, Target, host};
//!
//!    struct Chat;
//!
//!    impl Incoming for Chat {
//!        fn say(from: ClientId, room: String, text: String) -> u32 {
//!            said(&Target::Room(room.clone()), &room, &text);
//!            text.len() as u32
//!        }
//!    }
//!
//!    impl Auth for Chat {
//!        fn on_auth(client: ClientId, key: String, _request: Request) -> Result<(), String> {
//!            host::set_context(client, &key);
//!            if key.is_empty() { Err("Invalid auth key".into()) } else { Ok(()) }
//!        }
//!    }
//!
//!    export!(Chat);
//!    ```
//!
//! 4. `cargo build --release --target wasm32-wasip2` (once: `rustup target
//!    add wasm32-wasip2`), then `ws-host run target/wasm32-wasip2/release/my_handler.wasm`.
//!
//! Other kinds of handler: a **raw** handler exports `ws-host:server/raw@0.1.0` instead of
//! `incoming` and gets every WebSocket message as it is (see `examples/guests/raw-echo`); any
//! handler may export `ws-host:server/state@0.1.0` to keep its state across hot swaps (see
//! [`state`]). `ws-host inspect your_handler.wasm` shows what the host reads from your
//! component, and `ws-host types your_handler.wasm` prints TypeScript types for the client.
//!
//! # Python
//!
//! The same WIT world builds from Python with `componentize-py` (PyPI); no crate is involved.
//! `examples/chat-py` is the chat contract in Python, built by `bash examples/chat-py/build.sh`
//! (it installs `componentize-py` into a virtualenv on first use).
//!
//! 1. Put the host's WIT package in `wit/deps/ws-host/server.wit` and your world in `wit/`, as in
//!    step 2 above (`examples/chat-py/wit` is the Rust chat's own folder).
//! 2. `componentize-py -d wit -w chat bindings .` writes the typed bindings (`wit_world/`) for
//!    your editor: an exported interface is a `Protocol` class to subclass
//!    (`exports.Incoming`, `exports.Auth`), the host's imports and your `outgoing` events are
//!    plain functions (`wit_world.imports.host.join`, `wit_world.imports.outgoing.said`), a
//!    record is a dataclass, a variant case is a class of its own (`Target_Room(room)`), a
//!    `result` error is raised as `componentize_py_types.Err(reason)`, and `from` is `from_`:
//!
//!    ```python
//!    class Incoming(exports.Incoming):
//!        def say(self, from_, room, text):
//!            said(Target_Room(room), room, text)
//!            return len(text)
//!    ```
//!
//! 3. `componentize-py -d wit -w chat componentize app -o chat-py.wasm` compiles `app.py` and
//!    CPython into one component (about 18 MB). ws-host compiles it to machine code once and keeps
//!    the result in its compile cache, so later starts and swaps to it are fast.
//!
//! # JavaScript
//!
//! The same WIT world builds from JavaScript with `@bytecodealliance/componentize-js` (npm).
//! `examples/chat-js` is the chat contract in JavaScript, built by `bash examples/chat-js/build.sh`
//! (`npm ci` there on first use, then `node build.mjs out.wasm`).
//!
//! 1. The `wit/` folder is the same as for Rust or Python.
//! 2. An exported interface is an exported object named after it (`export const incoming = {..}`,
//!    `export const auth = {..}`, `disconnected`), its functions in camelCase (`onAuth`); imports
//!    are modules named by their WIT path (`import * as host from "ws-host:server/host@0.1.0"`,
//!    `import { said } from "example:chat/outgoing"`). A `u64` such as `client-id` is a `BigInt`,
//!    a record a plain object, a variant `{ tag: "room-except", val: { room, except } }`, an
//!    `option` a value or `undefined`, and a `result` error is thrown (`throw "Invalid auth key"`).
//!    Pass the host's functions exactly their arguments: `members(room).map(nick)` hands `nick`
//!    the index as well, which the import's checks reject.
//! 3. `componentize({ sourcePath, witPath, worldName, disableFeatures: ["http", "fetch-event"] })`
//!    makes one component with the JavaScript engine inside (about 12 MB); the compile cache makes
//!    every start after the first fast.
//!
//! A client then sends `say` with `["lobby", "hi"]` and gets the reply `2`;
//! an argument of the wrong type never reaches your code: the host answers
//! with an `ezez-ws::error` reply naming the argument. Handler state (your
//! statics) is shared by all clients and lives as long as the instance; the
//! host keeps per-client context and rooms, so they survive a trap.

pub use wit_bindgen;

mod bindings {
    wit_bindgen::generate!({
        world: "ws-host:server/handler",
        path: "../wit",
        // `target` and `room-except` are used by handlers' own interfaces only.
        generate_unused_types: true,
    });
}

pub use bindings::ws_host::server::host;
pub use bindings::ws_host::server::types;
pub use types::{ClientId, LogLevel, RawMessage, Request, RoomExcept, Target};

/// Generates the bindings of your handler's world, wired to this crate's
/// host interfaces. Takes the same `world` and `path` as
/// `wit_bindgen::generate!`; `path` defaults to `"wit"`.
#[macro_export]
macro_rules! generate {
    ({ world: $world:literal $(,)? }) => {
        $crate::generate!({ world: $world, path: "wit" });
    };
    ({ world: $world:literal, path: $path:literal $(,)? }) => {
        $crate::wit_bindgen::generate!({
            world: $world,
            path: $path,
            with: {
                "ws-host:server/types@0.1.0": ws_host_guest::types,
                "ws-host:server/host@0.1.0": ws_host_guest::host,
            },
            generate_all,
            runtime_path: "ws_host_guest::wit_bindgen::rt",
            bitflags_path: "ws_host_guest::wit_bindgen::rt::bitflags",
        });
    };
}

/// Writes a line to the host's log at `info`.
pub fn info(message: &str) {
    host::log(LogLevel::Info, message);
}

/// Writes a line to the host's log at `warn`.
pub fn warn(message: &str) {
    host::log(LogLevel::Warn, message);
}

/// State hand-over for hot swaps, with serde. Export
/// `ws-host:server/state@0.1.0` in your world and implement its two methods
/// with these helpers; when the running version and the new one both do,
/// the new instance starts with the old one's state:
///
/// ```ignore
/// impl exports::ws_host::server::state::Guest for Counter {
///     fn save() -> Vec<u8> {
///         ws_host_guest::state::encode(&COUNT.get())
///     }
///     fn restore(state: Vec<u8>) {
///         COUNT.set(ws_host_guest::state::decode(&state).unwrap_or_default());
///     }
/// }
/// ```
///
/// The encoding is JSON, so a new version may add fields (with
/// `#[serde(default)]`) and still read the old one's state.
pub mod state {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// The state as bytes for `save`.
    pub fn encode<T: Serialize>(state: &T) -> Vec<u8> {
        serde_json::to_vec(state).unwrap_or_default()
    }

    /// The state `restore` received; `None` if it does not fit `T`.
    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        serde_json::from_slice(bytes).ok()
    }
}
