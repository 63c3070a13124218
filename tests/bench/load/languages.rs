//! The chat example built in each language, each in a server of its own.

use std::time::Duration;

use crate::echo;
use crate::servers::{HandlerTotals, Kind, Language, Server};

/// The chat example per language, each in its own fresh server: round trips
/// (`say` in a room of one until `said` returns), handler time per event,
/// and the server's RSS with the one instance (started from the compile
/// cache), idle and after the load.
pub async fn run(phase: Duration) {
    println!("\n## the chat example per language: say -> said round trips, 20 B\n");
    println!(
        "| build | msg/s, 1 conn | msg/s, 100 conns | p99 us, 100 conns | vs Rust | handler us/event | RSS idle | RSS after |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rust_rate = None;
    for language in Language::ALL {
        // A first start fills the compile cache, so the RSS measured is a
        // restart's, without the compiler's memory.
        drop(Server::start(Kind::Chat(language)).await);
        let server = Server::start(Kind::Chat(language)).await;
        let idle_rss = server.rss();
        let one = echo::closed_loop(&server, 1, 20, phase).await;
        let hundred = echo::closed_loop(&server, 100, 20, phase).await;
        let handler = server.handler_totals().await.and_then(|t| t.per_call_since(HandlerTotals::default()));
        let base = *rust_rate.get_or_insert(hundred.rate);
        println!(
            "| {} | {:.0} | {:.0} | {} | {:.2}x | {:.1} | {:.0} MiB | {:.0} MiB |",
            language.label(),
            one.rate,
            hundred.rate,
            hundred.p99(),
            hundred.rate / base,
            handler.unwrap_or_default(),
            idle_rss as f64 / 1048576.0,
            server.rss() as f64 / 1048576.0,
        );
    }
}
