//! The servers under test, each its own process started by the generator,
//! pinned to `SERVER_CPU` when set. Each prints its address on its first
//! line. The native, bare and floor servers are this binary in a server role.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use ws_host::server::{App, Endpoint};
use ws_host::{Config, Handler};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `ws-host run echo.wasm --route /fanout=fanout.wasm`: the product.
    Wasm,
    /// The same server with the same contracts as a native Rust handler.
    Native,
    /// Node.js, npm `ws` and `@ezez/utils` (tests/node/bench-server.mjs).
    Node,
    /// A bare tokio-tungstenite echo: no protocol, no handler.
    Bare,
    /// The least a tokio WebSocket echo can do (`floor`): what the machine allows.
    Floor,
    /// `ws-host run` with the chat example built in one language.
    Chat(Language),
}

/// The languages the chat example is built in (issue #9).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::JavaScript];

    pub fn label(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        }
    }

    fn chat(self) -> &'static str {
        use ws_host_tests::guests;
        match self {
            Language::Rust => guests::CHAT,
            Language::Python => guests::CHAT_PY,
            Language::JavaScript => guests::CHAT_JS,
        }
    }
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Wasm => "wasm",
            Kind::Native => "native",
            Kind::Node => "node",
            Kind::Bare => "bare",
            Kind::Floor => "floor",
            Kind::Chat(language) => language.label(),
        }
    }

    /// Whether it speaks the ezez protocol (all but the bare and floor echoes).
    pub fn ezez(self) -> bool {
        !matches!(self, Kind::Bare | Kind::Floor)
    }

    /// Whether it is ws-host itself (the WebAssembly or the native
    /// handler): the servers that ping their clients.
    pub fn pings(self) -> bool {
        matches!(self, Kind::Wasm | Kind::Native)
    }

    /// Where its fan-out contract is served.
    pub fn fanout_path(self) -> &'static str {
        if self == Kind::Wasm { "/fanout" } else { "/" }
    }
}

/// `USER_HZ`, the unit of /proc's CPU times: 100 on every Linux ABI.
const TICKS_PER_SECOND: u64 = 100;

/// A process's CPU time in its own code (`user`) and in the kernel on its
/// behalf (`system`: its syscalls, and on loopback much of its peer's TCP
/// receive path too).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    /// What the process of a `/proc/<pid>/stat` file has used so far, all
    /// threads, in the kernel's 10 ms ticks.
    fn of(stat: String) -> CpuTime {
        let [user, system] = ws_host_tests::proc_stat_fields(stat, [14, 15]);
        let ticks = |n: u64| Duration::from_millis(n * 1000 / TICKS_PER_SECOND);
        CpuTime { user: ticks(user), system: ticks(system) }
    }

    /// What this generator has used so far.
    pub fn of_generator() -> CpuTime {
        CpuTime::of("/proc/self/stat".into())
    }

    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// What was used after `earlier`.
    pub fn since(&self, earlier: CpuTime) -> CpuTime {
        CpuTime { user: self.user.saturating_sub(earlier.user), system: self.system.saturating_sub(earlier.system) }
    }
}

pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    child: Child,
}

fn ws_host() -> String {
    std::env::var("WS_HOST_BIN").expect("WS_HOST_BIN (see tests/bench/run.sh)")
}

/// This binary, which serves the native, bare and floor servers.
fn me() -> String {
    std::env::current_exe().unwrap().to_string_lossy().into_owned()
}

/// The program and arguments that start a `kind` of server.
fn command(kind: Kind) -> (String, Vec<String>) {
    let me = me();
    match kind {
        Kind::Wasm => (ws_host(), wasm_args()),
        Kind::Chat(language) => {
            // The default compile cache: what a restart costs, not a 30 s compile.
            // Each connection talks in a room of its own, and a room keeps 1000
            // messages: the JavaScript chat's heap outgrows the default 64 MiB
            // at ~45k messages over 100 rooms (SpiderMonkey needs room to
            // collect), and the sandbox replaces it. 256 MiB lets every build
            // run the phase on its speed.
            let args = ["run", language.chat(), "--port", "0", "--memory-limit", "268435456"];
            (ws_host(), args.map(String::from).to_vec())
        }
        Kind::Native => (me, vec!["--serve".into(), "native".into()]),
        Kind::Bare => (me, vec!["--serve".into(), "bare".into()]),
        Kind::Floor => (me, vec!["--serve".into(), "floor".into()]),
        Kind::Node => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/node/bench-server.mjs");
            ("node".into(), vec![script.into()])
        }
    }
}

/// `ws-host run` with the echo and fan-out contracts.
fn wasm_args() -> Vec<String> {
    let echo = std::env::var("GUEST_ECHO").unwrap_or_else(|_| ws_host_tests::guests::ECHO.into());
    let fanout = format!("/fanout={}", ws_host_tests::guests::FANOUT);
    ["run", &echo, "--route", &fanout, "--port", "0", "--no-cache"].map(String::from).to_vec()
}

impl Server {
    /// The WebAssembly server as one node of the cluster meeting at `redis`.
    pub async fn clustered(redis: &str) -> Server {
        let mut args = wasm_args();
        args.extend(["--cluster".into(), redis.into()]);
        Server::spawn(Kind::Wasm, ws_host(), args, &[]).await
    }

    /// [`Self::start`] for the idle phase: ws-host's heartbeat every
    /// `heartbeat_ms` (the other servers have none to set), and mimalloc
    /// (ws-host's allocator, and this binary's for the bare echo) giving
    /// freed pages back to the system at once, so that RSS counts what the
    /// connections hold rather than what the allocator keeps for reuse.
    pub async fn start_idle(kind: Kind, heartbeat_ms: u64) -> Server {
        let (program, mut args) = command(kind);
        if kind.pings() {
            args.extend(["--ping-interval-ms".to_owned(), heartbeat_ms.to_string()]);
        }
        let env: &[_] = match kind {
            Kind::Wasm | Kind::Native | Kind::Bare => &[("MIMALLOC_PURGE_DELAY", "0")],
            _ => &[],
        };
        Server::spawn(kind, program, args, env).await
    }

    pub async fn start(kind: Kind) -> Server {
        let (program, args) = command(kind);
        Server::spawn(kind, program, args, &[]).await
    }

    async fn spawn(kind: Kind, program: String, args: Vec<String>, env: &[(&str, &str)]) -> Server {
        let mut command = match std::env::var("SERVER_CPU") {
            Ok(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu, &program]);
                c
            }
            Err(_) => Command::new(&program),
        };
        let mut child = command
            .args(&args)
            // Warnings say why a request failed (a trap, a refused reply).
            .env("RUST_LOG", "warn")
            // Each server starts as its users start it: ws-host and this
            // binary's servers set glibc's copy threshold themselves on AMD
            // (`ws_host::memcpy`), Node.js runs with glibc's defaults.
            .env_remove("GLIBC_TUNABLES")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {} server ({program}): {e}", kind.label()));
        let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let addr = line.trim().rsplit("ws://").next().and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            if line.is_empty() {
                panic!("the {} server ended before printing its address (its error is above)", kind.label())
            }
            panic!("the {} server printed no address: {line:?}", kind.label())
        });
        Server { kind, addr, child }
    }

    /// The server process's resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// CPU time the server process has used so far, all threads.
    pub fn cpu_time(&self) -> CpuTime {
        CpuTime::of(format!("/proc/{}/stat", self.child.id()))
    }

    /// The time spent in handler calls so far and their number, from
    /// `/metrics` summed over every route (ws-host servers only).
    pub async fn handler_totals(&self) -> Option<HandlerTotals> {
        if matches!(self.kind, Kind::Node | Kind::Bare | Kind::Floor) {
            return None;
        }
        let (_, text) = ws_host_tests::http_get(self.addr, "/metrics").await;
        let total = |metric: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(metric))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Some(HandlerTotals {
            seconds: total("ws_host_handler_seconds_sum"),
            calls: total("ws_host_handler_seconds_count"),
        })
    }
}

/// A server's handler calls so far: their time and their number.
#[derive(Debug, Clone, Copy, Default)]
pub struct HandlerTotals {
    seconds: f64,
    calls: f64,
}

impl HandlerTotals {
    /// Microseconds per call made between `earlier` and these totals; `None`
    /// if there was none.
    pub fn per_call_since(self, earlier: HandlerTotals) -> Option<f64> {
        let calls = self.calls - earlier.calls;
        (calls > 0.0).then(|| (self.seconds - earlier.seconds) / calls * 1e6)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves the echo and fan-out contracts with the native handler, through
/// the same `App` as `ws-host run`.
/// `ping_interval_ms`: ws-host's `--ping-interval-ms`, if given.
pub async fn serve_native(ping_interval_ms: Option<u64>) {
    let mut config = Config::default();
    if let Some(ms) = ping_interval_ms {
        config.ping_interval_ms = ms;
    }
    let handler = Handler::native("native", ws_host_tests::native::EchoFanout, &config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("native handler listening on ws://{}", listener.local_addr().unwrap());
    let app = App::new().default_endpoint(Endpoint::new(handler, config));
    app.serve(listener, std::future::pending()).await.unwrap();
}

/// A bare tokio-tungstenite echo server, with its default settings.
pub async fn serve_bare() {
    serve_each("bare echo", async |stream| {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Listens on a free port, prints the address as `<name> listening on
/// ws://...`, and serves each connection in a task of its own.
pub async fn serve_each<F>(name: &str, serve: impl Fn(TcpStream) -> F) -> !
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{name} listening on ws://{}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream));
    }
}
