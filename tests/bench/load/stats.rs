//! How runs are compared on a noisy machine: each run against the
//! baseline's run of the same turn, and an interval that says how far the
//! ratios' median can be trusted. The interval is distribution-free: this
//! virtual machine's stalls make single runs' tails anything but normal.
//!
//! Tried and not kept: pooling each subject's runs into one histogram and
//! bootstrapping over turns. One stalled run then decides the pooled p99:
//! the control read 2.24x [0.80-3.24] where the median read 1.06x
//! (tests/bench/HISTORY.md, "Echo at a fixed rate").

/// Each run's figure over `base`'s run of the same turn. `None` unless
/// there is a run of `base` for each run, and more than one.
pub fn paired_ratios(runs: &[f64], base: &[f64]) -> Option<Paired> {
    if runs.len() != base.len() || runs.len() < 2 {
        return None;
    }
    let mut ratios: Vec<f64> = runs.iter().zip(base).map(|(run, b)| run / b).collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    let interval = median_interval_rank(n).map(|k| (ratios[k - 1], ratios[n - k]));
    Some(Paired { median: ratios[n / 2], lowest: ratios[0], highest: ratios[n - 1], interval })
}

/// Run-by-run ratios to a baseline, folded.
#[derive(Debug, PartialEq)]
pub struct Paired {
    /// The upper one of an even count, as `echo::Figures::median_by`.
    pub median: f64,
    pub lowest: f64,
    pub highest: f64,
    /// Where the median of such ratios lies with 95% confidence (the sign
    /// test's interval); `None` below six runs.
    pub interval: Option<(f64, f64)>,
}

impl Paired {
    /// `1.07x [0.95-1.18] (0.31-2.05)`: median, 95% interval, range.
    pub fn describe(&self) -> String {
        let interval = self.interval.map_or(String::new(), |(low, high)| format!(" [{low:.2}-{high:.2}]"));
        format!("{:.2}x{interval} ({:.2}-{:.2})", self.median, self.lowest, self.highest)
    }
}

/// The rank k (from 1) whose order statistics, the k-th lowest and k-th
/// highest of `n` ratios, bound their median with at least 95% confidence:
/// the largest k with P(Binomial(n, 1/2) < k) <= 2.5%. One wild run moves
/// the bounds by one rank at most.
fn median_interval_rank(n: usize) -> Option<usize> {
    // P(B = i) = C(n, i) / 2^n, summed while within 2.5%.
    let mut term = 0.5f64.powi(n as i32);
    let mut below = 0.0;
    let mut k = 0;
    while k < n / 2 {
        below += term;
        if below > 0.025 {
            break;
        }
        term *= (n - k) as f64 / (k + 1) as f64;
        k += 1;
    }
    (k >= 1).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_compared_with_the_baseline_run_of_their_turn() {
        let paired = paired_ratios(&[200.0, 300.0, 100.0, 400.0], &[100.0, 100.0, 100.0, 200.0]).unwrap();
        // 2, 3, 1, 2: the upper median of an even count; four runs are too
        // few for an interval.
        assert_eq!(paired, Paired { median: 2.0, lowest: 1.0, highest: 3.0, interval: None });
        assert_eq!(paired.describe(), "2.00x (1.00-3.00)");
        assert_eq!(paired_ratios(&[100.0], &[100.0]), None, "one turn has no spread");
        assert_eq!(paired_ratios(&[100.0, 200.0], &[100.0]), None, "a run without its baseline run");
    }

    #[test]
    fn the_median_interval_is_the_sign_tests() {
        // Ranks from the binomial tables: n = 6 is the least with a 95%
        // interval (2 / 64 of all sign patterns fall outside its extremes).
        let ranks: Vec<_> = [5, 6, 8, 9, 12, 15, 20, 30, 40].map(median_interval_rank).to_vec();
        assert_eq!(ranks, [None, Some(1), Some(1), Some(2), Some(3), Some(4), Some(6), Some(10), Some(14)]);
        let base = [100.0; 9];
        let runs = [90.0, 150.0, 100.0, 95.0, 300.0, 105.0, 110.0, 98.0, 10.0];
        let paired = paired_ratios(&runs, &base).unwrap();
        // Sorted: 0.1, 0.9, 0.95, 0.98, 1.0, 1.05, 1.1, 1.5, 3.0: the 2nd and 8th.
        assert_eq!(paired.interval, Some((0.9, 1.5)));
        assert_eq!(paired.describe(), "1.00x [0.90-1.50] (0.10-3.00)");
    }
}
