//! See the crate docs (`src/lib.rs`).

use anyhow::Context;
use ws_host::server::Endpoint;
use ws_host::{Config, Handler, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let wasm = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: example-hyper-service <handler.wasm>"))?;
    let runtime = Runtime::new()?;
    let config = Config::default();
    let echo = Endpoint::new(Handler::load_file(&runtime, wasm.as_ref(), &config)?, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001")
        .await
        .context("cannot listen on 127.0.0.1:3001 (stop what uses that port)")?;
    let shutdown = ws_host::server::shutdown_signal()?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::select! {
        served = example_hyper_service::serve(listener, echo.clone()) => served?,
        () = shutdown => echo.shutdown().await,
    }
    Ok(())
}
