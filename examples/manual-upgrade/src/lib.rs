//! Manual upgrade: the application sees every upgrade request first and
//! decides. Here it routes by path to two handlers and requires
//! `?token=letmein`; a refused request gets the application's own 401 and
//! never reaches a handler.
//!
//! Run: `cargo run -p example-manual-upgrade -- chat.wasm echo.wasm`
//! then connect to ws://127.0.0.1:3002/chat?token=letmein.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ws_host::server::Endpoint;

/// The token this example accepts.
pub const TOKEN: &str = "token=letmein";

/// Chooses a handler by path, checks the token, and only then upgrades.
pub async fn decide(
    chat: Endpoint,
    echo: Endpoint,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let endpoint = match request.uri().path() {
        "/chat" => chat,
        "/echo" => echo,
        _ => return (StatusCode::NOT_FOUND, "no such handler").into_response(),
    };
    if request.uri().query() != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "a valid token is required").into_response();
    }
    endpoint.upgrade(request, Some(remote)).into_response()
}

/// The router: every request goes through [`decide`].
pub fn router(chat: Endpoint, echo: Endpoint) -> Router {
    Router::new().fallback(move |info: ConnectInfo<SocketAddr>, request: Request| {
        decide(chat.clone(), echo.clone(), info, request)
    })
}
