//! The echo closed loop over connections x payloads: each row run in turns
//! by every server, then four tables of the same runs (msgs/s with the
//! ratios and how the rows' intervals stand against the msgs/s targets; CPU
//! per message; how busy each side was; the handler's time per event).

use std::time::Duration;

use crate::echo;
use crate::servers::{HandlerTotals, Kind, Server};
use crate::stats::{Paired, paired_ratios};
use crate::tables::{figure, in_turns, print_header, table_header};

/// Echo closed loop over the matrix, each row run `repeats` times with the
/// servers taking turns and each server's median run printed (one run
/// swings with the shared machine's load and with how the scheduler happens
/// to batch); returns the native and wasm servers' msgs/s at
/// 100 connections x 20 B (or the first row), the capacities the fixed-rate
/// phase loads to 80%. A second table gives each server's CPU time per
/// message in the same runs, what each message costs its server (and 1 /
/// that is its capacity on one core), and a third how busy the server and
/// this generator were: a row where a server was not busy all the time
/// does not say what it can serve.
pub async fn run(
    servers: &[Server],
    connections: &[usize],
    payloads: &[usize],
    phase: Duration,
    repeats: usize,
) -> Capacity {
    println!(
        "\n## echo, closed loop: msgs/s, p50 / p99 latency (us); each server's median of {repeats} runs taken in turns\n"
    );
    table_header(MATRIX_KEYS, servers, " msg/s | p50 | p99", " wasm/native | wasm/node | wasm/bare |");
    let mut capacity = None;
    // Each row's median runs, for the tables after this one.
    let mut rows = Vec::new();
    let mut tallies = [(Kind::Native, Tally::at_least(0.9)), (Kind::Node, Tally::at_least(3.0))];
    for &conns in connections {
        for &payload in payloads {
            let all: Vec<&Server> = servers.iter().collect();
            let handled_before = handler_totals(servers).await;
            let trials =
                in_turns(&all, repeats, async |server| echo::closed_loop(server, conns, payload, phase).await).await;
            let handled = handler_totals(servers).await;
            let handler_us = [0, 1].map(|i| handled[i]?.per_call_since(handled_before[i]?));
            // Before the medians take the runs.
            let swings =
                [Kind::Native, Kind::Node, Kind::Bare].map(|base| (base, paired_rates(servers, &trials, base)));
            let mut runs = Vec::new();
            let mut row = format!("| {conns} | {payload} |");
            for (server, trials) in servers.iter().zip(trials) {
                let figures = echo::Figures::median_by(trials, |f| f.rate);
                row += &format!(" {:.0} | {} | {} |", figures.rate, figures.p50(), figures.p99());
                runs.push((server.kind, figures));
            }
            let rate = |kind| figure(&runs, kind, |f| f.rate);
            for (base, swing) in &swings {
                // The figure the interval bounds: the ratio of the median
                // runs can fall outside it.
                row += &match swing {
                    Some(paired) => format!(" {} |", paired.describe()),
                    None => format!(" {:.2}x |", rate(Kind::Wasm) / rate(*base)),
                };
                if let (Some((_, tally)), Some(interval)) =
                    (tallies.iter_mut().find(|(kind, _)| kind == base), swing.as_ref().and_then(|p| p.interval))
                {
                    tally.count(interval);
                }
            }
            println!("{row}");
            if capacity.is_none() || (conns == 100 && payload == 20) {
                let busy = |kind| figure(&runs, kind, echo::Figures::server_busy);
                capacity = Some(Capacity {
                    native: rate(Kind::Native),
                    wasm: rate(Kind::Wasm),
                    node: rate(Kind::Node),
                    least_busy: busy(Kind::Native).min(busy(Kind::Wasm)),
                    runs: repeats,
                });
            }
            rows.push((conns, payload, runs, handler_us));
        }
    }
    if repeats > 1 {
        println!(
            "\nEach ratio is the median of the run-by-run ratios (the wasm server's k-th run against the \
             baseline's k-th, taken back to back), not the ratio of the median runs shown. In brackets, the lowest \
             and highest of those ratios: how far the machine's noise moved the ratio within the row; with six runs \
             or more, in square brackets before them, the 95% interval of their median (`stats`)."
        );
    }
    println!("\ntargets: wasm >= 0.90x native msg/s, >= 3x node msg/s");
    for (base, tally) in &tallies {
        if let Some(judged) = tally.describe() {
            println!("wasm/{} on each row's 95% interval: {judged}", base.label());
        }
    }

    println!(
        "\n## echo, closed loop: server CPU time per message (us; in brackets the kernel's part), the same runs\n"
    );
    table_header(
        MATRIX_KEYS,
        servers,
        "",
        " wasm/native capacity | wasm/node capacity | wasm/node ceiling | floor/node capacity |",
    );
    for (conns, payload, runs, _) in &rows {
        let mut row = format!("| {conns} | {payload} |");
        for (_, figures) in runs {
            row += &format!(" {:.1} ({:.1}) |", figures.cpu_per_message(), figures.kernel_per_message());
        }
        let cpu = |kind| figure(runs, kind, echo::Figures::cpu_per_message);
        let (native, node, wasm, floor) = (cpu(Kind::Native), cpu(Kind::Node), cpu(Kind::Wasm), cpu(Kind::Floor));
        let wasm_kernel = figure(runs, Kind::Wasm, echo::Figures::kernel_per_message);
        // Capacity is the inverse of the cost: native us / wasm us.
        row += &format!(
            " {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            native / wasm,
            node / wasm,
            node / wasm_kernel,
            node / floor
        );
        println!("{row}");
    }
    println!(
        "\nCPU from /proc/<pid>/stat (10 ms ticks) over each row's run; a server that waits on its clients \
         batches less, so a lightly loaded row costs more per message than a saturated one. The ceiling is \
         node's CPU per message over wasm's kernel time alone: the capacity ratio ws-host would reach if its \
         own code cost nothing (one read and one write per echo, and on loopback the kernel's delivery to the \
         peer, are paid whatever the server). The floor's capacity is that ratio measured: the floor echo \
         unmasks each frame and writes it back, nothing more (bench/load/floor.rs)"
    );

    println!("\n## echo, closed loop: the share of its core each side was busy, server / generator, the same runs\n");
    table_header(MATRIX_KEYS, servers, "", "");
    for (conns, payload, runs, _) in &rows {
        let mut row = format!("| {conns} | {payload} |");
        for (_, figures) in runs {
            row += &format!(" {:.0}% / {:.0}% |", figures.server_busy() * 100.0, figures.generator_busy() * 100.0);
        }
        println!("{row}");
    }
    println!(
        "\nA row compares servers where they were the busy side; a server well below 100% waited on its clients. \
         At 1000 connections a server may also fall, for a run, into taking events one at a time, which costs it \
         more per message busy or not (tests/bench/HISTORY.md, \"Why the 1000 x 20 B row swings\")"
    );

    println!("\n## echo, closed loop: time in the handler per event (us), the same runs\n");
    print_header(&format!("| {MATRIX_KEYS} | wasm | native | the sandbox adds |"));
    for (conns, payload, _, [wasm, native]) in &rows {
        let us = |time: &Option<f64>| time.map_or("-".to_owned(), |us| format!("{us:.2}"));
        let added = wasm.zip(*native).map(|(wasm, native)| wasm - native);
        println!("| {conns} | {payload} | {} | {} | {} |", us(wasm), us(native), us(&added));
    }
    println!(
        "\nws_host_handler_seconds of each server's /metrics over each row's runs: the time of a call into the \
         handler, host -> guest -> host. What the sandbox adds is lowering the arguments into the guest's memory, \
         the call, and lifting the results; the copies of the payload grow with it (tests/bench/HISTORY.md, \"Where the \
         sandbox's cost goes\")"
    );
    capacity.unwrap_or(Capacity { native: 1000.0, wasm: 1000.0, node: 1000.0, least_busy: 1.0, runs: 0 })
}

/// The wasm/`base` msgs/s ratios of runs taken back to back, the k-th run of
/// each; `None` with one run or without both servers.
fn paired_rates(servers: &[Server], trials: &[Vec<echo::Figures>], base: Kind) -> Option<Paired> {
    let runs = |kind| servers.iter().zip(trials).find(|(s, _)| s.kind == kind).map(|(_, t)| t);
    let (Some(wasm), Some(base)) = (runs(Kind::Wasm), runs(base)) else { return None };
    let rates = |runs: &[echo::Figures]| runs.iter().map(|f| f.rate).collect::<Vec<_>>();
    paired_ratios(&rates(wasm), &rates(base))
}

/// How the rows' 95% intervals stand against a msgs/s target: met where all
/// of a row's interval is at or above it, not met where all of it is below.
struct Tally {
    target: f64,
    met: usize,
    undecided: usize,
    not_met: usize,
}

impl Tally {
    fn at_least(target: f64) -> Tally {
        Tally { target, met: 0, undecided: 0, not_met: 0 }
    }

    fn count(&mut self, (low, high): (f64, f64)) {
        if low >= self.target {
            self.met += 1;
        } else if high < self.target {
            self.not_met += 1;
        } else {
            self.undecided += 1;
        }
    }

    /// `None` when no row had an interval (fewer than six runs).
    fn describe(&self) -> Option<String> {
        let rows = |n: usize| if n == 1 { "1 row".to_owned() } else { format!("{n} rows") };
        (self.met + self.undecided + self.not_met > 0).then(|| {
            format!(
                ">= {}x met in {}, undecided in {}, not met in {}",
                self.target,
                rows(self.met),
                rows(self.undecided),
                rows(self.not_met)
            )
        })
    }
}

/// Closed-loop msgs/s of the servers the fixed-rate phases load.
pub struct Capacity {
    pub native: f64,
    pub wasm: f64,
    pub node: f64,
    /// The lower of the share of its core native and wasm were busy in
    /// those runs: well under 1, a server waited on its clients, and its
    /// msgs/s are less than it can serve.
    pub least_busy: f64,
    /// How many runs of each server the rates are the medians of.
    pub runs: usize,
}

/// The key columns of the echo matrix's tables.
const MATRIX_KEYS: &str = "conns | payload";

/// The handler totals of the wasm and the native server, in that order.
async fn handler_totals(servers: &[Server]) -> [Option<HandlerTotals>; 2] {
    let totals = async |kind| match servers.iter().find(|s| s.kind == kind) {
        Some(server) => server.handler_totals().await,
        None => None,
    };
    [totals(Kind::Wasm).await, totals(Kind::Native).await]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_meets_a_rate_target_when_all_of_its_interval_does() {
        let mut tally = Tally::at_least(0.9);
        assert_eq!(tally.describe(), None, "no interval, no verdict");
        for interval in [(0.9, 1.1), (0.95, 0.99), (0.85, 0.95), (0.8, 0.89)] {
            tally.count(interval);
        }
        assert_eq!(tally.describe().unwrap(), ">= 0.9x met in 2 rows, undecided in 1 row, not met in 1 row");
    }
}
