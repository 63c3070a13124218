//! The standalone server: WebSocket routes by path, `/healthz`, `/metrics`
//! and an optional static folder on one port, with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tokio::net::TcpListener;
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
    /// its disconnects (bounded).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let endpoints = self.endpoints();
        let closing = endpoints.clone();
        let service = self.router().into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                shutdown.await;
                for endpoint in &closing {
                    endpoint.close_all();
                }
            })
            .await?;
        futures_util::future::join_all(endpoints.iter().map(Endpoint::shutdown)).await;
        Ok(())
    }
}

async fn fallback(request: Request, default: Option<Endpoint>, files: Option<ServeDir>) -> Response {
    if is_upgrade(&request) {
        return match default {
            Some(endpoint) => endpoint.upgrade(request, None).into_response(),
            None => plain(StatusCode::NOT_FOUND, "no WebSocket handler at this path").into_response(),
        };
    }
    match files {
        Some(files) => match files.oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(infallible) => match infallible {},
        },
        None => plain(StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
