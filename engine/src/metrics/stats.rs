//! Paired statistics between two runs over the same cases: mean ± SD, the paired two-tailed
//! t-test and the Wilcoxon signed-rank test, matching `scipy.stats.ttest_rel` and
//! `scipy.stats.wilcoxon` with their default arguments (scipy 1.17).
//!
//! scipy's `wilcoxon(x, y)` defaults are `zero_method="wilcox"` (zero differences dropped),
//! `correction=False` (no continuity correction) and `method="auto"`, which picks:
//! - the exact null distribution when n ≤ 50 and there are neither ties nor zeros;
//! - an exhaustive sign-flip permutation test (itself exact) when there are ties or zeros and
//!   n ≤ 13;
//! - otherwise the normal approximation with the tie correction and no continuity correction.
//!
//! We follow the same rules, so p-values agree with scipy's.

use super::MetricsError;
use super::special::{normal_sf, student_t_sf};

/// Above this many pairs scipy's `method="auto"` always uses the normal approximation.
const EXACT_MAX_PAIRS: usize = 50;
/// With ties or zeros, scipy enumerates all 2^n sign flips up to this many pairs.
const PERMUTATION_MAX_PAIRS: usize = 13;
/// scipy's permutation test treats null statistics within 100 ε·|observed| as equal.
const PERMUTATION_RELATIVE_TOLERANCE: f64 = 100.0 * f64::EPSILON;

/// Mean and sample standard deviation (n − 1 in the denominator) of some values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeanSd {
    /// Arithmetic mean (NaN when there are no values).
    pub mean: f64,
    /// Sample standard deviation (NaN with fewer than two values).
    pub sd: f64,
    /// How many values.
    pub count: usize,
}

impl std::fmt::Display for MeanSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let precision = f.precision().unwrap_or(4);
        write!(f, "{:.*} ± {:.*}", precision, self.mean, precision, self.sd)
    }
}

/// Mean ± SD of the values; NaN values (undefined metrics) are left out.
pub fn mean_sd(values: &[f64]) -> MeanSd {
    let defined: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let count = defined.len();
    if count == 0 {
        return MeanSd {
            mean: f64::NAN,
            sd: f64::NAN,
            count,
        };
    }
    let mean = defined.iter().sum::<f64>() / count as f64;
    let sd = if count < 2 {
        f64::NAN
    } else {
        let squares: f64 = defined.iter().map(|v| (v - mean) * (v - mean)).sum();
        (squares / (count - 1) as f64).sqrt()
    };
    MeanSd { mean, sd, count }
}

/// Result of a paired t-test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TTest {
    /// t statistic of the differences `first − second`.
    pub statistic: f64,
    /// Degrees of freedom, n − 1.
    pub degrees_of_freedom: f64,
    /// Two-tailed p-value (NaN when every difference is zero, as in scipy).
    pub p_value: f64,
}

/// How the Wilcoxon p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WilcoxonMethod {
    /// Exact null distribution of the signed-rank statistic (no ties, no zeros, n ≤ 50).
    Exact,
    /// All 2^n sign flips enumerated (ties or zeros, n ≤ 13).
    Permutation,
    /// Normal approximation with tie correction, no continuity correction.
    NormalApproximation,
}

/// Result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Wilcoxon {
    /// min(R+, R−), as scipy reports for the two-sided test.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Which computation gave the p-value.
    pub method: WilcoxonMethod,
}

fn paired_differences(first: &[f64], second: &[f64]) -> Result<Vec<f64>, MetricsError> {
    if first.len() != second.len() {
        return Err(MetricsError::Statistics(format!(
            "paired test needs the same cases in both runs, got {} and {} values",
            first.len(),
            second.len()
        )));
    }
    if first.iter().chain(second).any(|v| !v.is_finite()) {
        return Err(MetricsError::Statistics(
            "paired test values must be finite; drop cases whose metric is undefined in either run".into(),
        ));
    }
    Ok(first.iter().zip(second).map(|(a, b)| a - b).collect())
}

/// Paired two-tailed t-test of `first` against `second` (as `scipy.stats.ttest_rel`).
pub fn paired_t_test(first: &[f64], second: &[f64]) -> Result<TTest, MetricsError> {
    let differences = paired_differences(first, second)?;
    if differences.len() < 2 {
        return Err(MetricsError::Statistics(format!(
            "paired t-test needs at least 2 cases, got {}",
            differences.len()
        )));
    }
    let summary = mean_sd(&differences);
    let n = differences.len() as f64;
    let degrees_of_freedom = n - 1.0;
    // sd = 0 gives ±∞ (p = 0) or, when the mean is 0 too, NaN: what scipy returns.
    let statistic = summary.mean / (summary.sd / n.sqrt());
    // Not `f64::min`, which would turn a NaN p-value into 1.
    let two_tailed = 2.0 * student_t_sf(statistic.abs(), degrees_of_freedom);
    let p_value = if two_tailed > 1.0 { 1.0 } else { two_tailed };
    Ok(TTest {
        statistic,
        degrees_of_freedom,
        p_value,
    })
}

/// Ranks (1-based, ties averaged) of `values`, and the sizes of the tie groups.
fn average_ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut groups = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) share the mean of ranks start+1..=end.
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        groups.push(end - start);
        start = end;
    }
    (ranks, groups)
}

/// Counts of subsets of {1, …, n} by their sum: the exact null distribution of R+ times 2^n.
fn signed_rank_counts(n: usize) -> Vec<f64> {
    let max_sum = n * (n + 1) / 2;
    let mut counts = vec![0.0; max_sum + 1];
    counts[0] = 1.0;
    for rank in 1..=n {
        for sum in (rank..=max_sum).rev() {
            counts[sum] += counts[sum - rank];
        }
    }
    counts
}

/// Wilcoxon signed-rank test of `first` against `second`, two-sided (as `scipy.stats.wilcoxon`
/// with default arguments; see the module documentation for which method is used when).
pub fn wilcoxon_signed_rank(first: &[f64], second: &[f64]) -> Result<Wilcoxon, MetricsError> {
    let differences = paired_differences(first, second)?;
    let nonzero: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0).collect();
    if nonzero.is_empty() {
        return Err(MetricsError::Statistics(
            "Wilcoxon test needs at least one non-zero difference between the runs".into(),
        ));
    }
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let (ranks, groups) = average_ranks(&magnitudes);
    let rank_sum = |sign: f64| -> f64 {
        nonzero
            .iter()
            .zip(&ranks)
            .filter(|(d, _)| d.signum() == sign)
            .map(|(_, r)| r)
            .sum()
    };
    let (r_plus, r_minus) = (rank_sum(1.0), rank_sum(-1.0));
    let statistic = r_plus.min(r_minus);
    let has_ties = groups.iter().any(|g| *g > 1);
    let has_zeros = nonzero.len() < differences.len();
    let n_all = differences.len();

    let (p_value, method) = if n_all <= EXACT_MAX_PAIRS && !has_ties && !has_zeros {
        let n = nonzero.len();
        let counts = signed_rank_counts(n);
        let total = 2f64.powi(n as i32);
        // R+ is a whole number here; scipy rounds down for the upper and up for the lower tail.
        let k = r_plus.round() as usize;
        let upper: f64 = counts[k..].iter().sum::<f64>() / total;
        let lower: f64 = counts[..=k].iter().sum::<f64>() / total;
        ((2.0 * upper.min(lower)).min(1.0), WilcoxonMethod::Exact)
    } else if n_all <= PERMUTATION_MAX_PAIRS {
        // Flipping signs keeps the ranks; zeros contribute to neither sign.
        let signed_ranks: Vec<(f64, f64)> = differences
            .iter()
            .map(|d| {
                let rank = nonzero.iter().position(|v| v == d).map_or(0.0, |i| ranks[i]);
                (*d, rank)
            })
            .collect();
        let tolerance = PERMUTATION_RELATIVE_TOLERANCE * r_plus.abs();
        let (mut at_least, mut at_most) = (0usize, 0usize);
        let flips = 1usize << n_all;
        for mask in 0..flips {
            let null_r_plus: f64 = signed_ranks
                .iter()
                .enumerate()
                .filter(|(i, (d, _))| {
                    let flipped = mask >> i & 1 == 1;
                    (*d > 0.0) != flipped && *d != 0.0
                })
                .map(|(_, (_, r))| r)
                .sum();
            at_least += usize::from(null_r_plus >= r_plus - tolerance);
            at_most += usize::from(null_r_plus <= r_plus + tolerance);
        }
        let p = 2.0 * (at_least.min(at_most) as f64) / flips as f64;
        (p.min(1.0), WilcoxonMethod::Permutation)
    } else {
        let n = nonzero.len() as f64;
        let mean = n * (n + 1.0) / 4.0;
        let tie_correction: f64 = groups.iter().map(|&t| (t * t * t - t) as f64).sum();
        let sd = ((n * (n + 1.0) * (2.0 * n + 1.0) - tie_correction / 2.0) / 24.0).sqrt();
        let z = (r_plus - mean) / sd;
        (
            (2.0 * normal_sf(z.abs())).min(1.0),
            WilcoxonMethod::NormalApproximation,
        )
    };
    Ok(Wilcoxon {
        statistic,
        p_value,
        method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p-values from scipy are compared at this relative tolerance: the exact and permutation
    /// p-values are ratios of whole numbers, the others go through our special functions.
    const P_TOLERANCE: f64 = 1e-9;

    fn assert_close(actual: f64, expected: f64, what: &str) {
        let error = (actual - expected).abs() / expected.abs().max(f64::MIN_POSITIVE);
        assert!(error <= P_TOLERANCE, "{what}: {actual} vs {expected}");
    }

    /// Differences generated the same way in the Python that produced the literals:
    /// `[((i*7919) % 10007)/1000 - 3.0 for i in range(1, n+1)]` (no ties, no zeros).
    fn spread_differences(n: usize) -> Vec<f64> {
        (1..=n)
            .map(|i| ((i * 7919) % 10007) as f64 / 1000.0 - 3.0)
            .collect()
    }

    const FIRST: [f64; 8] = [0.81, 0.77, 0.90, 0.68, 0.85, 0.79, 0.88, 0.73];
    const SECOND: [f64; 8] = [0.78, 0.76, 0.86, 0.70, 0.80, 0.74, 0.89, 0.66];

    #[test]
    fn t_test_matches_scipy_ttest_rel() {
        // scipy.stats.ttest_rel(FIRST, SECOND) → t = 2.4685066700043836, p = 0.04292680941518093
        let test = paired_t_test(&FIRST, &SECOND).expect("valid input");
        assert_close(test.statistic, 2.468_506_670_004_383_6, "t");
        assert_close(test.p_value, 0.042_926_809_415_180_93, "p");
        assert_eq!(test.degrees_of_freedom, 7.0);
        // ttest_rel(spread_differences(30), zeros(30)) → t = 4.382032173179904, p = 1.406029666398917e-4
        let d = spread_differences(30);
        let test = paired_t_test(&d, &[0.0; 30]).expect("valid input");
        assert_close(test.statistic, 4.382_032_173_179_904, "t30");
        assert_close(test.p_value, 1.406_029_666_398_917e-4, "p30");
        // n = 60 → p = 1.631445289402205e-07
        let d = spread_differences(60);
        let test = paired_t_test(&d, &[0.0; 60]).expect("valid input");
        assert_close(test.p_value, 1.631_445_289_402_205e-7, "p60");
        // Constant non-zero difference: t = inf, p = 0; identical runs: NaN (as scipy).
        let shifted = paired_t_test(&[2.0, 3.0, 4.0, 5.0], &[1.0, 2.0, 3.0, 4.0]).expect("valid");
        assert_eq!(shifted.p_value, 0.0);
        let same = paired_t_test(&[1.0, 2.0], &[1.0, 2.0]).expect("valid");
        assert!(same.p_value.is_nan());
        assert!(paired_t_test(&[1.0], &[2.0]).is_err());
        assert!(paired_t_test(&[1.0, 2.0], &[2.0]).is_err());
        assert!(paired_t_test(&[1.0, f64::NAN], &[2.0, 1.0]).is_err());
    }

    #[test]
    fn wilcoxon_exact_matches_scipy() {
        // scipy.stats.wilcoxon([1,-2,3,4,5,-6,7,8]).pvalue = 0.1953125
        let d = [1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 7.0, 8.0];
        let test = wilcoxon_signed_rank(&d, &[0.0; 8]).expect("valid");
        assert_eq!(test.method, WilcoxonMethod::Exact);
        assert_eq!(test.statistic, 8.0);
        assert_close(test.p_value, 0.195_312_5, "exact n=8");
        // wilcoxon(spread_differences(30)) → statistic 66, p = 0.00031275488436222076
        let test = wilcoxon_signed_rank(&spread_differences(30), &[0.0; 30]).expect("valid");
        assert_eq!(test.method, WilcoxonMethod::Exact);
        assert_eq!(test.statistic, 66.0);
        assert_close(test.p_value, 3.127_548_843_622_207_6e-4, "exact n=30");
    }

    #[test]
    fn wilcoxon_with_ties_or_zeros_matches_scipy_permutation() {
        // wilcoxon(FIRST, SECOND) → statistic 4.5, p = 0.0625 (ties: permutation test)
        let test = wilcoxon_signed_rank(&FIRST, &SECOND).expect("valid");
        assert_eq!(test.statistic, 4.5);
        assert_close(test.p_value, 0.0625, "ties n=8");
        // wilcoxon([1.5,2,-0.5,3,0,1,2.5,-1,0.7,1.2]) → statistic 4.5, p = 0.03125 (a zero)
        let d = [1.5, 2.0, -0.5, 3.0, 0.0, 1.0, 2.5, -1.0, 0.7, 1.2];
        let test = wilcoxon_signed_rank(&d, &[0.0; 10]).expect("valid");
        assert_eq!(test.method, WilcoxonMethod::Permutation);
        assert_eq!(test.statistic, 4.5);
        assert_close(test.p_value, 0.031_25, "zero n=10");
    }

    #[test]
    fn wilcoxon_normal_approximation_matches_scipy() {
        // The n=10 list above plus [0.3,-0.2,0.9,1.1,-0.4,0.8]: a zero, n = 16 > 13
        // → statistic 16.5, p = 0.013468600262199907.
        let d = [
            1.5, 2.0, -0.5, 3.0, 0.0, 1.0, 2.5, -1.0, 0.7, 1.2, 0.3, -0.2, 0.9, 1.1, -0.4, 0.8,
        ];
        let test = wilcoxon_signed_rank(&d, &[0.0; 16]).expect("valid");
        assert_eq!(test.method, WilcoxonMethod::NormalApproximation);
        assert_eq!(test.statistic, 16.5);
        assert_close(test.p_value, 0.013_468_600_262_199_907, "zero n=16");
        // [1,-2,3,4,5,-6,7,8,1.5,2.5,3.5,-0.5,2,1,-3]: ties, n = 15 → p = 0.06897581401897229
        let d = [
            1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 7.0, 8.0, 1.5, 2.5, 3.5, -0.5, 2.0, 1.0, -3.0,
        ];
        let test = wilcoxon_signed_rank(&d, &[0.0; 15]).expect("valid");
        assert_close(test.p_value, 0.068_975_814_018_972_29, "ties n=15");
        // wilcoxon(spread_differences(60)) → statistic 275, p = 2.459895155434852e-06 (n > 50)
        let test = wilcoxon_signed_rank(&spread_differences(60), &[0.0; 60]).expect("valid");
        assert_eq!(test.method, WilcoxonMethod::NormalApproximation);
        assert_eq!(test.statistic, 275.0);
        assert_close(test.p_value, 2.459_895_155_434_852e-6, "n=60");
    }

    #[test]
    fn mean_sd_leaves_out_undefined_values() {
        let summary = mean_sd(&[1.0, f64::NAN, 2.0, 3.0, 4.0]);
        assert_eq!(summary.count, 4);
        assert_eq!(summary.mean, 2.5);
        // Sample SD of 1..4 = sqrt(5/3).
        assert!((summary.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!(mean_sd(&[]).mean.is_nan());
        assert!(mean_sd(&[1.0]).sd.is_nan());
        assert_eq!(format!("{:.2}", mean_sd(&[1.0, 3.0])), "2.00 ± 1.41");
    }
}
