//! A plain hyper server (no framework) that hands `/ws` to ws-host and
//! answers everything else itself.
//!
//! Run: `cargo run -p example-hyper-service -- examples/guests/target/wasm32-wasip2/release/echo.wasm`
//! then connect to ws://127.0.0.1:3001/ws.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use ws_host::server::Endpoint;

/// Accepts connections until the listener fails; each is served by hyper
/// with upgrades enabled, which ws-host needs.
pub async fn serve(listener: TcpListener, echo: Endpoint) -> std::io::Result<()> {
    loop {
        let (stream, remote) = listener.accept().await?;
        let echo = echo.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = if request.uri().path() == "/ws" {
                    echo.upgrade(request, Some(remote))
                } else {
                    Response::new(Full::new(Bytes::from_static(b"hello from hyper")))
                };
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
}
