//! Fairness: ten clients' round trips alone and beside one connection that
//! floods the server.

use std::time::Duration;

use crate::FANOUT_SERVERS;
use crate::echo;
use crate::servers::Server;

/// Ten clients in a closed loop, alone and then beside one connection that
/// keeps `WINDOW` echo requests in flight: how long a client waits behind
/// another one's pile of events.
pub async fn run(servers: &[Server], phase: Duration, repeats: usize) {
    const PROBES: usize = 10;
    const WINDOW: usize = 512;
    println!(
        "\n## one client flooding: {PROBES} clients' echo round trips (closed loop, 20 B) alone and beside one \
         connection keeping {WINDOW} echo requests in flight; median p99 of {repeats} runs\n"
    );
    println!(
        "| server | alone p50 us | alone p99 us | beside p50 us | beside p99 us | p99 beside / alone | the flood's msgs/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for kind in FANOUT_SERVERS {
        let server = servers.iter().find(|s| s.kind == kind).unwrap();
        let (mut alone, mut beside, mut floods) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            alone.push(echo::closed_loop(server, PROBES, 20, phase).await);
            let until = std::time::Instant::now() + phase + Duration::from_millis(300);
            let flood = tokio::spawn(echo::flood(server.addr, kind.ezez(), WINDOW, 20, until));
            beside.push(echo::closed_loop(server, PROBES, 20, phase).await);
            floods.push(flood.await.unwrap());
        }
        let alone = echo::Figures::median_by(alone, |f| f.p99() as f64);
        let beside = echo::Figures::median_by(beside, |f| f.p99() as f64);
        floods.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {} | {} | {:.1}x | {:.0} |",
            kind.label(),
            alone.p50(),
            alone.p99(),
            beside.p50(),
            beside.p99(),
            beside.p99() as f64 / alone.p99() as f64,
            floods[floods.len() / 2],
        );
    }
}
