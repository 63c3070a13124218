//! Idle connections: open `count` connections, authenticate them, and read
//! what the server process holds per connection (its RSS growth); [`report`]
//! prints it for each server.

use crate::IDLE_SERVERS;
use crate::client::connect;
use crate::servers::Server;

pub struct Figures {
    pub bytes_per_connection: f64,
    pub rss_before: u64,
    pub rss_after: u64,
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
    drop(held);
    Figures {
        bytes_per_connection: (rss_after.saturating_sub(rss_before)) as f64 / count as f64,
        rss_before,
        rss_after,
    }
}

/// Each server fresh, so its RSS growth is the connections' alone.
pub async fn report(count: usize) {
    println!("\n## {count} idle connections (authenticated, then idle): server RSS\n");
    println!("| server | RSS before | RSS after | per connection |");
    println!("|---|---:|---:|---:|");
    for kind in IDLE_SERVERS {
        let server = Server::start(kind).await;
        let figures = run(&server, count).await;
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} KiB |",
            kind.label(),
            figures.rss_before as f64 / 1048576.0,
            figures.rss_after as f64 / 1048576.0,
            figures.bytes_per_connection / 1024.0
        );
    }
    println!("\ntarget: wasm < 8 KiB per connection");
}
