//! Idle connections: open `count` connections, authenticate them, and read
//! what the server process holds per connection (its RSS growth); then have
//! each echo one big message and go idle again, and read what it holds after
//! that. [`report`] prints both for each server.

use futures_util::SinkExt;

use crate::IDLE_SERVERS;
use crate::client::{connect, echo_request, next_data};
use crate::servers::Server;

/// The message each connection echoes before its second reading: what a
/// connection keeps of a big message once it is idle again.
const BIG_MESSAGE: usize = 16 * 1024;

pub struct Figures {
    pub bytes_per_connection: f64,
    pub rss_before: u64,
    pub rss_after: u64,
    /// Per connection, after each echoed one [`BIG_MESSAGE`] and went idle.
    pub bytes_after_big_message: f64,
}

pub async fn run(server: &Server, count: usize) -> Figures {
    let rss_before = server.rss();
    let mut held = Vec::with_capacity(count);
    // A few at a time: the server's accept queue is not what is measured.
    for batch in 0..count.div_ceil(100) {
        let size = 100.min(count - batch * 100);
        let batch = (0..size).map(|_| connect(server.addr, "/", server.kind.ezez()));
        held.extend(futures_util::future::join_all(batch).await);
    }
    // Every connection has had its auth-ok (or its upgrade) by now.
    let rss_after = server.rss();
    let big = "x".repeat(BIG_MESSAGE);
    for batch in held.chunks_mut(100) {
        futures_util::future::join_all(batch.iter_mut().map(|ws| async {
            ws.send(echo_request(server.kind.ezez(), 1, &big)).await.expect("send");
            match next_data(ws).await {
                Some(Ok(_)) => {}
                other => panic!("no echo of a {BIG_MESSAGE} B message: {other:?}"),
            }
        }))
        .await;
    }
    let rss_after_big_message = server.rss();
    drop(held);
    let per_connection = |rss: u64| rss.saturating_sub(rss_before) as f64 / count as f64;
    Figures {
        bytes_per_connection: per_connection(rss_after),
        rss_before,
        rss_after,
        bytes_after_big_message: per_connection(rss_after_big_message),
    }
}

/// Each server fresh, so its RSS growth is the connections' alone.
pub async fn report(count: usize) {
    println!("\n## {count} idle connections (authenticated, then idle): server RSS\n");
    println!(
        "| server | RSS before | RSS after | per connection | per connection after one {} KiB echo each |",
        BIG_MESSAGE / 1024
    );
    println!("|---|---:|---:|---:|---:|");
    for kind in IDLE_SERVERS {
        let server = Server::start(kind).await;
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
