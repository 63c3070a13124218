//! An existing axum application that adds a ws-host handler beside its own
//! routes: `GET /health` answers `OK`, `/ws` is the WebSocket, one port.
//!
//! Run: `cargo run -p example-axum-app -- examples/guests/target/wasm32-wasip2/release/chat.wasm`
//! (build the guests first: see examples/demo.sh), then connect to ws://127.0.0.1:3000/ws.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use ws_host::server::Endpoint;

/// The application's router, with the handler mounted at `/ws`.
pub fn router(chat: &Endpoint) -> Router {
    Router::new().route("/health", get(|| async { "OK" })).route("/ws", chat.route())
}

/// Serves the app until `shutdown`; axum owns the listener. On shutdown the
/// WebSocket clients are closed with 1001 and the handler sees them go.
pub async fn serve(
    listener: TcpListener,
    chat: Endpoint,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(&chat).into_make_service_with_connect_info::<SocketAddr>();
    let closing = chat.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.close_all().await;
        })
        .await?;
    chat.shutdown().await;
    Ok(())
}
