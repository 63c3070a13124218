//! Echo at fixed rates: the p99 at 80% of native's capacity (the latency
//! target, judged run by run against a control), and what each server's
//! CPU per message is at moderate loads.

use std::time::Duration;

use crate::echo;
use crate::matrix::Capacity;
use crate::servers::{Kind, Server};
use crate::stats::{Paired, paired_ratios};
use crate::tables::{figure, in_turns, table_header};

/// Latency under a fixed load: `load` (0.8) of the native server's
/// closed-loop rate, for native and wasm alike (the same offered load), then
/// wasm at `load` of its own (the same utilisation), then native once more
/// as a control: its ratio to native's first run is what the machine's
/// noise alone does to this figure. The four take turns `repeats` times and
/// each keeps its median p99 run (node, far past its capacity at this rate,
/// runs once); each run's p99 is also taken over native's of the same turn,
/// and the target is judged on the 95% interval of those ratios' median
/// (`stats`). The rate is a share of the closed-loop rate, not of the time
/// busy: a server's CPU per message falls as the rate rises (requests that
/// come one at a time each wake it, batches share the wake-up), so the busy
/// share moves little over a wide range of rates (native 66% at 29% of the
/// closed-loop rate, 92% at 45%), and short runs aimed at one share missed
/// it (tests/bench/HISTORY.md, "The p99 target against its own noise").
pub async fn fixed_rate(servers: &[Server], capacity: &Capacity, load: f64, phase: Duration, repeats: usize) {
    let server = |kind| servers.iter().find(|s| s.kind == kind).unwrap();
    let (rate, own_rate) = (capacity.native * load, capacity.wasm * load);
    let percent = load * 100.0;
    println!(
        "\n## echo at a fixed rate of {rate:.0} msgs/s ({percent:.0}% of native's closed-loop rate), 100 conns x 20 B, \
         median p99 of {repeats} runs of {} s\n",
        phase.as_secs_f64()
    );
    println!(
        "| server | msg/s | p50 us | p99 us | p99 / native p99 | run by run / native's: median [95% interval] (lowest - highest) | p99 of each run, lowest - highest | generator's send lateness p99 us | server busy |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let own = format!("wasm at {percent:.0}% of its own rate");
    let subjects = [
        ("native", server(Kind::Native), rate),
        ("wasm", server(Kind::Wasm), rate),
        (own.as_str(), server(Kind::Wasm), own_rate),
        (CONTROL, server(Kind::Native), rate),
    ];
    let run = async |&(_, server, rate): &(&str, &Server, f64)| echo::fixed_rate(server, 100, 20, rate, phase).await;
    let mut trials = in_turns(&subjects, repeats, run).await;
    let node = [("node", server(Kind::Node), rate)];
    trials.extend(in_turns(&node, 1, run).await);
    // p99s as divisors: at least 1 us.
    let p99s = |runs: &[echo::Figures]| runs.iter().map(|f| f.p99().max(1) as f64).collect::<Vec<_>>();
    let native_runs = p99s(&trials[0]);
    let mut native_p99 = None;
    // How late the generator was in the two runs the target compares.
    let mut compared_lateness = 0;
    let describe = |paired: &Option<Paired>| paired.as_ref().map_or("-".into(), Paired::describe);
    let (mut control, mut wasm_paired) = ((1.0, None), None);
    for ((label, ..), trials) in subjects.iter().chain(&node).zip(trials) {
        let paired = paired_ratios(&p99s(&trials), &native_runs).filter(|_| *label != "native");
        let lowest = trials.iter().map(echo::Figures::p99).min().unwrap_or_default();
        let highest = trials.iter().map(echo::Figures::p99).max().unwrap_or_default();
        let figures = echo::Figures::median_by(trials, |f| f.p99() as f64);
        let p99 = figures.p99();
        let base = *native_p99.get_or_insert(p99);
        if ["native", "wasm"].contains(label) {
            compared_lateness = compared_lateness.max(figures.send_lateness_p99());
        }
        let ratio = p99 as f64 / base as f64;
        println!(
            "| {label} | {:.0} | {} | {} | {ratio:.2}x | {} | {lowest} - {highest} | {} | {:.0}% |",
            figures.rate,
            figures.p50(),
            p99,
            describe(&paired),
            figures.send_lateness_p99(),
            figures.server_busy() * 100.0,
        );
        match *label {
            CONTROL => control = (ratio, paired),
            "wasm" => wasm_paired = paired,
            _ => {}
        }
    }
    println!(
        "\ntarget: wasm p99 <= {P99_TARGET}x native p99 at the same offered load (latency counted from the scheduled send time)"
    );
    println!(
        "run by run (wasm's p99 over native's of the same turn): {}",
        verdict(wasm_paired.and_then(|p| p.interval))
    );
    println!(
        "control: native against itself reads {:.2}x, run by run {}: what this run's noise alone does to the ratios",
        control.0,
        describe(&control.1)
    );
    if let Some((low, high)) = control.1.and_then(|p| p.interval).filter(|&(low, high)| low > 1.0 || high < 1.0) {
        println!(
            "note: the control's 95% interval ({low:.2}-{high:.2}) leaves out 1: the turns themselves favour one \
             place in the order, and the run-by-run verdict leans the same way"
        );
    }
    if !within_target(control.0) {
        println!(
            "note: the control's median-run ratio is outside 1/{P99_TARGET}x - {P99_TARGET}x, so the median-run \
             column cannot say whether the target holds; the run-by-run interval is the figure to read"
        );
    }
    let r = capacity.native / capacity.wasm;
    let expected = match queue_model_p99_ratio(r, load) {
        ratio if ratio.is_finite() => format!("at {ratio:.2}x native's"),
        _ => "to grow without bound (more than it can serve)".to_owned(),
    };
    println!(
        "queue model (M/M/1, tests/bench/HISTORY.md \"What the p99 target asks of the call\"): wasm costs r = {r:.3}x native \
         per message (closed loop, median runs of {}), so the same offered load keeps it {:.0}% busy and its p99 is \
         expected {expected} ({:.2}x at the same utilisation); {P99_TARGET}x needs r <= {:.3}",
        capacity.runs,
        load * r * 100.0,
        r,
        largest_cost_ratio(P99_TARGET, load)
    );
    if capacity.runs < MEASURED_CAPACITY_RUNS {
        println!(
            "note: r and each server's capacity come from {} closed-loop runs, which put r anywhere from 1.02 to 1.10 \
             for the same build (tests/bench/HISTORY.md, \"The fast hours' p99 read through the queue model\"): \
             BENCH_REPEATS={MEASURED_CAPACITY_RUNS} measures them, and so the utilisation of \"wasm at {percent:.0}% of its own rate\"",
            capacity.runs
        );
    }
    if capacity.least_busy < SATURATED {
        println!(
            "note: in the closed-loop runs these rates come from, a ws-host server was only {:.0}% busy: it waited on \
             its clients, so its msgs/s understate what it serves, and this phase offered a lighter load than {percent:.0}% \
             of its capacity",
            capacity.least_busy * 100.0
        );
    }
    if compared_lateness * 2 > native_p99.unwrap_or_default() {
        println!(
            "note: the generator itself sent {compared_lateness} us late at p99 in one of the two runs compared, over \
             half of native's p99: this run's ratio is the generator's as much as the servers' (tests/bench/HISTORY.md, \
             \"Echo at a fixed rate\")"
        );
    }
}

/// The share of its core under which a server in the closed loop waited on
/// its clients rather than served at its own pace (at 100 x 20 B they read
/// 98%-100% busy, and 50% in the run whose row stalled, 2026-12-07).
const SATURATED: f64 = 0.9;

/// Closed-loop runs per server that measure its capacity well enough for
/// the fixed-rate phase: with three, sets of one build read r at 1.02-1.10.
const MEASURED_CAPACITY_RUNS: usize = 25;

/// What a message costs each server at the loads servers mostly run at:
/// fixed rates of `percents` of what Node.js serves in a closed loop (100
/// connections x 20 B; by default a quarter, half and three quarters, so
/// that every server keeps up).
/// Requests that come one at a time cost more than a saturated server's
/// batches (each wakes the server, and ws-host's handler thread too); the
/// closed-loop tables say what one core can serve, this one what a given
/// traffic costs. Each server's median run by CPU per message, of `repeats`
/// taken in turns.
pub async fn moderate_loads(
    servers: &[Server],
    capacity: &Capacity,
    percents: &[usize],
    phase: Duration,
    repeats: usize,
) {
    println!(
        "\n## echo at moderate loads: server CPU time per message (us; in brackets the kernel's part) and p99 (us), \
         100 conns x 20 B at fixed rates, each server's median of {repeats} runs taken in turns\n"
    );
    table_header("rate msgs/s (share of node's closed loop)", servers, "", " wasm/node CPU | wasm/native CPU |");
    let all: Vec<&Server> = servers.iter().collect();
    for &percent in percents {
        let rate = capacity.node * percent as f64 / 100.0;
        let trials = in_turns(&all, repeats, async |server| echo::fixed_rate(server, 100, 20, rate, phase).await).await;
        let mut runs = Vec::new();
        let mut row = format!("| {rate:.0} ({percent}%) |");
        for (server, trials) in servers.iter().zip(trials) {
            let figures = echo::Figures::median_by(trials, echo::Figures::cpu_per_message);
            row += &format!(
                " {:.1} ({:.1}), p99 {} |",
                figures.cpu_per_message(),
                figures.kernel_per_message(),
                figures.p99()
            );
            runs.push((server.kind, figures));
        }
        let cpu = |kind| figure(&runs, kind, echo::Figures::cpu_per_message);
        row += &format!(" {:.2}x | {:.2}x |", cpu(Kind::Wasm) / cpu(Kind::Node), cpu(Kind::Wasm) / cpu(Kind::Native));
        println!("{row}");
    }
    println!(
        "\nA ratio under 1 is ws-host spending less CPU on the same traffic. CPU from /proc/<pid>/stat (10 ms \
         ticks) over each run. Each p99 is that of the server's median run by CPU, one run's tail, which the \
         machine's stalls set as much as the server: the p99 target is read at a fixed rate over many turns"
    );
}

/// What a wasm-over-native interval says of the p99 target.
fn verdict(interval: Option<(f64, f64)>) -> &'static str {
    match interval {
        None => "undecided: too few runs for a 95% interval (BENCH_RATE_REPEATS of 6 or more)",
        Some((_, high)) if high <= P99_TARGET => "met: the 95% interval of the median ratio is within it",
        Some((low, _)) if low > P99_TARGET => "not met: the 95% interval of the median ratio is above it",
        Some(_) => "undecided: the 95% interval of the median ratio straddles it (more runs narrow it)",
    }
}

/// The fixed-rate table's control row: native measured again in each turn.
const CONTROL: &str = "native again (control)";

/// The p99 target: wasm's p99 at most this many times native's.
const P99_TARGET: f64 = 1.2;

/// Whether a p99 ratio is within the target's margin either way: what the
/// control, the same server twice, must read for a run to tell.
fn within_target(ratio: f64) -> bool {
    (1.0 / P99_TARGET..=P99_TARGET).contains(&ratio)
}

/// The p99 ratio an M/M/1 queue predicts for a server whose messages cost
/// `r` times the baseline's, both offered `load` of the baseline's capacity:
/// the p99 of the time in the system is ln(100) S / (1 - busy), so the ratio
/// is r (1 - load) / (1 - r load), and without bound once r load reaches 1.
fn queue_model_p99_ratio(r: f64, load: f64) -> f64 {
    if r * load >= 1.0 { f64::INFINITY } else { r * (1.0 - load) / (1.0 - r * load) }
}

/// The largest `r` for which [`queue_model_p99_ratio`] stays within `target`.
fn largest_cost_ratio(target: f64, load: f64) -> f64 {
    target / (1.0 - load + target * load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_model_gives_what_benchmarks_md_quotes() {
        assert_eq!(queue_model_p99_ratio(1.0, 0.8), 1.0);
        assert!((queue_model_p99_ratio(1.057, 0.8) - 1.37).abs() < 0.005);
        // The largest r the target allows at 80% load: 1.2 / (0.2 + 1.2 x 0.8).
        let largest = largest_cost_ratio(P99_TARGET, 0.8);
        assert!((largest - 1.034).abs() < 0.001);
        assert!((queue_model_p99_ratio(largest, 0.8) - P99_TARGET).abs() < 1e-9);
        assert_eq!(queue_model_p99_ratio(1.25, 0.8), f64::INFINITY);
    }

    #[test]
    fn the_target_margin_holds_either_way() {
        assert!(within_target(1.0) && within_target(1.2) && within_target(1.0 / 1.2));
        assert!(!within_target(1.75) && !within_target(0.8));
    }

    #[test]
    fn the_verdict_reads_the_interval_against_the_target() {
        assert!(verdict(Some((0.9, 1.15))).starts_with("met"));
        assert!(verdict(Some((1.25, 1.6))).starts_with("not met"));
        assert!(verdict(Some((1.1, 1.3))).starts_with("undecided"));
        assert!(verdict(None).starts_with("undecided"));
    }
}
