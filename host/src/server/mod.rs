//! Listeners. Every mode hands connections to an [`Endpoint`] (one handler):
//! standalone ([`serve`], or [`App`] for several handlers, `/healthz` and
//! static files on one port), attached to an existing axum / hyper server
//! ([`Endpoint::route`], [`Endpoint::upgrade`]), or manual upgrade where the
//! application decides first ([`Endpoint::upgrade`] on the requests it
//! accepts, [`Endpoint::serve_upgraded`] for streams upgraded elsewhere).

mod app;
mod connection;
mod endpoint;
mod frame_boundary;
mod metrics;
mod read_ahead;
mod socket;

pub use app::App;
pub use connection::{CLOSE_MALFORMED, CLOSE_REJECTED, CLOSE_TOO_BIG};
pub use endpoint::{Endpoint, is_upgrade, request_info};

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::Frame;
use crate::config::Config;
use crate::runtime::Handler;

/// Close code and reason sent to every client on shutdown.
pub const CLOSE_GOING_AWAY: (u16, &str) = (1001, "Server shutting down");

/// Serves one handler on an already bound listener, at any path, until
/// `shutdown` resolves; then closes every client with 1001 and waits for the
/// handler to see them go (bounded). [`App`] serves several.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    App::new().default_endpoint(Endpoint::new(handler, config)).serve(listener, shutdown).await
}

/// Binds a listener, with an error that says what to do when the address
/// is taken. Port 0 picks a free port (`local_addr` tells which).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(address).await.map_err(|cause| BindError { address, cause })
}

/// The listening address could not be bound. The cause is part of the
/// message, as in [`crate::runtime::LoadError`].
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {cause} (pick another port, or stop what uses it)")]
pub struct BindError {
    pub address: SocketAddr,
    pub cause: std::io::Error,
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM sent from the moment this returns:
/// call it before printing that the server listens, so that a signal sent as
/// soon as that line is read stops the server cleanly instead of meeting the
/// default action (ending the process). Fails when the process cannot take
/// those signals over.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        // `ctrl_c` registers when first polled; Windows has no default
        // action to race with.
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Bytes tungstenite reads at a time. Its default (128 KiB) is zero-filled
/// on the first read, so each idle connection held 128 KiB of RSS. Bigger
/// messages are read ahead past it (`read_ahead`), so this small size
/// costs them no extra system calls.
pub const READ_BUFFER_BYTES: usize = 2 * 1024;

/// An encoded protocol message as the WebSocket message that carries it.
impl From<Frame> for WsMessage {
    fn from(frame: Frame) -> WsMessage {
        match frame {
            Frame::Binary(bytes) => WsMessage::Binary(bytes),
            Frame::Text(text) => WsMessage::Text(text.into()),
        }
    }
}

/// The WebSocket settings the config implies.
pub fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(config.max_payload_bytes))
        .max_frame_size(Some(config.max_payload_bytes))
}
