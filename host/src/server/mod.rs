//! Listeners: accept TCP connections, upgrade them to WebSockets, and serve
//! each with its handler until shutdown.

mod connection;

pub use connection::{CLOSE_MALFORMED, CLOSE_REJECTED, CLOSE_TOO_BIG, serve as serve_websocket};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::Config;
use crate::runtime::{Handler, RequestInfo};

/// Close code and reason sent to every client on shutdown.
pub const CLOSE_GOING_AWAY: (u16, &str) = (1001, "Server shutting down");
/// How long shutdown waits for connections to finish closing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `handler` on an already bound listener until `shutdown` resolves,
/// then closes every client with 1001 and waits for them (bounded).
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let config = config.clone();
                connections.spawn(async move {
                    if let Some((ws, request)) = upgrade(stream, Some(remote), &config).await {
                        connection::serve(ws, request, handler, config).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(clients = handler.registry().len(), "shutting down");
    handler.registry().close_all(CLOSE_GOING_AWAY.0, CLOSE_GOING_AWAY.1);
    if tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(left = connections.len(), "connections did not close in time; dropping them");
        connections.shutdown().await;
    }
    Ok(())
}

/// The WebSocket settings the config implies.
pub fn websocket_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(config.max_payload_bytes))
        .max_frame_size(Some(config.max_payload_bytes))
}

/// Runs the server side of the WebSocket handshake on a raw stream and
/// records the request's facts. `None` if the peer is not a WebSocket client
/// or too slow to say so.
pub async fn upgrade<S>(
    stream: S,
    remote_addr: Option<SocketAddr>,
    config: &Config,
) -> Option<(tokio_tungstenite::WebSocketStream<S>, RequestInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut info = RequestInfo { remote_addr, ..RequestInfo::default() };
    // The signature is tungstenite's callback; the error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let record = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        info.path = request.uri().path().to_owned();
        info.query = request.uri().query().unwrap_or_default().to_owned();
        info.headers = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        Ok(response)
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, record, Some(websocket_config(config)));
    match tokio::time::timeout(config.auth_timeout(), handshake).await {
        Ok(Ok(ws)) => Some((ws, info)),
        Ok(Err(error)) => {
            tracing::debug!(remote = ?remote_addr, "handshake failed: {error}");
            None
        }
        Err(_) => {
            tracing::debug!(remote = ?remote_addr, "handshake timed out");
            None
        }
    }
}
