//! ws-host: serve WebSocket applications written as sandboxed WebAssembly
//! components, over the wire protocol of `@ezez/ws-server` / `@ezez/ws-client`.
//!
//! A handler is a component that exports its events as the functions of an
//! `incoming` interface and imports the events it sends as an `outgoing`
//! interface (see `wit/server.wit` and the guest SDK). The host checks every
//! frame against those types at the edge, runs the handler in one sandboxed
//! instance fed one event at a time, and keeps clients, contexts and rooms on
//! its side so they survive a trap.
//!
//! The layers, each usable alone:
//! - [`codec`]: bytes <-> messages, no I/O;
//! - [`session`]: one connection's protocol state machine;
//! - [`registry`]: clients, contexts, rooms, delivery;
//! - [`bridge`]: wire values <-> WIT values;
//! - [`runtime`]: wasmtime engine, handler instances, limits;
//! - [`server`]: listeners and connections;
//! - [`cluster`]: several nodes sharing rooms and broadcasts through Redis;
//! - [`watch`]: hot swap on file changes;
//! - [`inspect`]: event tables and TypeScript types from a component;
//! - [`alloc`]: the allocator the binary runs with (mimalloc, on its fast path);
//! - [`memcpy`]: glibc's slow copies on AMD CPUs, avoided at start-up.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use ws_host::{Config, Handler, Runtime};
//!
//! let runtime = Runtime::new()?;
//! let config = Config::default();
//! let handler = Handler::load_file(&runtime, "echo.wasm".as_ref(), &config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = ws_host::server::shutdown_signal()?;
//! ws_host::server::serve(listener, handler, config, shutdown).await?;
//! # Ok(())
//! # }
//! ```

pub mod alloc;
pub mod bridge;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod inspect;
pub mod memcpy;
pub mod registry;
pub mod runtime;
pub mod server;
pub mod session;
pub mod watch;

pub use config::{BeforeAuth, Config, MAX_ROOM_NAME_BYTES, Sandbox};

/// The host's WIT package (`ws-host:server`), as handlers copy it into
/// their `wit/deps/ws-host/server.wit` (`ws-host wit` prints it).
pub const HOST_WIT: &str = include_str!("../../wit/server.wit");

/// The README's code compiles as a doctest, so it cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
pub use runtime::{Handler, LoadError, NativeHandler, RequestInfo, Runtime, RuntimeOptions};
