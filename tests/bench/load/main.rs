//! The load benchmark: ws-host with the WebAssembly handlers against three
//! baselines started here, measured in the same run and printed as ratios
//! (a shared machine makes absolute figures mean little):
//! - `native`: the same server with the same contracts as a native Rust
//!   handler: what the sandbox costs;
//! - `node`: Node.js with npm `ws` and `@ezez/utils`: what users run today;
//! - `bare`: a bare tokio-tungstenite echo: what protocol and server cost;
//! - `floor` (echo phase only): the least a WebSocket echo on tokio can
//!   do (`floor.rs`): what the machine allows.
//!
//! Phases (`BENCH_PHASES`, all by default: "echo,fanout,idle,languages,cluster"):
//! echo closed loop over connections x payloads (rates, each server's CPU
//! per message and busy share, the handler's time per event), then at a fixed rate of 80%
//! of the native server's closed-loop rate (requests sent on a schedule, see
//! `pacer`), then every server's CPU per message at a quarter, half and three
//! quarters of Node.js's closed-loop rate; fan-out to room members; idle
//! authenticated connections and the server's RSS per connection; the chat
//! example built in each language (round trips and memory); fan-out with
//! the room's members spread over 1, 2 and 3 cluster nodes sharing a
//! `redis-server` (which runs unpinned); and fairness (`flood`, not in
//! the default list): ten clients' round trips alone and beside one
//! connection that keeps hundreds of requests in flight.
//!
//! Run through `bash tests/bench/run.sh`, which pins the servers to one core
//! and this generator to the other. The knobs are in [`HELP`]
//! (`bench-load --help`).

mod client;
mod echo;
mod fairness;
mod fanout;
mod floor;
mod idle;
mod languages;
mod matrix;
mod pacer;
mod rate;
mod servers;
mod stats;
mod tables;

use std::time::Duration;

use servers::{Kind, Server};

/// The allocator `ws-host` runs with, so the native server compares like with like.
#[global_allocator]
static ALLOCATOR: ws_host::alloc::Allocator = ws_host::alloc::Allocator;

/// What `--help` prints: the knobs, all read from the environment.
const HELP: &str = "\
bench-load: ws-host's load benchmark, with its baselines in the same run (a native-handler ws-host,
Node.js ws + @ezez/utils, a bare tokio-tungstenite echo; in the echo phase also the floor, the least
a WebSocket echo can do). Run it through `bash tests/bench/run.sh`, which builds everything, pins
the servers to cpu 0 and this generator to cpu 1.

Knobs (environment, defaults in brackets):
  BENCH_PHASES       phases to run, of echo, fanout, flood, idle, languages, cluster
                     [echo,fanout,idle,languages,cluster]
  BENCH_SECONDS      seconds per run [2]
  BENCH_REPEATS      runs per echo row, each server's median printed [3]
  BENCH_CONNECTIONS  echo connections [1,100,1000]
  BENCH_PAYLOADS     echo payload bytes [20,1024,16384]
  BENCH_MEMBERS      fan-out room members [1000]
  BENCH_IDLE         idle connections held [10000]
  BENCH_LOAD         the fixed rate, as a fraction of the native server's closed-loop rate; 0 skips it [0.8]
  BENCH_RATE_SECONDS seconds per fixed-rate run, fractions allowed [2]
  BENCH_RATE_REPEATS fixed-rate runs per subject, taken in turns; 6 or more give
                     the run-by-run ratios a 95% interval [15]
  BENCH_MODERATE     the moderate loads, in percent of Node.js's closed-loop rate; 0 skips them [25,50,75]
  WS_HOST_BIN        the ws-host binary to start (required; run.sh sets it)
  SERVER_CPU         the cpu to pin the servers to with taskset [none]
  GUEST_ECHO         the echo component the wasm server serves [the built examples/guests/echo]";

/// ws-host with the WebAssembly handlers, its three baselines and the
/// floor: the servers of the echo phase.
const ECHO_SERVERS: [Kind; 5] = [Kind::Wasm, Kind::Native, Kind::Node, Kind::Bare, Kind::Floor];
/// The idle phase leaves out the floor, which holds a connection but is no
/// server to hold ten thousand of.
const IDLE_SERVERS: [Kind; 4] = [Kind::Wasm, Kind::Native, Kind::Node, Kind::Bare];
/// The fan-out and flood phases leave out the bare echo, which has no rooms
/// and answers every message at once.
const FANOUT_SERVERS: [Kind; 3] = [Kind::Wasm, Kind::Native, Kind::Node];

#[tokio::main]
async fn main() {
    // As ws-host does (and so each server of this binary, which starts
    // without the generator's setting: see `Server::spawn`).
    if let ws_host::memcpy::MemcpyTuning::RestartFailed(error) = ws_host::memcpy::restart_with_fast_memcpy() {
        eprintln!("bench-load: cannot restart with glibc's rep movsb copies turned off: {error}");
    }
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..).unwrap_or_default() {
        [flag, role] if flag == "--serve" && role == "native" => return servers::serve_native(None).await,
        [flag, role, ping, ms] if flag == "--serve" && role == "native" && ping == "--ping-interval-ms" => {
            return servers::serve_native(Some(ms.parse().expect("--ping-interval-ms: milliseconds"))).await;
        }
        [flag, role] if flag == "--serve" && role == "bare" => return servers::serve_bare().await,
        [flag, role] if flag == "--serve" && role == "floor" => return floor::serve().await,
        [] => {}
        [flag] if flag == "--help" || flag == "-h" => return println!("{HELP}"),
        _ => {
            eprintln!("{HELP}");
            std::process::exit(2);
        }
    }
    let phase = Duration::from_secs_f64(knob("BENCH_SECONDS", "2")[0] as f64);
    let rate_phase = std::env::var("BENCH_RATE_SECONDS").map_or(Ok(2.0), |v| v.parse::<f64>());
    let rate_phase = match rate_phase {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => Duration::from_secs_f64(seconds),
        _ => panic!("BENCH_RATE_SECONDS: seconds per fixed-rate run, such as 2 or 0.5"),
    };
    let rate_repeats = knob("BENCH_RATE_REPEATS", "15")[0].max(1);
    let connections = knob("BENCH_CONNECTIONS", "1,100,1000");
    let payloads = knob("BENCH_PAYLOADS", "20,1024,16384");
    let repeats = knob("BENCH_REPEATS", "3")[0].max(1);
    let members = knob("BENCH_MEMBERS", "1000")[0];
    let idle_count = knob("BENCH_IDLE", "10000")[0];
    let load = std::env::var("BENCH_LOAD").map_or(Ok(0.8), |v| v.parse::<f64>());
    let load = match load {
        Ok(load) if load.is_finite() && load >= 0.0 => load,
        _ => panic!(
            "BENCH_LOAD: a fraction of the native server's closed-loop rate such as 0.8, or 0 to skip the fixed rate"
        ),
    };
    let moderate: Vec<usize> = knob("BENCH_MODERATE", "25,50,75").into_iter().filter(|&p| p > 0).collect();
    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "echo,fanout,idle,languages,cluster".into());
    let phases: Vec<&str> = phases.split(',').map(str::trim).collect();
    let cpu = std::env::var("SERVER_CPU").unwrap_or_else(|_| "-".into());
    println!("servers on cpu {cpu}, this generator elsewhere; {} s per row", phase.as_secs_f64());

    if phases.iter().any(|p| ["echo", "fanout", "flood"].contains(p)) {
        let mut servers = Vec::new();
        for kind in ECHO_SERVERS {
            servers.push(Server::start(kind).await);
        }
        if phases.contains(&"echo") {
            let capacity = matrix::run(&servers, &connections, &payloads, phase, repeats).await;
            if load > 0.0 {
                rate::fixed_rate(&servers, &capacity, load, rate_phase, rate_repeats).await;
            }
            if !moderate.is_empty() {
                rate::moderate_loads(&servers, &capacity, &moderate, phase, repeats).await;
            }
        }
        if phases.contains(&"fanout") {
            fanout::report(&servers, members).await;
        }
        if phases.contains(&"flood") {
            fairness::run(&servers, phase, repeats).await;
        }
    }
    if phases.contains(&"idle") {
        idle::report(idle_count).await;
    }
    if phases.contains(&"languages") {
        languages::run(phase).await;
    }
    if phases.contains(&"cluster") {
        fanout::across_cluster(members).await;
    }
}

fn knob(name: &str, default: &str) -> Vec<usize> {
    let value = std::env::var(name).unwrap_or_else(|_| default.into());
    value
        .split(',')
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name}={value}: expected numbers separated by commas")))
        .collect()
}
