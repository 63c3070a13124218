//! Idle connections: open `count` connections, authenticate them, and read
//! what the server process holds per connection (its RSS growth); then have
//! each echo one big message and go idle again, and read what it holds after
//! that. [`report`] prints both for each server.

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::IDLE_SERVERS;
use crate::client::{Ws, connect, echo_request, next_data};
use crate::servers::{Kind, Server};

/// The message each connection echoes before the second reading.
const BIG_MESSAGE: usize = 16 * 1024;

/// ws-host's heartbeat in this phase, in ms. A ws-host connection gives
/// back what a big message grew at its next ping, and the second reading
/// waits for that ping on every connection: the default 30 s would make
/// the phase wait as long, and at 1 s the generator, busy opening ten
/// thousand connections, answered some pings too late (the server closes
/// a connection silent for a whole interval).
const HEARTBEAT_MS: u64 = 5000;

pub struct Figures {
    pub bytes_per_connection: f64,
    pub rss_before: u64,
    pub rss_after: u64,
    /// Per connection, after each echoed one [`BIG_MESSAGE`] and went idle
    /// (for ws-host, until its next heartbeat).
    pub bytes_after_big_message: f64,
}

pub async fn run(server: &Server, count: usize) -> Figures {
    let rss_before = server.rss();
    let (go, _) = watch::channel(false);
    let mut held = Vec::with_capacity(count);
    let mut echoed = Vec::with_capacity(count);
    // A few at a time: the server's accept queue is not what is measured.
    for batch in 0..count.div_ceil(100) {
        let size = 100.min(count - batch * 100);
        let batch = (0..size).map(|_| connect(server.addr, "/", server.kind.ezez()));
        for ws in futures_util::future::join_all(batch).await {
            let (done, done_rx) = oneshot::channel();
            held.push(tokio::spawn(hold(ws, server.kind, go.subscribe(), done)));
            echoed.push(done_rx);
        }
    }
    // Every connection has had its auth-ok (or its upgrade) by now.
    let rss_after = server.rss();
    go.send_replace(true);
    for done in futures_util::future::join_all(echoed).await {
        done.expect("a held connection failed (its panic is above)");
    }
    let rss_after_big_message = server.rss();
    held.iter().for_each(|task| task.abort());
    let per_connection = |rss: u64| rss.saturating_sub(rss_before) as f64 / count as f64;
    Figures {
        bytes_per_connection: per_connection(rss_after),
        rss_before,
        rss_after,
        bytes_after_big_message: per_connection(rss_after_big_message),
    }
}

/// One held connection: idle (reading only, so that the server's pings are
/// answered) until `go`; then one echo of a big message and, from ws-host,
/// its next ping; then `done`, and idle again until aborted.
async fn hold(mut ws: Ws, kind: Kind, mut go: watch::Receiver<bool>, done: oneshot::Sender<()>) {
    tokio::select! {
        _ = go.wait_for(|&go| go) => {}
        () = idle(&mut ws) => panic!("the {} server closed an idle connection", kind.label()),
    }
    ws.send(echo_request(kind.ezez(), 1, &"x".repeat(BIG_MESSAGE))).await.expect("send");
    match next_data(&mut ws).await {
        Some(Ok(_)) => {}
        other => panic!("no echo of a {BIG_MESSAGE} B message: {other:?}"),
    }
    if kind.pings() {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Ping(_))) => break,
                Some(Ok(_)) => {}
                other => panic!("no ping from the {} server: {other:?}", kind.label()),
            }
        }
        ws.flush().await.expect("the pong");
    }
    let _ = done.send(());
    idle(&mut ws).await;
}

/// Reads until the connection ends; tungstenite answers pings on the way.
async fn idle(ws: &mut Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// Each server fresh, so its RSS growth is the connections' alone.
pub async fn report(count: usize) {
    println!("\n## {count} idle connections (authenticated, then idle): server RSS\n");
    println!(
        "| server | RSS before | RSS after | per connection | per connection after one {} KiB echo each (ws-host: and its next heartbeat) |",
        BIG_MESSAGE / 1024
    );
    println!("|---|---:|---:|---:|---:|");
    for kind in IDLE_SERVERS {
        let server = Server::start_idle(kind, HEARTBEAT_MS).await;
        let figures = run(&server, count).await;
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.1} KiB |",
            kind.label(),
            figures.rss_before as f64 / 1048576.0,
            figures.rss_after as f64 / 1048576.0,
            figures.bytes_per_connection / 1024.0,
            figures.bytes_after_big_message / 1024.0
        );
    }
    println!("\ntarget: wasm < 8 KiB per connection (authenticated, then idle)");
}
