//! What the phases share: their subjects run in turns, and tables with a
//! column per server.

use crate::echo;
use crate::servers::{Kind, Server};

/// `what` of the `kind` server's run in a row's runs; NaN when that server
/// did not run.
pub fn figure(runs: &[(Kind, echo::Figures)], kind: Kind, what: fn(&echo::Figures) -> f64) -> f64 {
    runs.iter().find(|(k, _)| *k == kind).map_or(f64::NAN, |(_, figures)| what(figures))
}

/// Runs each of `subjects` (servers, or servers at a rate) `repeats` times,
/// taking turns (so a slow spell of the shared machine hits them alike);
/// each one's runs, in order.
pub async fn in_turns<S>(
    subjects: &[S],
    repeats: usize,
    run: impl AsyncFn(&S) -> echo::Figures,
) -> Vec<Vec<echo::Figures>> {
    let mut trials: Vec<Vec<echo::Figures>> = subjects.iter().map(|_| Vec::new()).collect();
    for _ in 0..repeats {
        for (subject, trials) in subjects.iter().zip(&mut trials) {
            trials.push(run(subject).await);
        }
    }
    trials
}

/// The header of a table with a column per server: the row's `keys`,
/// `per_server`'s columns after each server's name, then the `ratios`
/// columns.
pub fn table_header(keys: &str, servers: &[Server], per_server: &str, ratios: &str) {
    let mut header = format!("| {keys} |");
    for server in servers {
        header += &format!(" {}{per_server} |", server.kind.label());
    }
    header += ratios;
    print_header(&header);
}

/// A table's header line and its separator, every column right-aligned.
pub fn print_header(header: &str) {
    println!("{header}");
    println!("|{}", "---:|".repeat(header.matches('|').count() - 1));
}
