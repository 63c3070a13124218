//! The `ws-host` command: serve a WebAssembly handler over WebSockets.

mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use settings::{FileSettings, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc, asked so that it keeps its fast path (see `ws_host::alloc`).
#[global_allocator]
static ALLOCATOR: ws_host::alloc::Allocator = ws_host::alloc::Allocator;
use ws_host::cluster::Cluster;
use ws_host::server::{App, Endpoint};
use ws_host::{BeforeAuth, Config, Handler, Runtime, RuntimeOptions};

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
    Run(Box<RunArgs>),
    /// Print TypeScript types of a handler's events for @ezez/ws-client.
    Types(FileArgs),
    /// Print a handler's event table, lifecycle exports and WIT world, or
    /// why the file is not a valid handler.
    Inspect(FileArgs),
    /// Print the host's WIT package, for a handler's `wit/deps/ws-host/server.wit`.
    Wit,
}

#[derive(Args)]
struct FileArgs {
    /// The handler: a WebAssembly component (.wasm).
    handler: PathBuf,
}

impl FileArgs {
    /// Reads and checks the handler as `run` would, through the same compile
    /// cache (a megabytes-large handler is then inspected in a blink after
    /// it ran once); its name and version.
    fn check(&self) -> anyhow::Result<(String, Vec<u8>, std::sync::Arc<ws_host::runtime::Version>)> {
        let bytes = std::fs::read(&self.handler)
            .map_err(|e| anyhow::anyhow!("cannot read handler {}: {e}", self.handler.display()))?;
        let name = self.handler.file_stem().map_or_else(|| "handler".into(), |s| s.to_string_lossy().into_owned());
        let cached = default_cache_dir().and_then(|dir| Runtime::with_cache(&dir).ok());
        let runtime = match cached {
            Some(runtime) => runtime,
            None => Runtime::new()?,
        };
        let version = Handler::check(&runtime, &name, &bytes, &Config::default())?;
        Ok((name, bytes, version))
    }
}

/// `run --help` headings of the limits, naming the config-file table of each.
const CONNECTION_LIMITS: &str = "Connection limits ([limits] in the config file)";
const SANDBOX_LIMITS: &str = "Handler sandbox ([limits.sandbox] in the config file)";

#[derive(Args)]
struct RunArgs {
    /// The handler: a WebAssembly component (.wasm) built against the ws-host WIT.
    /// It gets WebSocket upgrades on every path that has no --route of its own.
    handler: Option<PathBuf>,
    /// Settings from a TOML file (everything the flags say; flags override it).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve another handler at a path: `--route /chat=chat.wasm` (repeatable).
    /// Upgrades on paths without a handler get 404.
    #[arg(long, value_name = "PATH=FILE", value_parser = parse_route)]
    route: Vec<(String, PathBuf)>,
    /// Serve the files of this folder to plain HTTP requests on the same port.
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// Hot-swap a handler when its file changes; clients stay connected.
    /// (SIGHUP reloads every handler's file too, with or without this flag.)
    #[arg(long)]
    watch: bool,
    /// Where compiled handlers are cached, keyed by content [default: the
    /// user's cache folder]. An unchanged handler then starts without compiling.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Compile every handler on every start.
    #[arg(long)]
    no_cache: bool,
    /// Share rooms, broadcasts and client lookups with every other ws-host
    /// started with the same Redis URL, e.g. redis://127.0.0.1:6379 (see
    /// the README's "Running several nodes").
    #[arg(long, value_name = "REDIS_URL")]
    cluster: Option<String>,
    /// Port to listen on; 0 picks a free one (the chosen port is printed) [default: 8080].
    #[arg(long, short)]
    port: Option<u16>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    host: Option<IpAddr>,
    /// How log lines look [default: human].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// What to do with events sent before auth-ok [default: ignore].
    #[arg(long, value_enum, help_heading = CONNECTION_LIMITS, value_name = "WHAT")]
    messages_before_auth: Option<BeforeAuth>,
    /// Largest WebSocket message accepted, in bytes; larger ones close with 1009 [default: 1048576].
    #[arg(long, help_heading = CONNECTION_LIMITS, value_name = "BYTES")]
    max_payload: Option<usize>,
    /// Milliseconds a new connection has to send its auth frame [default: 5000].
    #[arg(long, help_heading = CONNECTION_LIMITS, value_name = "MS")]
    auth_timeout_ms: Option<u64>,
    /// Messages queued towards one client that does not read; more closes it (1008) [default: 1024].
    #[arg(long, help_heading = CONNECTION_LIMITS, value_name = "MESSAGES")]
    outbound_queue: Option<usize>,
    /// Bytes queued towards one client that does not read; more closes it (1008) [default: 16777216].
    #[arg(long, help_heading = CONNECTION_LIMITS, value_name = "BYTES")]
    outbound_queue_bytes: Option<usize>,
    /// Milliseconds between WebSocket pings to every client; one that sends
    /// nothing from one ping to the next (not even the pong) is closed (1001).
    /// 0 sends no pings [default: 30000].
    #[arg(long, help_heading = CONNECTION_LIMITS, value_name = "MS")]
    ping_interval_ms: Option<u64>,
    /// Milliseconds one event may run in the handler before it is stopped [default: 1000].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "MS")]
    event_deadline_ms: Option<u64>,
    /// Memory one handler instance may use, in bytes: its linear memories and tables together [default: 67108864].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "BYTES")]
    memory_limit: Option<usize>,
    /// Fuel (about one unit per WebAssembly instruction) one event may burn;
    /// enables fuel metering, which makes calls slower [default: off].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Let handlers read the real date and time (otherwise their wall clock
    /// stands still at the Unix epoch).
    #[arg(long, help_heading = SANDBOX_LIMITS)]
    allow_wall_clock: bool,
    /// Outgoing events one handler call may send before it is stopped [default: 10000].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "EVENTS")]
    max_sends_per_event: Option<u32>,
    /// Lines one handler instance may log per second (its `log` calls,
    /// stdout and stderr); the rest of that second's are dropped [default: 1000].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "LINES")]
    max_log_lines_per_second: Option<u32>,
    /// Bytes of one client's context a handler may keep in the host [default: 65536].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "BYTES")]
    max_context_bytes: Option<usize>,
    /// Rooms one client may be in [default: 256].
    #[arg(long, help_heading = SANDBOX_LIMITS, value_name = "ROOMS")]
    max_rooms_per_client: Option<usize>,
}

/// What `run` does, once flags and the config file are merged.
struct RunPlan {
    handler: Option<PathBuf>,
    routes: Vec<(String, PathBuf)>,
    static_dir: Option<PathBuf>,
    watch: bool,
    cache_dir: Option<PathBuf>,
    cluster: Option<String>,
    address: SocketAddr,
    config: Config,
}

impl RunArgs {
    /// Flags over the file over the defaults.
    fn plan(self, file: FileSettings) -> anyhow::Result<RunPlan> {
        let mut config = file.limits.unwrap_or_default();
        set(&mut config.messages_before_auth, self.messages_before_auth);
        set(&mut config.max_payload_bytes, self.max_payload);
        set(&mut config.auth_timeout_ms, self.auth_timeout_ms);
        set(&mut config.outbound_queue, self.outbound_queue);
        set(&mut config.outbound_queue_bytes, self.outbound_queue_bytes);
        set(&mut config.ping_interval_ms, self.ping_interval_ms);
        set(&mut config.sandbox.event_deadline_ms, self.event_deadline_ms);
        set(&mut config.sandbox.memory_bytes, self.memory_limit);
        set(&mut config.sandbox.max_sends_per_event, self.max_sends_per_event);
        set(&mut config.sandbox.max_log_lines_per_second, self.max_log_lines_per_second);
        set(&mut config.sandbox.max_context_bytes, self.max_context_bytes);
        set(&mut config.sandbox.max_rooms_per_client, self.max_rooms_per_client);
        if self.fuel.is_some() {
            config.sandbox.fuel = self.fuel;
        }
        config.sandbox.allow_wall_clock |= self.allow_wall_clock;
        config.check()?;
        let mut given = BTreeSet::new();
        if let Some((path, _)) = self.route.iter().find(|(path, _)| !given.insert(path)) {
            anyhow::bail!("--route {path} is given twice: a path has one handler");
        }
        let mut routes: BTreeMap<String, PathBuf> = file.routes;
        routes.extend(self.route);
        let handler = self.handler.or(file.handler);
        anyhow::ensure!(
            handler.is_some() || !routes.is_empty(),
            "no handler to serve: give a .wasm file, a --route PATH=FILE, or a config file that names one"
        );
        let no_cache = self.no_cache || file.no_cache.unwrap_or(false);
        let cache_dir = if no_cache { None } else { self.cache_dir.or(file.cache_dir).or_else(default_cache_dir) };
        let host = self.host.or(file.host).unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(RunPlan {
            handler,
            routes: routes.into_iter().collect(),
            static_dir: self.static_dir.or(file.static_dir),
            watch: self.watch || file.watch.unwrap_or(false),
            cache_dir,
            cluster: self.cluster.or(file.cluster),
            address: SocketAddr::new(host, self.port.or(file.port).unwrap_or(8080)),
            config,
        })
    }
}

fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

fn parse_route(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((path, file)) if path.starts_with('/') && !file.is_empty() => Ok((path.to_owned(), file.into())),
        _ => Err(format!("expected PATH=FILE with PATH starting with `/`, e.g. /chat=chat.wasm; got {value:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => {
            // Before the server does anything: on AMD it runs this program
            // again, and nothing done before survives. The other commands
            // copy too little to be worth a restart.
            let memcpy = ws_host::memcpy::restart_with_fast_memcpy();
            read_settings(&args).and_then(|file| {
                init_logging(args.log_format.or(file.log_format).unwrap_or_default());
                memcpy.log();
                run(args.plan(file)?)
            })
        }
        Command::Types(file) => {
            init_logging(LogFormat::Human);
            file.check().map(|(name, _, version)| print!("{}", ws_host::inspect::typescript(&name, &version.schema)))
        }
        Command::Wit => {
            print!("{}", ws_host::HOST_WIT);
            Ok(())
        }
        Command::Inspect(file) => {
            init_logging(LogFormat::Human);
            file.check().map(|(name, bytes, version)| {
                print!("{}", ws_host::inspect::describe(&name, &version.schema));
                match ws_host::inspect::wit_world(&bytes) {
                    Ok(wit) => print!("\nWIT world:\n\n{wit}"),
                    Err(error) => println!("\nWIT world: cannot print it: {error}"),
                }
            })
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_settings(args: &RunArgs) -> anyhow::Result<FileSettings> {
    args.config.as_deref().map_or_else(|| Ok(FileSettings::default()), FileSettings::read)
}

/// Logs to stderr, filtered by RUST_LOG (default `info`); in colour only on
/// a terminal (not in a file or a pipe), and never with NO_COLOR set.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

#[tokio::main]
async fn run(plan: RunPlan) -> anyhow::Result<()> {
    let config = plan.config;
    let runtime =
        Runtime::with_options(&RuntimeOptions { cache_dir: plan.cache_dir, fuel: config.sandbox.fuel.is_some() })?;
    let mut app = App::new();
    let mut files = Vec::new();
    let mut clusters = Vec::new();
    let handlers = plan.handler.iter().map(|path| (None, path)).chain(plan.routes.iter().map(|(r, p)| (Some(r), p)));
    for (route, path) in handlers {
        let handler = Handler::load_file(&runtime, path, &config)?;
        if let Some(url) = &plan.cluster {
            // Scoped by route: two routes serving one file stay apart.
            let scope = route.map_or("default", String::as_str);
            clusters.push(Cluster::join_scoped(&handler, url, scope).await?);
        }
        let endpoint = Endpoint::new(handler.clone(), config.clone());
        app = match route {
            Some(route) => app.route(route.clone(), endpoint),
            None => app.default_endpoint(endpoint),
        };
        files.push((handler, path.clone()));
    }
    if let Some(dir) = &plan.static_dir {
        anyhow::ensure!(dir.is_dir(), "--static {}: not a folder", dir.display());
        app = app.static_dir(dir);
    }
    let listener = ws_host::server::bind(plan.address).await?;
    let bound = listener.local_addr()?;
    let _watchers = if plan.watch {
        files
            .iter()
            .map(|(handler, path)| ws_host::watch::watch_file(handler.clone(), path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("cannot watch the handler files: {e}"))?
    } else {
        Vec::new()
    };
    // Before the line below (see `shutdown_signal`).
    let shutdown = ws_host::server::shutdown_signal().context("cannot listen for SIGINT and SIGTERM")?;
    reload_on_sighup(files)?;
    // The one line on stdout: scripts and tests read the port from it.
    println!("ws-host listening on ws://{bound}");
    app.serve(listener, shutdown).await?;
    for cluster in clusters {
        cluster.leave().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// `$XDG_CACHE_HOME/ws-host` or `~/.cache/ws-host`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("ws-host"))
}

/// Swaps every handler from its file on each SIGHUP, from now on.
fn reload_on_sighup(files: Vec<(Handler, PathBuf)>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading {} handler(s)", files.len());
                for (handler, path) in &files {
                    // Errors are logged by the swap itself; the old version keeps serving.
                    let _ = handler.swap_file(path).await;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = files;
    Ok(())
}
