//! See the crate docs (`src/lib.rs`).

use std::net::SocketAddr;

use anyhow::Context;
use ws_host::server::Endpoint;
use ws_host::{Config, Handler, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(chat), Some(echo)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: example-manual-upgrade <chat.wasm> <echo.wasm>");
    };
    let runtime = Runtime::new()?;
    let config = Config::default();
    let chat = Endpoint::new(Handler::load_file(&runtime, chat.as_ref(), &config)?, config.clone());
    let echo = Endpoint::new(Handler::load_file(&runtime, echo.as_ref(), &config)?, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002")
        .await
        .context("cannot listen on 127.0.0.1:3002 (stop what uses that port)")?;
    let shutdown = ws_host::server::shutdown_signal()?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = example_manual_upgrade::router(chat.clone(), echo.clone());
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::join!(chat.shutdown(), echo.shutdown());
    Ok(())
}
