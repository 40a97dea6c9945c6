//! The statistics of the leaderboard: Wilson's score interval of a pass rate, the normal
//! interval of a mean score, McNemar's exact test between two cells, and the Pareto front of
//! pass rate against cost.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's 95% score interval of `passed` successes in `n` trials; `[0, 1]` when `n` is 0.
pub fn wilson(passed: u64, n: u64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let n = n as f64;
    let p = passed as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [
        (center - half).clamp(0.0, 1.0),
        (center + half).clamp(0.0, 1.0),
    ]
}

/// The mean of `n` values with sum `sum` and sum of squares `sum_sq`, and its 95% interval
/// (mean +- 1.96 standard errors, the sample standard deviation, clamped to 0..1). `None`
/// with no values; with one value the interval is `[0, 1]` (no spread is known).
pub fn mean_ci(n: u64, sum: f64, sum_sq: f64) -> Option<(f64, [f64; 2])> {
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    if n == 1 {
        return Some((mean, [0.0, 1.0]));
    }
    let var = ((sum_sq - nf * mean * mean) / (nf - 1.0)).max(0.0);
    let half = Z95 * (var / nf).sqrt();
    Some((
        mean,
        [(mean - half).clamp(0.0, 1.0), (mean + half).clamp(0.0, 1.0)],
    ))
}

/// McNemar's exact two-sided p-value for `b` and `c` discordant pairs: twice the binomial
/// (n = b + c, 1/2) tail at min(b, c), capped at 1. Computed in log space, so large counts
/// neither overflow nor underflow.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k_max = b.min(c);
    // ln of C(n, k) / 2^n, by the recurrence C(n, k) = C(n, k-1) (n-k+1) / k.
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut max = ln_term;
    let mut sum_scaled = 0.0;
    // Terms increase with k up to n/2 >= k_max, so the last is the largest: sum them scaled
    // by a running maximum.
    for k in 0..=k_max {
        if k > 0 {
            ln_term += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        if ln_term > max {
            sum_scaled *= (max - ln_term).exp();
            max = ln_term;
        }
        sum_scaled += (ln_term - max).exp();
    }
    (2.0 * sum_scaled * max.exp()).min(1.0)
}

/// Which of the cells `(pass_rate, cost)` are on the Pareto front: a cell is, unless another
/// has a pass rate >= and a cost <= with at least one of the two strictly better.
pub fn pareto(cells: &[(f64, rust_decimal::Decimal)]) -> Vec<bool> {
    cells
        .iter()
        .enumerate()
        .map(|(i, &(rate, cost))| {
            !cells
                .iter()
                .enumerate()
                .any(|(j, &(r, c))| j != i && r >= rate && c <= cost && (r > rate || c < cost))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
    /// method 3 (score interval without continuity correction).
    #[test]
    fn wilson_matches_newcombes_table() {
        for (x, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let [l, h] = wilson(x, n);
            assert!(close(l, lo, 5e-5) && close(h, hi, 5e-5), "{x}/{n}: {l} {h}");
        }
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
        let [l, h] = wilson(20, 20);
        assert!(close(h, 1.0, 1e-12) && close(l, 0.8389, 5e-5), "{l}");
    }

    #[test]
    fn mean_interval_is_1_96_standard_errors_clamped() {
        // Values 0.5 x 50 and 1.0 x 50: mean 0.75, sample sd 0.2513, se 0.02513.
        let (sum, sq) = (75.0, 50.0 * 0.25 + 50.0);
        let (mean, [lo, hi]) = mean_ci(100, sum, sq).unwrap();
        assert!(close(mean, 0.75, 1e-12));
        assert!(close(lo, 0.75 - 1.959964 * 0.025126, 1e-5), "{lo}");
        assert!(close(hi, 0.75 + 1.959964 * 0.025126, 1e-5), "{hi}");
        let (_, ci) = mean_ci(4, 4.0, 4.0).unwrap();
        assert_eq!(ci, [1.0, 1.0], "no spread: the interval is the mean");
        let (_, ci) = mean_ci(2, 1.0, 1.0).unwrap();
        assert_eq!(ci[1], 1.0, "clamped");
        assert!(mean_ci(0, 0.0, 0.0).is_none());
    }

    #[test]
    fn mcnemar_exact_matches_the_binomial_tail() {
        // b = 3, c = 11: 2 * (1 + 14 + 91 + 364) / 2^14 = 0.057373...
        assert!(close(mcnemar_exact(3, 11), 940.0 / 16384.0, 1e-12));
        assert!(close(mcnemar_exact(11, 3), 940.0 / 16384.0, 1e-12));
        // b = 0, c = 5: 2 / 32.
        assert!(close(mcnemar_exact(0, 5), 0.0625, 1e-12));
        assert_eq!(mcnemar_exact(5, 5), 1.0, "capped at 1");
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large counts: finite and tiny, no underflow to NaN.
        let p = mcnemar_exact(10_000, 12_000);
        assert!(p > 0.0 && p < 1e-20, "{p}");
        let p = mcnemar_exact(500_000, 500_000);
        assert_eq!(p, 1.0);
    }

    #[test]
    fn pareto_keeps_the_cells_nothing_beats() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let cells = [
            (0.90, d("0.10")), // best rate
            (0.80, d("0.02")), // cheapest
            (0.80, d("0.05")), // beaten by the cheapest (same rate, dearer)
            (0.70, d("0.20")), // beaten by everything
            (0.90, d("0.10")), // a tie with the first: neither beats the other
        ];
        assert_eq!(pareto(&cells), vec![true, true, false, false, true]);
    }
}
