//! The standalone server: WebSocket routes by path, `/healthz`, `/metrics`
//! and an optional static folder on one port, with graceful shutdown.
//!
//! Connections are served by hyper's own HTTP/1 connection, not hyper-util's
//! `auto` one: `auto` wraps every stream in a private type of its own, so an
//! upgraded stream could only be used through hyper's boxed `Upgraded`, and
//! every WebSocket read and write would pass the box, two rewind buffers and
//! two I/O adapters. Given hyper's own, [`Endpoint`] takes
//! the TCP stream back out of the upgrade. hyper-util's graceful shutdown
//! does not take hyper's upgradeable connections, so it is done here.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use super::endpoint::{Endpoint, is_upgrade, plain};
use super::metrics;

/// What one port serves.
#[derive(Clone, Default)]
pub struct App {
    routes: Vec<(String, Endpoint)>,
    default: Option<Endpoint>,
    static_dir: Option<PathBuf>,
}

impl App {
    pub fn new() -> App {
        App::default()
    }

    /// Upgrades at `path` go to `endpoint`.
    pub fn route(mut self, path: impl Into<String>, endpoint: Endpoint) -> App {
        self.routes.push((path.into(), endpoint));
        self
    }

    /// Upgrades at any path without a route of its own go to `endpoint`
    /// (without one they get 404).
    pub fn default_endpoint(mut self, endpoint: Endpoint) -> App {
        self.default = Some(endpoint);
        self
    }

    /// Plain HTTP requests are answered from this folder.
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> App {
        self.static_dir = Some(dir.into());
        self
    }

    /// Every endpoint served.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.routes.iter().map(|(_, e)| e.clone()).chain(self.default.clone()).collect()
    }

    /// The axum router of this app, to serve or to nest in a bigger one.
    pub fn router(&self) -> Router {
        let labelled: Vec<(String, Endpoint)> =
            self.routes.iter().cloned().chain(self.default.iter().map(|e| ("*".to_owned(), e.clone()))).collect();
        let mut router = Router::new()
            .route("/healthz", axum::routing::get(|| async { "OK" }))
            .route("/metrics", axum::routing::get(move || std::future::ready(metrics::render(&labelled))));
        for (path, endpoint) in &self.routes {
            router = router.route(path, endpoint.route());
        }
        let default = self.default.clone();
        let files = self.static_dir.clone().map(ServeDir::new);
        router.fallback(move |request: Request| fallback(request, default.clone(), files.clone()))
    }

    /// Serves on `listener` until `shutdown` resolves; then stops accepting,
    /// closes every client with 1001 and waits until each handler has seen
    /// its disconnects (bounded). A connection that does not send its HTTP
    /// request within the auth timeout is dropped.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let endpoints = self.endpoints();
        let header_timeout = endpoints.first().map_or(Duration::from_secs(5), |e| e.config().auth_timeout());
        let router = self.router();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let connections = TaskTracker::new();
        let stopping = CancellationToken::new();
        let mut accept_errors = AcceptErrors::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: back off, do not spin.
                            accept_errors.failed(&error);
                            tokio::time::sleep(ACCEPT_RETRY).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    if let Err(error) = probe_when_silent(&stream) {
                        tracing::debug!(%remote, "cannot set keepalive probes: {error}");
                    }
                    let service = router.clone().map_request(move |mut request: http::Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(remote));
                        request.map(Body::new)
                    });
                    let connection =
                        http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
                    connections.spawn(serve_http(connection, stopping.clone(), remote));
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        futures_util::future::join_all(endpoints.iter().map(Endpoint::close_all)).await;
        // Plain HTTP requests in flight finish; upgraded connections belong to the endpoints.
        stopping.cancel();
        connections.close();
        if tokio::time::timeout(Duration::from_secs(10), connections.wait()).await.is_err() {
            tracing::warn!("HTTP connections did not finish in time");
        }
        futures_util::future::join_all(endpoints.iter().map(Endpoint::shutdown)).await;
        Ok(())
    }
}

/// Serves one HTTP connection until it ends or is upgraded; once `stopping`
/// is cancelled, the request in flight is answered and the connection closed.
async fn serve_http<S>(
    connection: http1::UpgradeableConnection<TokioIo<tokio::net::TcpStream>, S>,
    stopping: CancellationToken,
    remote: std::net::SocketAddr,
) where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = stopping.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::trace!(%remote, "HTTP connection ended: {error}");
    }
}

/// How long the accept loop waits after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Accept failures are logged at most once in this long.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// Failed accepts (out of file descriptors, mostly, which lasts until
/// connections close): one warning, then one per [`ACCEPT_WARN_EVERY`] with
/// how many failed since, instead of one per retry.
#[derive(Default)]
struct AcceptErrors {
    warned: Option<std::time::Instant>,
    since: u64,
}

impl AcceptErrors {
    fn failed(&mut self, error: &std::io::Error) {
        self.since += 1;
        if self.warned.is_some_and(|at| at.elapsed() < ACCEPT_WARN_EVERY) {
            return;
        }
        tracing::warn!(
            failures = self.since,
            "cannot accept connections: {error}; retrying every {} ms (out of file descriptors? raise the \
             open-file limit, e.g. `ulimit -n`)",
            ACCEPT_RETRY.as_millis()
        );
        self.warned = Some(std::time::Instant::now());
        self.since = 0;
    }
}

/// Silence on a connection after which the kernel starts probing the peer,
/// the time between probes, and how many unanswered probes close it: a peer
/// that vanished without a word (a closed laptop, a dropped network) is
/// let go within about 90 s of silence, with its rooms and queue, instead of
/// never. The WebSocket pings of [`crate::registry`] find such peers sooner
/// in every listener mode; these probes, costing nothing per connection,
/// cover a server run with pings off.
const KEEPALIVE: TcpKeepalive =
    TcpKeepalive::new().with_time(Duration::from_secs(60)).with_interval(Duration::from_secs(10)).with_retries(3);

/// Turns [`KEEPALIVE`] probes on for an accepted connection.
fn probe_when_silent(stream: &tokio::net::TcpStream) -> std::io::Result<()> {
    SockRef::from(stream).set_tcp_keepalive(&KEEPALIVE)
}

async fn fallback(request: Request, default: Option<Endpoint>, files: Option<ServeDir>) -> Response {
    let upgrade = is_upgrade(&request);
    match (files, default) {
        (Some(files), _) if !upgrade => match files.oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(infallible) => match infallible {},
        },
        // Every other path is the default handler's: it upgrades, or says
        // it is a WebSocket endpoint (426), as a route does.
        (_, Some(endpoint)) => endpoint.upgrade(request, None).into_response(),
        (_, None) if upgrade => plain(StatusCode::NOT_FOUND, "no WebSocket handler at this path").into_response(),
        (_, None) => plain(StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use socket2::SockRef;

    #[tokio::test]
    async fn accepted_connections_are_probed_when_silent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        super::probe_when_silent(&accepted).unwrap();
        let socket = SockRef::from(&accepted);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(10));
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
    }
}
