//! Special functions behind the p-values: log-gamma, the regularised incomplete beta function
//! (Student t distribution) and the regularised incomplete gamma function (normal distribution
//! through `erfc`).
//!
//! Algorithms: Lanczos (g = 7, n = 9) for ln Γ; Lentz's continued fractions for the incomplete
//! beta and upper incomplete gamma, with the series for the lower gamma (Numerical Recipes §6.2,
//! §6.4). They agree with scipy.special to about 1e-13 relative over the ranges used here.

/// Relative accuracy at which the continued fractions and series stop.
const EPSILON: f64 = 1e-16;
/// Smallest magnitude allowed in Lentz's algorithm, to avoid dividing by zero.
const TINY: f64 = 1e-300;
/// Iteration cap of the continued fractions; they converge in far fewer steps for our inputs.
const MAX_ITERATIONS: usize = 10_000;

/// Lanczos coefficients for g = 7, n = 9.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// Natural logarithm of the gamma function for `x > 0`.
pub fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Regularised incomplete beta function I_x(a, b) for `a, b > 0`, `0 ≤ x ≤ 1`. NaN outside.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if a.is_nan() || b.is_nan() || a <= 0.0 || b <= 0.0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / clamp(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=MAX_ITERATIONS {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / clamp(1.0 + even * d);
        c = clamp(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / clamp(1.0 + odd * d);
        c = clamp(1.0 + odd / c);
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPSILON {
            break;
        }
    }
    h
}

/// Survival function P(T > t) of Student's t distribution with `df` degrees of freedom.
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let tail = 0.5 * regularized_incomplete_beta(0.5 * df, 0.5, df / (df + t * t));
    if t > 0.0 { tail } else { 1.0 - tail }
}

/// Regularised upper incomplete gamma function Q(a, x) for `a > 0`, `x ≥ 0`.
pub fn regularized_upper_gamma(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return 1.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    if x < a + 1.0 {
        // Series for the lower function P, then Q = 1 − P.
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut ap = a;
        for _ in 0..MAX_ITERATIONS {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPSILON {
                break;
            }
        }
        1.0 - sum * ln_front.exp()
    } else {
        let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..=MAX_ITERATIONS {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = 1.0 / clamp(an * d + b);
            c = clamp(b + an / c);
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPSILON {
                break;
            }
        }
        ln_front.exp() * h
    }
}

/// Survival function P(Z > z) of the standard normal distribution.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    // P(Z > z) = erfc(z/√2)/2 and erfc(u) = Q(1/2, u²) for u ≥ 0.
    let half_erfc = 0.5 * regularized_upper_gamma(0.5, 0.5 * z * z);
    if z >= 0.0 { half_erfc } else { 1.0 - half_erfc }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error, absolute below 1 (ln Γ(1) = ln Γ(2) = 0).
    fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
        let error = (actual - expected).abs() / expected.abs().max(1.0);
        assert!(
            error <= relative,
            "{what}: {actual} vs {expected} (rel {error:e})"
        );
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        // Γ(n) = (n−1)!, Γ(1/2) = √π.
        let mut factorial = 1.0f64;
        for n in 1..30 {
            assert_close(ln_gamma(n as f64), factorial.ln().max(0.0), 1e-13, "ln Γ(n)");
            factorial *= n as f64;
        }
        assert_close(ln_gamma(0.5), 0.5 * std::f64::consts::PI.ln(), 1e-13, "ln Γ(1/2)");
    }

    #[test]
    fn incomplete_beta_matches_closed_forms_and_scipy() {
        // I_x(1, b) = 1 − (1−x)^b and I_x(a, 1) = x^a.
        for &x in &[0.01, 0.3, 0.7, 0.99] {
            assert_close(
                regularized_incomplete_beta(1.0, 3.5, x),
                1.0 - (1.0f64 - x).powf(3.5),
                1e-12,
                "I_x(1,b)",
            );
            assert_close(
                regularized_incomplete_beta(2.5, 1.0, x),
                x.powf(2.5),
                1e-12,
                "I_x(a,1)",
            );
        }
        // scipy.special.betainc(2.5, 0.5, 0.3) and betainc(10, 0.5, 0.95).
        assert_close(
            regularized_incomplete_beta(2.5, 0.5, 0.3),
            0.018_927_124_071_945_658,
            1e-10,
            "betainc(2.5,.5,.3)",
        );
        assert_close(
            regularized_incomplete_beta(10.0, 0.5, 0.95),
            0.317_151_575_465_544_95,
            1e-10,
            "betainc(10,.5,.95)",
        );
    }

    #[test]
    fn student_t_and_normal_tails_match_scipy() {
        // scipy.stats.t.sf(2.0, 5), t.sf(0.5, 1) (Cauchy: 1/2 − atan(0.5)/π), t.sf(-1.3, 12).
        assert_close(
            student_t_sf(2.0, 5.0),
            0.050_969_739_414_929_174,
            1e-10,
            "t.sf(2,5)",
        );
        let cauchy = 0.5 - 0.5f64.atan() / std::f64::consts::PI;
        assert_close(student_t_sf(0.5, 1.0), cauchy, 1e-12, "t.sf(.5,1)");
        assert_close(
            student_t_sf(-1.3, 12.0),
            0.890_991_414_458_242_9,
            1e-10,
            "t.sf(-1.3,12)",
        );
        // scipy.stats.norm.sf(1.96), norm.sf(5.0), norm.sf(-0.3).
        assert_close(normal_sf(1.96), 0.024_997_895_148_220_435, 1e-12, "norm.sf(1.96)");
        assert_close(normal_sf(5.0), 2.866_515_718_791_933e-7, 1e-10, "norm.sf(5)");
        assert_close(normal_sf(-0.3), 0.617_911_422_188_952_6, 1e-12, "norm.sf(-.3)");
        assert_close(normal_sf(0.0), 0.5, 1e-15, "norm.sf(0)");
    }
}
