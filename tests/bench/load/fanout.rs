//! Fan-out: `members` connections join one room; one more connection
//! publishes numbered messages to it, at most `window` broadcasts in flight.
//! A broadcast is complete when the last member has it; every member checks
//! the sequence numbers it sees, so a lost or reordered message counts.
//! Given several servers (the nodes of a cluster), the members are spread
//! over them in turn and the publisher talks to the first. Two phases print
//! it: [`report`], each server alone, and [`across_cluster`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use ws_host::codec::{Message, Value};

use crate::FANOUT_SERVERS;
use crate::client::{connect, decode, event};
use crate::servers::{Kind, Server};

pub struct Figures {
    pub deliveries_per_second: f64,
    /// From the publish to the last member's receipt (us).
    pub latency: Histogram<u64>,
    /// Deliveries missing, duplicated or out of order.
    pub lost: u64,
}

struct Progress {
    members: u32,
    received: Vec<AtomicU32>,
    sent_at: Vec<OnceLock<Instant>>,
    latency: std::sync::Mutex<Histogram<u64>>,
    out_of_order: AtomicU64,
    window: Semaphore,
}

pub async fn run(servers: &[&Server], members: usize, broadcasts: u32, window: usize, payload: usize) -> Figures {
    let mut joined = Vec::with_capacity(members);
    for server in servers.iter().cycle().take(members) {
        let mut ws = connect(server.addr, server.kind.fanout_path(), true).await;
        ws.send(event("join", 1, vec!["bench".into()])).await.unwrap();
        ws.next().await.expect("join reply").expect("join reply");
        joined.push(ws);
    }
    let progress = Arc::new(Progress {
        members: members as u32,
        received: (0..=broadcasts).map(|_| AtomicU32::new(0)).collect(),
        sent_at: (0..=broadcasts).map(|_| OnceLock::new()).collect(),
        latency: std::sync::Mutex::new(Histogram::new(3).unwrap()),
        out_of_order: AtomicU64::new(0),
        window: Semaphore::new(window),
    });
    let readers: Vec<_> = joined.into_iter().map(|ws| tokio::spawn(member(ws, broadcasts, progress.clone()))).collect();

    let mut publisher = connect(servers[0].addr, servers[0].kind.fanout_path(), true).await;
    let text = "x".repeat(payload);
    let started = Instant::now();
    for seq in 1..=broadcasts {
        progress.window.acquire().await.unwrap().forget();
        let _ = progress.sent_at[seq as usize].set(Instant::now());
        let args = vec![Value::from("bench"), Value::Number(seq.into()), text.as_str().into()];
        publisher.send(event("publish", seq.into(), args)).await.unwrap();
    }
    // Everything published is complete, or a member stopped reading.
    let complete = tokio::time::timeout(Duration::from_secs(30), progress.window.acquire_many(window as u32)).await;
    let elapsed = started.elapsed();
    let mut delivered = 0u64;
    for reader in readers {
        reader.abort();
    }
    for count in &progress.received[1..] {
        delivered += u64::from(count.load(Ordering::Relaxed));
    }
    if complete.is_err() {
        eprintln!("fan-out: not every broadcast completed within 30 s");
    }
    let expected = u64::from(broadcasts) * members as u64;
    let latency = progress.latency.lock().unwrap().clone();
    Figures {
        deliveries_per_second: delivered as f64 / elapsed.as_secs_f64(),
        latency,
        lost: expected - delivered + progress.out_of_order.load(Ordering::Relaxed),
    }
}

async fn member(mut ws: crate::client::Ws, broadcasts: u32, progress: Arc<Progress>) {
    let mut expected = 1u32;
    while expected <= broadcasts {
        let Some(Ok(frame)) = ws.next().await else { return };
        let Some(Message::Event(event)) = decode(&frame) else { continue };
        let Some(Value::Number(seq)) = event.args.first() else { continue };
        let seq = *seq as u32;
        if seq != expected {
            progress.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        expected = seq + 1;
        let Some(count) = progress.received.get(seq as usize) else { continue };
        if count.fetch_add(1, Ordering::Relaxed) + 1 == progress.members {
            if let Some(sent) = progress.sent_at[seq as usize].get() {
                progress.latency.lock().unwrap().record(sent.elapsed().as_micros() as u64).unwrap();
            }
            progress.window.add_permits(1);
        }
    }
}

/// Broadcasts per fan-out table row, and how many may be in flight.
const BROADCASTS: u32 = 400;
const WINDOW: usize = 16;

impl Figures {
    /// The columns every fan-out table shows: deliveries/s, p50, p99 and lost.
    fn cells(&self) -> String {
        format!(
            "{:.0} | {} | {} | {}",
            self.deliveries_per_second,
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.lost
        )
    }
}

/// The fan-out phase: each server in turn, a room of `members`.
pub async fn report(servers: &[Server], members: usize) {
    println!("\n## fan-out: {BROADCASTS} broadcasts of 20 B to {members} room members, {WINDOW} in flight\n");
    println!("| server | deliveries/s | p50 us | p99 us | lost | vs native | vs node |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for kind in FANOUT_SERVERS {
        let server = servers.iter().find(|s| s.kind == kind).unwrap();
        rows.push((kind, run(&[server], members, BROADCASTS, WINDOW, 20).await));
    }
    let rate = |kind| rows.iter().find(|(k, _)| *k == kind).map_or(f64::NAN, |(_, f)| f.deliveries_per_second);
    for (kind, figures) in &rows {
        println!(
            "| {} | {} | {:.2}x | {:.2}x |",
            kind.label(),
            figures.cells(),
            figures.deliveries_per_second / rate(Kind::Native),
            figures.deliveries_per_second / rate(Kind::Node),
        );
    }
    println!("\ntarget: wasm >= 200000 deliveries/s with zero loss (the latency is publish -> last member)");
}

/// Fan-out across cluster nodes, beside the same server alone: what Redis
/// and the second hop cost.
pub async fn across_cluster(members: usize) {
    println!(
        "\n## fan-out across cluster nodes: {BROADCASTS} broadcasts of 20 B to {members} members, {WINDOW} in flight\n"
    );
    println!("| setup | deliveries/s | p50 us | p99 us | lost | vs one node |");
    println!("|---|---:|---:|---:|---:|---:|");
    let redis = ws_host_tests::redis::RedisServer::start();
    let alone = Server::start(Kind::Wasm).await;
    let baseline = run(&[&alone], members, BROADCASTS, WINDOW, 20).await;
    drop(alone);
    let mut rows = vec![("one node, no cluster".to_owned(), baseline)];
    for count in 1..=3 {
        let mut nodes = Vec::new();
        for _ in 0..count {
            nodes.push(Server::clustered(&redis.url()).await);
        }
        let figures = run(&nodes.iter().collect::<Vec<_>>(), members, BROADCASTS, WINDOW, 20).await;
        rows.push((format!("{count} node(s) with --cluster, members spread, publisher on the first"), figures));
    }
    let base = rows[0].1.deliveries_per_second;
    for (setup, figures) in &rows {
        println!("| {setup} | {} | {:.2}x |", figures.cells(), figures.deliveries_per_second / base);
    }
}
