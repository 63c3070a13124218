//! One handler served over WebSockets: what every listener mode hands its
//! connections to. An endpoint answers HTTP upgrade requests from any server
//! built on hyper (axum included), or takes streams already upgraded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::task::TaskTracker;

use super::read_ahead::ReadAhead;
use super::socket::Socket;
use super::{CLOSE_GOING_AWAY, connection, websocket_config};
use crate::config::Config;
use crate::runtime::{Handler, RequestInfo};

/// How long [`Endpoint::shutdown`] waits for connections to finish closing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The response body type of [`Endpoint::upgrade`].
pub type Body = Full<Bytes>;

/// A handler served over WebSockets; cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

struct Inner {
    handler: Handler,
    config: Arc<Config>,
    connections: TaskTracker,
    closed: AtomicBool,
}

impl Endpoint {
    pub fn new(handler: Handler, config: Config) -> Endpoint {
        Endpoint {
            inner: Arc::new(Inner {
                handler,
                config: Arc::new(config),
                connections: TaskTracker::new(),
                closed: AtomicBool::new(false),
            }),
        }
    }

    pub fn handler(&self) -> &Handler {
        &self.inner.handler
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Answers a WebSocket upgrade request: `101 Switching Protocols`, after
    /// which the connection is served in a task of this endpoint. Anything
    /// else gets `426 Upgrade Required` (or `503` once shut down). Works
    /// under any server that puts hyper's upgrade handle in the request's
    /// extensions (hyper, axum). `remote_addr` may be `None`: it is then taken
    /// from axum's `ConnectInfo` when present. Served by hyper's own HTTP/1
    /// connection over `TokioIo<TcpStream>`, the connection then reads and
    /// writes the TCP stream directly; under other servers, through hyper's
    /// boxed stream (~2% more CPU an echo).
    pub fn upgrade<B>(&self, mut request: Request<B>, remote_addr: Option<SocketAddr>) -> Response<Body> {
        if self.inner.closed.load(Ordering::Acquire) {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
        let key = match websocket_key(request.headers()) {
            Ok(key) => key,
            Err(refusal) => return refusal.response(),
        };
        if request.extensions().get::<hyper::upgrade::OnUpgrade>().is_none() {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "this server cannot hand over upgraded connections");
        }
        let remote_addr = remote_addr
            .or_else(|| request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|info| info.0));
        let info = request_info(&request, remote_addr);
        let on_upgrade = hyper::upgrade::on(&mut request);
        let endpoint = self.clone();
        self.inner.connections.spawn(async move {
            match on_upgrade.await {
                // The connection gets a task of its own: the upgrade's state
                // is freed rather than kept for the connection's lifetime.
                Ok(upgraded) => endpoint.serve_hyper_upgraded(upgraded, info),
                Err(error) => tracing::debug!("upgrade failed: {error}"),
            }
        });
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, key);
        response
    }

    /// An axum route that upgrades every request it gets:
    /// `Router::new().route("/ws", endpoint.route())`.
    pub fn route<S: Clone + Send + Sync + 'static>(&self) -> axum::routing::MethodRouter<S> {
        let endpoint = self.clone();
        axum::routing::any(move |request: axum::extract::Request| {
            let response = endpoint.upgrade(request, None);
            std::future::ready(response)
        })
    }

    /// Serves a stream on which the HTTP upgrade already happened (any
    /// server that can hand one over), in a task of this endpoint.
    pub fn serve_upgraded<S>(&self, stream: S, request: RequestInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve(ReadAhead::new(stream), request);
    }

    /// Serves what hyper upgraded. When hyper served a plain TCP stream (as
    /// [`App`](super::App) and hyper's own HTTP/1 server do), the stream is
    /// taken out of hyper's box, so that reads and writes go straight to the
    /// socket; otherwise (axum's server wraps it) the box is served.
    fn serve_hyper_upgraded(&self, upgraded: Upgraded, request: RequestInfo) {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => self.serve(ReadAhead::after(parts.io.into_inner(), parts.read_buf), request),
            Err(upgraded) => self.serve(ReadAhead::new(TokioIo::new(upgraded)), request),
        }
    }

    fn serve<S>(&self, stream: ReadAhead<S>, request: RequestInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let ws = Socket::new(stream, websocket_config(&self.inner.config));
        let connection = connection::serve(ws, request, self.inner.handler.clone(), self.inner.config.clone());
        self.inner.connections.spawn(connection);
    }

    /// Refuses new connections, lets the handler answer the events it has
    /// queued (for up to a second), then asks every client to close with
    /// 1001: a client's requests in flight when the server stops get their
    /// replies. A second call (as [`shutdown`](Self::shutdown) makes) does
    /// not wait for the handler again; its close requests reach connections
    /// whose upgrade finished in between.
    pub async fn close_all(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            let _ = tokio::time::timeout(connection::CLOSE_GRACE, self.inner.handler.caught_up()).await;
        }
        self.inner.handler.registry().close_all(CLOSE_GOING_AWAY.0, CLOSE_GOING_AWAY.1);
    }

    /// [`close_all`](Self::close_all), then waits until every connection has
    /// finished (the handler has seen each disconnect), at most 10 s.
    pub async fn shutdown(&self) {
        self.close_all().await;
        let connections = &self.inner.connections;
        connections.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait()).await.is_err() {
            tracing::warn!(
                handler = %self.inner.handler.name(),
                left = connections.len(),
                "connections did not close in time"
            );
        }
    }
}

/// Why an upgrade request is refused.
enum Refusal {
    NotAnUpgrade,
    Version,
    Key,
}

impl Refusal {
    fn response(self) -> Response<Body> {
        let (status, text, header) = match self {
            Refusal::NotAnUpgrade => {
                (StatusCode::UPGRADE_REQUIRED, "this is a WebSocket endpoint", Some((header::UPGRADE, "websocket")))
            }
            Refusal::Version => (
                StatusCode::UPGRADE_REQUIRED,
                "unsupported WebSocket version",
                Some((header::SEC_WEBSOCKET_VERSION, "13")),
            ),
            Refusal::Key => (StatusCode::BAD_REQUEST, "missing or bad Sec-WebSocket-Key", None),
        };
        let mut response = plain(status, text);
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request.
fn websocket_key(headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(Refusal::NotAnUpgrade);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(Refusal::Version);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(Refusal::Key)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| Refusal::Key)
}

/// Whether a request asks for a WebSocket upgrade.
pub fn is_upgrade<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
}

/// The facts of a request a handler's `on-auth` sees.
pub fn request_info<B>(request: &Request<B>, remote_addr: Option<SocketAddr>) -> RequestInfo {
    RequestInfo {
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or_default().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        remote_addr,
    }
}

/// A plain-text response.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
