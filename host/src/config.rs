//! Every wire and sandbox limit in one place, with the defaults of
//! DESIGN.md and PROTOCOL.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to do with events a client sends before its auth succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BeforeAuth {
    /// Drop them (the reference's default).
    #[default]
    Ignore,
    /// Hold them, up to `pre_auth_queue_bytes`, and handle them after auth-ok.
    Queue,
    /// Hand them to the handler at once.
    Accept,
}

/// Wire and sandbox limits of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Largest WebSocket message accepted; larger ones close with 1009.
    pub max_payload_bytes: usize,
    /// Time a new connection has to send its auth frame.
    pub auth_timeout_ms: u64,
    /// Events sent before auth-ok: ignore, queue or accept.
    pub messages_before_auth: BeforeAuth,
    /// Bytes of events held per client while its auth is pending; more
    /// closes the connection with 1008.
    pub pre_auth_queue_bytes: usize,
    /// Messages queued per client towards a reader that does not keep up;
    /// more closes it with 1008.
    pub outbound_queue: usize,
    /// Bytes queued per client towards a reader that does not keep up (so
    /// that big messages cannot pile up to `outbound_queue` of them); more
    /// closes it with 1008. One message is always let through.
    pub outbound_queue_bytes: usize,
    /// Time between WebSocket pings to every client; a client that sends
    /// nothing from one ping to the next, not even the pong, is closed with
    /// 1001. 0 sends no pings.
    pub ping_interval_ms: u64,
    /// Limits of each handler instance.
    pub sandbox: Sandbox,
}

/// Longest room name a handler may `join`, in bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 256;

/// Limits of a handler instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Sandbox {
    /// Wall-clock time one event may run in the guest before it is stopped.
    pub event_deadline_ms: u64,
    /// Bytes an instance's linear memories and tables may take together.
    pub memory_bytes: usize,
    /// Events waiting for the handler; when full, readers wait (back-pressure).
    pub event_queue: usize,
    /// Bytes of events waiting for the handler (their payloads); past it,
    /// readers wait too. One event always fits.
    pub event_queue_bytes: usize,
    /// Events of one client waiting for the handler; past it, that client's
    /// reader waits, and the others' events go ahead.
    pub event_queue_per_client: usize,
    /// Outgoing events one call may send before it is stopped (a flood).
    pub max_sends_per_event: u32,
    /// Lines one instance may log per second (`log` calls, stdout and
    /// stderr together); the rest of that second's are dropped.
    pub max_log_lines_per_second: u32,
    /// Bytes of one client's context (`set-context`): what the handler
    /// keeps in the host, outside its own memory limit.
    pub max_context_bytes: usize,
    /// Rooms one client may be in (`join`); a room's name is at most
    /// [`MAX_ROOM_NAME_BYTES`].
    pub max_rooms_per_client: usize,
    /// WebAssembly instructions (roughly) one event may run; `None` for no
    /// fuel metering (the deadline still applies). Needs a runtime created
    /// with fuel enabled.
    pub fuel: Option<u64>,
    /// Whether the guest may read the real date and time. Without it the
    /// wall clock stands still at the Unix epoch; the monotonic clock (for
    /// timeouts and durations) always runs.
    pub allow_wall_clock: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_payload_bytes: 1 << 20,
            auth_timeout_ms: 5_000,
            messages_before_auth: BeforeAuth::Ignore,
            pre_auth_queue_bytes: 1 << 20,
            outbound_queue: 1024,
            outbound_queue_bytes: 16 << 20,
            ping_interval_ms: 30_000,
            sandbox: Sandbox::default(),
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            event_deadline_ms: 1_000,
            memory_bytes: 64 << 20,
            event_queue: 1024,
            event_queue_bytes: 64 << 20,
            event_queue_per_client: 32,
            max_sends_per_event: 10_000,
            max_log_lines_per_second: 1_000,
            max_context_bytes: 64 << 10,
            max_rooms_per_client: 256,
            fuel: None,
            allow_wall_clock: false,
        }
    }
}

impl Config {
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }

    /// Time between pings; `None` when they are off.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval_ms != 0).then(|| Duration::from_millis(self.ping_interval_ms))
    }

    /// Refuses the settings under which nothing could be served: a max
    /// payload, auth timeout, event deadline or fuel of zero would refuse
    /// every message, connection or call. (Queues of zero are taken as
    /// one: a queue always holds one item.)
    pub fn check(&self) -> Result<(), ConfigError> {
        let sandbox = &self.sandbox;
        let settings = [
            ("max-payload-bytes", "--max-payload", self.max_payload_bytes as u64),
            ("auth-timeout-ms", "--auth-timeout-ms", self.auth_timeout_ms),
            ("sandbox.event-deadline-ms", "--event-deadline-ms", sandbox.event_deadline_ms),
            ("sandbox.fuel", "--fuel", sandbox.fuel.unwrap_or(1)),
        ];
        match settings.into_iter().find(|&(_, _, value)| value == 0) {
            Some((key, flag, _)) => Err(ConfigError::Zero { key, flag }),
            None => Ok(()),
        }
    }
}

/// A setting [`Config::check`] refuses, named as the config file's
/// `[limits]` table and the command line name it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} ({flag}) is 0, which would refuse everything: give at least 1")]
    Zero { key: &'static str, flag: &'static str },
}

impl Sandbox {
    pub fn event_deadline(&self) -> Duration {
        Duration::from_millis(self.event_deadline_ms)
    }
}
