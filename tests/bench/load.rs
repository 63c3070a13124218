//! Load generator: N WebSocket connections in a closed loop against a server,
//! each sending an echo request and waiting for its reply; prints msgs/s and
//! reply-latency percentiles (HDR histogram).
//!
//! Servers, each started here in its own process:
//! - `wasm`: `ws-host run echo.wasm` (the ezez protocol, the WebAssembly echo handler);
//! - `bare`: this binary as a bare tokio-tungstenite echo server (no protocol,
//!   no handler): what the protocol and the server layers cost.
//!
//! Run through `bash tests/bench/run.sh`, which pins the servers to one core
//! and this generator to the other. Figures are ratios measured in one run;
//! absolute numbers from a shared machine mean little.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use ws_host::codec::{Codec, Event, Frame, Message, Value};

const PHASE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Wasm,
    Bare,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-server") {
        return bare_server().await;
    }
    let ws_host = std::env::var("WS_HOST_BIN").expect("WS_HOST_BIN (see tests/bench/run.sh)");
    let echo = std::env::var("GUEST_ECHO").unwrap_or_else(|_| ws_host_tests::guests::ECHO.into());
    let pin = std::env::var("SERVER_CPU").ok();

    let (mut wasm, wasm_addr) = spawn(pin.as_deref(), &ws_host, &["run", &echo, "--port", "0", "--no-cache"]).await;
    let me = std::env::current_exe().unwrap();
    let (mut bare, bare_addr) = spawn(pin.as_deref(), me.to_str().unwrap(), &["--bare-server"]).await;

    println!(
        "echo, closed loop, {} s per row (server pinned to cpu {})",
        PHASE.as_secs(),
        pin.as_deref().unwrap_or("-")
    );
    println!(
        "{:>5} {:>7} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>9}",
        "conns", "payload", "wasm msg/s", "p50 us", "p99 us", "bare msg/s", "p50 us", "p99 us", "wasm/bare"
    );
    for connections in [1usize, 100] {
        for payload in [20usize, 1024, 16 * 1024] {
            let wasm_row = run(Target::Wasm, wasm_addr, connections, payload).await;
            let bare_row = run(Target::Bare, bare_addr, connections, payload).await;
            println!(
                "{:>5} {:>7} | {:>10.0} {:>8} {:>8} | {:>10.0} {:>8} {:>8} | {:>8.2}x",
                connections,
                payload,
                wasm_row.0,
                wasm_row.1.value_at_quantile(0.5),
                wasm_row.1.value_at_quantile(0.99),
                bare_row.0,
                bare_row.1.value_at_quantile(0.5),
                bare_row.1.value_at_quantile(0.99),
                wasm_row.0 / bare_row.0
            );
        }
    }
    let _ = wasm.kill();
    let _ = bare.kill();
}

/// Starts a server process (optionally pinned) and reads its address from
/// the first line it prints.
async fn spawn(cpu: Option<&str>, program: &str, args: &[&str]) -> (Child, SocketAddr) {
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu, program]);
            c
        }
        None => Command::new(program),
    };
    let mut child = command.args(args).env("RUST_LOG", "error").stdout(Stdio::piped()).spawn().expect("spawn server");
    let stdout = tokio::process::ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let addr = line.trim().rsplit("ws://").next().unwrap().parse().expect("an address on the first line");
    (child, addr)
}

/// One row: msgs/s and the latency histogram (microseconds).
async fn run(target: Target, addr: SocketAddr, connections: usize, payload: usize) -> (f64, Histogram<u64>) {
    let deadline = Instant::now() + PHASE;
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(tokio::spawn(client(target, addr, payload, deadline)));
    }
    let mut total = Histogram::<u64>::new(3).unwrap();
    for client in clients {
        total.add(client.await.unwrap()).unwrap();
    }
    (total.len() as f64 / PHASE.as_secs_f64(), total)
}

async fn client(target: Target, addr: SocketAddr, payload: usize, deadline: Instant) -> Histogram<u64> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.expect("connect");
    let text = "x".repeat(payload);
    if target == Target::Wasm {
        let auth = Message::Auth { key: "bench".into(), version: Value::Number(1.0) };
        ws.send(frame(&auth)).await.unwrap();
        ws.next().await.unwrap().unwrap();
    }
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    let mut id = 0;
    while Instant::now() < deadline {
        id += 1;
        let request = match target {
            Target::Wasm => frame(&Message::Event(Event {
                name: "echo".into(),
                id,
                reply_to: None,
                args: vec![text.as_str().into()],
            })),
            Target::Bare => WsMessage::Binary(Bytes::from(text.clone())),
        };
        let started = Instant::now();
        ws.send(request).await.unwrap();
        match ws.next().await {
            Some(Ok(_)) => histogram.record(started.elapsed().as_micros() as u64).unwrap(),
            other => panic!("connection failed: {other:?}"),
        }
    }
    let _ = ws.close(None).await;
    histogram
}

fn frame(message: &Message) -> WsMessage {
    match Codec::Binary.encode(message) {
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
        Frame::Text(text) => WsMessage::Text(text.into()),
    }
}

/// A bare tokio-tungstenite echo server on a free port.
async fn bare_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("bare echo listening on ws://{}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}
