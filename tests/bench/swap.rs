//! Hot-swap benchmark: how long a swap takes for a small and a large (over
//! 1 MB) component, with and without the compile cache, and the latency of
//! events during swaps compared with before them.
//!
//! Run: `cargo run -p ws-host-tests --bin bench-swap` (dev profile: wasmtime,
//! tokio and tungstenite are optimised, ws-host's own code is not; compare
//! the figures with each other, not with another machine's).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use ws_host::{Config, Handler, Runtime};
use ws_host_tests::{Client, TestServer, guests, n};

const CLIENTS: usize = 8;
const PHASE: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    const HELP: &str = "bench-swap: how long a hot swap takes (small and large components, with and without the \
                        compile cache) and the latency of events during swaps. No options: \
                        `cargo run -p ws-host-tests --bin bench-swap`, or the end of `bash tests/bench/run.sh`.";
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--help" | "-h") => return println!("{HELP}"),
        Some(_) => {
            eprintln!("{HELP}");
            std::process::exit(2);
        }
    }
    println!("ws-host hot-swap benchmark ({} cores)\n", std::thread::available_parallelism().map_or(1, |n| n.get()));
    swap_times().await;
    latency_during_swaps().await;
}

async fn swap_times() {
    // Compiling takes both cores and moves with the machine's hour; the rest
    // (checking, linking, starting, handing over) is ws-host's own part, so
    // the two are printed apart: a slow patch shows in the first.
    println!("swap time (compile, check, start, hand over), 5 swaps each, and its median parts:");
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "component", "min ms", "median ms", "max ms", "compile ms", "rest ms"
    );
    let cache = std::env::temp_dir().join(format!("ws-host-bench-cache-{}", std::process::id()));
    for (label, runtime) in
        [("no cache", Runtime::new().unwrap()), ("compile cache", Runtime::with_cache(&cache).unwrap())]
    {
        for (name, a, b) in [
            ("small (counter, 77 KB)", guests::COUNTER_V1, guests::COUNTER_V2),
            ("large (counter-big, 2.1 MB)", guests::COUNTER_BIG, guests::COUNTER_V1),
        ] {
            let config = Config::default();
            let handler = Handler::load_file(&runtime, a.as_ref(), &config).unwrap();
            let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
            let (mut totals, mut compiles, mut rests) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..10 {
                let bytes = if round % 2 == 0 { b.clone() } else { a.clone() };
                let started = Instant::now();
                let version = handler.swap(bytes).await.unwrap();
                let total = started.elapsed();
                // Only swaps *to* the component named count.
                if round % 2 == 1 {
                    totals.push(total);
                    compiles.push(version.compile_time);
                    rests.push(total.saturating_sub(version.compile_time));
                }
            }
            for times in [&mut totals, &mut compiles, &mut rests] {
                times.sort();
            }
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let median = |times: &[Duration]| ms(times[times.len() / 2]);
            println!(
                "{:<44} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>10.2}",
                format!("{name}, {label}"),
                ms(totals[0]),
                median(&totals),
                ms(totals[totals.len() - 1]),
                median(&compiles),
                median(&rests)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    println!();
}

async fn latency_during_swaps() {
    let server = TestServer::start(guests::COUNTER_V1).await;
    let (phase_tx, phase) = watch::channel(0u8);
    let mut workers = Vec::new();
    for i in 0..CLIENTS {
        let mut client: Client = server.client(&format!("c{i}")).await;
        let phase = phase.clone();
        workers.push(tokio::spawn(async move {
            let mut histograms = [Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap()];
            loop {
                let current = *phase.borrow();
                if current > 1 {
                    return histograms;
                }
                let started = Instant::now();
                client.request("bump", vec![n(1.0)]).await;
                histograms[current as usize].record(started.elapsed().as_micros() as u64).unwrap();
            }
        }));
    }
    tokio::time::sleep(PHASE).await;
    phase_tx.send(1).unwrap();
    let until = Instant::now() + PHASE;
    let (small, big) = (std::fs::read(guests::COUNTER_V2).unwrap(), std::fs::read(guests::COUNTER_BIG).unwrap());
    let mut swaps = 0;
    while Instant::now() < until {
        server.handler.swap(if swaps % 3 == 2 { big.clone() } else { small.clone() }).await.unwrap();
        swaps += 1;
    }
    phase_tx.send(2).unwrap();
    let mut totals = [Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap()];
    for worker in workers {
        let histograms = worker.await.unwrap();
        for (total, h) in totals.iter_mut().zip(histograms.iter()) {
            total.add(h).unwrap();
        }
    }
    println!(
        "event latency, {CLIENTS} clients closed-loop, {} s per phase ({swaps} swaps back to back in the second):",
        PHASE.as_secs()
    );
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "phase", "events", "p50 us", "p90 us", "p99 us", "max us", "events/s"
    );
    for (name, h) in [("steady", &totals[0]), ("during swaps", &totals[1])] {
        println!(
            "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.0}",
            name,
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.max(),
            h.len() as f64 / PHASE.as_secs_f64()
        );
    }
    let ratio = |q: f64| totals[1].value_at_quantile(q) as f64 / totals[0].value_at_quantile(q).max(1) as f64;
    println!("{:<18} {:>9} {:>8.2}x {:>8.2}x {:>8.2}x", "during / steady", "", ratio(0.5), ratio(0.9), ratio(0.99));
}
