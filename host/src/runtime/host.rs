//! The store's data and the host side of the `ws-host:server/host` interface.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, LogLevel, RawMessage};
use super::guest_log::{GuestLog, LogLimit, MAX_LINE};
use super::limiter::Limits;
use crate::codec::Frame;
use crate::config::{Config, MAX_ROOM_NAME_BYTES};
use crate::registry::{ClientId, Registry, close_code_allowed};

/// What one handler instance's store holds.
pub struct HostState {
    pub handler: Arc<str>,
    pub registry: Arc<Registry>,
    pub limits: Limits,
    /// What the guest may send during one call.
    pub sends: SendBudget,
    /// When the running call's deadline passes (for waits in host calls,
    /// which the engine's epoch does not interrupt).
    pub deadline: Instant,
    log_limit: Arc<LogLimit>,
    /// What the handler may keep in the host per client.
    kept: KeptLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// What a handler may keep in the host for each client: the host's memory
/// is not the guest's, so its memory limit does not cover this.
struct KeptLimits {
    context_bytes: usize,
    rooms: usize,
}

/// Outgoing events left for the running call, and the largest one allowed.
pub struct SendBudget {
    pub left: u32,
    pub per_call: u32,
    pub max_bytes: usize,
}

impl SendBudget {
    /// Takes one send of `size` bytes from the budget; an error (which traps
    /// the guest) when the call has sent too many or the message is too big.
    /// `what` names the message in the error (a `Display`, so that naming
    /// it costs nothing when nothing fails).
    pub fn spend(&mut self, size: usize, what: impl std::fmt::Display) -> wasmtime::Result<()> {
        if self.left == 0 {
            wasmtime::bail!("flood: more than {} outgoing events in one call", self.per_call);
        }
        self.left -= 1;
        if size > self.max_bytes {
            wasmtime::bail!("{what} of about {size} bytes is over the max payload of {} bytes", self.max_bytes);
        }
        Ok(())
    }
}

impl HostState {
    /// A sandboxed state: no files, network, environment or arguments, and
    /// no real date unless the sandbox allows it; the guest's stdout and
    /// stderr go to the log. Limits as `config` says.
    pub fn new(handler: Arc<str>, registry: Arc<Registry>, config: &Config) -> Self {
        let sandbox = &config.sandbox;
        let limits = Limits::new(sandbox.memory_bytes, registry.metrics().clone());
        let sends = SendBudget {
            left: sandbox.max_sends_per_event,
            per_call: sandbox.max_sends_per_event,
            max_bytes: config.max_payload_bytes,
        };
        let log_limit = LogLimit::new(handler.clone(), sandbox.max_log_lines_per_second);
        let mut wasi = WasiCtx::builder();
        let stream = |name| GuestLog::new(handler.clone(), name, log_limit.clone());
        wasi.stdout(stream("stdout")).stderr(stream("stderr"));
        // No sockets at all, said explicitly (the builder's documentation
        // says TCP and UDP are allowed by default): an allowed socket is a
        // file descriptor of the host's, even if no address may be used.
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        if !sandbox.allow_wall_clock {
            wasi.wall_clock(StoppedClock);
        }
        let wasi = wasi.build();
        let deadline = Instant::now();
        let kept = KeptLimits { context_bytes: sandbox.max_context_bytes, rooms: sandbox.max_rooms_per_client };
        HostState { handler, registry, limits, sends, deadline, log_limit, kept, wasi, table: ResourceTable::new() }
    }

    /// How long the running call may still wait.
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A wall clock that stands still at the Unix epoch.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::ws_host::server::types::Host for HostState {}

impl bindings::Host for HostState {
    fn disconnect(&mut self, client: ClientId, code: u16, reason: String) -> wasmtime::Result<()> {
        if !close_code_allowed(code) {
            wasmtime::bail!("close code {code} may not be sent by a server (use 1000-1003, 1007-1013 or 3000-4999)");
        }
        self.registry.disconnect(client, code, &reason);
        Ok(())
    }

    fn get_context(&mut self, client: ClientId) -> Option<String> {
        self.registry.context(client)
    }

    fn set_context(&mut self, client: ClientId, context: String) -> wasmtime::Result<()> {
        let max = self.kept.context_bytes;
        if context.len() > max {
            wasmtime::bail!(
                "a context of {} bytes is over the limit of {max} bytes per client (raise it with `--max-context-bytes`)",
                context.len()
            );
        }
        self.registry.set_context(client, context);
        Ok(())
    }

    fn join(&mut self, client: ClientId, room: String) -> wasmtime::Result<()> {
        if room.len() > MAX_ROOM_NAME_BYTES {
            wasmtime::bail!("a room name of {} bytes is over the limit of {MAX_ROOM_NAME_BYTES} bytes", room.len());
        }
        let (rooms, member) = self.registry.rooms_held(client, &room);
        if !member && rooms >= self.kept.rooms {
            wasmtime::bail!(
                "client {client} is in {rooms} rooms, the limit per client (raise it with `--max-rooms-per-client`)"
            );
        }
        self.registry.join(client, &room);
        Ok(())
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

    fn send_raw(&mut self, client: ClientId, message: RawMessage) -> wasmtime::Result<()> {
        let frame = match message {
            RawMessage::Text(text) => Frame::Text(text),
            RawMessage::Binary(bytes) => Frame::Binary(bytes.into()),
        };
        self.sends.spend(frame.payload_len(), "raw message")?;
        self.registry.send_raw(client, frame);
        Ok(())
    }

    fn log(&mut self, level: LogLevel, mut message: String) {
        message.truncate(message.floor_char_boundary(MAX_LINE));
        let handler = &*self.handler;
        // Lines the log filter leaves out cost nothing, so they do not count.
        macro_rules! guest_line {
            ($level:expr) => {
                if tracing::enabled!(target: "ws_host::guest", $level) && self.log_limit.admit() {
                    tracing::event!(target: "ws_host::guest", $level, handler = %handler, "{message}")
                }
            };
        }
        match level {
            LogLevel::Trace => guest_line!(tracing::Level::TRACE),
            LogLevel::Debug => guest_line!(tracing::Level::DEBUG),
            LogLevel::Info => guest_line!(tracing::Level::INFO),
            LogLevel::Warn => guest_line!(tracing::Level::WARN),
            LogLevel::Error => guest_line!(tracing::Level::ERROR),
        }
    }
}
