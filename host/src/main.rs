//! The `ws-host` command: serve a WebAssembly handler over WebSockets.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use ws_host::{BeforeAuth, Config, Handler, Runtime};

/// Serve WebSocket applications written as sandboxed WebAssembly components,
/// over the protocol of @ezez/ws-server and @ezez/ws-client.
///
/// Logs go to stderr; set RUST_LOG (e.g. `RUST_LOG=ws_host=debug`) to see more.
#[derive(Parser)]
#[command(name = "ws-host", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a handler: `ws-host run handler.wasm --port 8080`.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The handler: a WebAssembly component (.wasm) built against the ws-host WIT.
    handler: PathBuf,
    /// Port to listen on; 0 picks a free one (the chosen port is printed).
    #[arg(long, short, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// What to do with events sent before auth-ok.
    #[arg(long, value_enum, default_value_t = BeforeAuth::Ignore)]
    messages_before_auth: BeforeAuth,
    /// Largest WebSocket message accepted, in bytes (larger ones close with 1009).
    #[arg(long, default_value_t = Config::default().max_payload_bytes)]
    max_payload: usize,
    /// Milliseconds a new connection has to send its auth frame.
    #[arg(long, default_value_t = Config::default().auth_timeout_ms)]
    auth_timeout_ms: u64,
    /// Milliseconds one event may run in the handler before it is stopped.
    #[arg(long, default_value_t = Config::default().sandbox.event_deadline_ms)]
    event_deadline_ms: u64,
    /// Linear memory one handler instance may use, in bytes.
    #[arg(long, default_value_t = Config::default().sandbox.memory_bytes)]
    memory_limit: usize,
}

impl RunArgs {
    fn config(&self) -> Config {
        let mut config = Config {
            messages_before_auth: self.messages_before_auth,
            max_payload_bytes: self.max_payload,
            auth_timeout_ms: self.auth_timeout_ms,
            ..Config::default()
        };
        config.sandbox.event_deadline_ms = self.event_deadline_ms;
        config.sandbox.memory_bytes = self.memory_limit;
        config
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = args.config();
    let runtime = Runtime::new()?;
    let handler = Handler::load_file(&runtime, &args.handler, &config)?;
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (pick another --port, or stop what uses it)"))?;
    let bound = listener.local_addr()?;
    let events: Vec<_> = {
        let mut names: Vec<_> = handler.schema().incoming.keys().cloned().collect();
        names.sort();
        names
    };
    tracing::info!(handler = handler.name(), events = %events.join(", "), "loaded");
    // The one line on stdout: scripts and tests read the port from it.
    println!("ws-host listening on ws://{bound}");
    ws_host::server::serve(listener, handler, config, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
