//! Branch-free `exp` and `ln` for f32 that a loop over a slice vectorises (the C library's are
//! scalar calls): the CPU kernels' attention softmax ([`super::cpu_kernels`]) and fused loss
//! ([`super::fused_loss`]) use them.

/// `log2(e)`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two (Cody–Waite) so that `x − n ln 2` is exact for the `n` that occur.
const LN2_HIGH: f32 = 0.693_359_4;
const LN2_LOW: f32 = -2.121_944_4e-4;
/// `1.5 · 2²³`: adding it rounds a float of magnitude < 2²² to an integer, kept in the low bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// Below this `exp` underflows to the smallest normal float's neighbourhood; above, to infinity.
const EXP_LOW: f32 = -87.336_55;
const EXP_HIGH: f32 = 88.376_26;

/// `eˣ` within 2 ulp for every finite f32 (Cephes' `expf` polynomial); NaN stays NaN, inputs
/// below −87.34 give ≈ 1.2·10⁻³⁸ instead of a denormal, above 88.38 give +∞.
///
/// Branch-free so that a loop over a slice vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // `if` rather than `clamp`/`max`, which would turn NaN into a bound.
    let overflows = x > EXP_HIGH;
    let x = if x < EXP_LOW { EXP_LOW } else { x };
    let x = if overflows { EXP_HIGH } else { x };
    let shifted = x * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let p = p * r * r + r + 1.0;
    // The integer n sits in the low mantissa bits of `shifted`; 2ⁿ is its exponent field.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let two_to_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if overflows { f32::INFINITY } else { p * two_to_n }
}

/// `√½`: mantissas below it are doubled so that the polynomial's argument stays in [√½ − 1, √2 − 1).
const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// `ln x` within 2 ulp for every positive normal f32 (Cephes' `logf` polynomial); NaN stays
/// NaN. Zero, negative and subnormal inputs are outside its domain (the fused loss only takes
/// logarithms of sums ≥ 1).
///
/// Branch-free so that a loop over a slice vectorises.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m · 2^e with m in [0.5, 1).
    let exponent = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < SQRT_HALF;
    let e = (exponent - i32::from(small)) as f32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let y = 7.037_683_6e-2_f32;
    let y = y * f - 1.151_461e-1;
    let y = y * f + 1.167_699_9e-1;
    let y = y * f - 1.242_014_1e-1;
    let y = y * f + 1.424_932_3e-1;
    let y = y * f - 1.666_805_8e-1;
    let y = y * f + 2.000_071_5e-1;
    let y = y * f - 2.499_999_4e-1;
    let y = y * f + 3.333_333e-1;
    let y = y * f * z + LN2_LOW * e - 0.5 * z;
    let result = f + y + LN2_HIGH * e;
    if x.is_nan() { x } else { result }
}

/// Abramowitz & Stegun 7.1.26: `erfc(z) ≈ (a₁t + … + a₅t⁵)·e^(−z²)`, `t = 1/(1 + p·z)`, z ≥ 0,
/// within 1.5·10⁻⁷ of erfc.
const ERFC_P: f32 = 0.327_591_1;
const ERFC_A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
/// `1/√2` and `1/√(2π)`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `(Φ(x), φ(x))`: the standard normal distribution function and density, Φ within 4·10⁻⁷ of
/// its value (the polynomial's error plus its f32 rounding; NaN stays NaN). Branch-free so that a loop over a slice vectorises.
#[inline(always)]
fn normal_cdf_and_density(x: f32) -> (f32, f32) {
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + ERFC_P * z);
    let poly = ERFC_A[4];
    let poly = poly * t + ERFC_A[3];
    let poly = poly * t + ERFC_A[2];
    let poly = poly * t + ERFC_A[1];
    let poly = poly * t + ERFC_A[0];
    let gauss = exp(-z * z); // e^(−x²/2)
    let tail = 0.5 * poly * t * gauss; // Φ(−|x|)
    let cdf = if x < 0.0 { tail } else { 1.0 - tail };
    (cdf, FRAC_1_SQRT_2PI * gauss)
}

/// The exact (erf) GELU, `x·Φ(x)`, within 3·10⁻⁷·max(1, |x|) of its value.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf_and_density(x).0
}

/// The derivative of [`gelu`], `Φ(x) + x·φ(x)`, within 5·10⁻⁷·max(1, |x|).
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    let (cdf, density) = normal_cdf_and_density(x);
    cdf + x * density
}

/// The logistic function `1/(1 + e^(−x))` (NaN stays NaN). Branch-free.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_three_ulp_of_f64_exp_over_the_whole_range() {
        // Every 997th f32 bit pattern between −87.3 and 88.3, plus the round numbers.
        let mut checked = 0;
        for bits in (0u32..=u32::MAX).step_by(997) {
            let x = f32::from_bits(bits);
            if !x.is_finite() || !(-87.3..=88.3).contains(&x) {
                continue;
            }
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let ulp = (want as f32).abs() * f32::EPSILON;
            assert!(
                (got - want).abs() <= 3.0 * ulp as f64,
                "exp({x}) = {got}, f64 gives {want} (3 ulp = {})",
                3.0 * ulp
            );
            checked += 1;
        }
        assert!(checked > 1_000_000, "only {checked} inputs checked");
        for x in [-10.0_f32, -1.0, 0.0, 0.5, 1.0, 2.0] {
            assert!(((exp(x) as f64) - (x as f64).exp()).abs() <= 3.0 * (x.exp() * f32::EPSILON) as f64);
        }
    }

    /// Every 997th positive normal f32 bit pattern: within 2 ulp of the f64 logarithm.
    #[test]
    fn ln_is_within_two_ulp_of_f64_ln_over_the_normal_floats() {
        let mut checked = 0;
        for bits in (f32::MIN_POSITIVE.to_bits()..f32::MAX.to_bits()).step_by(997) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).ln();
            let got = f64::from(ln(x));
            let ulp = f64::from(f32::EPSILON) * want.abs().max(f64::from(f32::MIN_POSITIVE));
            assert!((got - want).abs() <= 2.0 * ulp, "ln({x}) = {got}, want {want}");
            checked += 1;
        }
        assert!(checked > 2_000_000, "only {checked} inputs checked");
        assert!(ln(f32::NAN).is_nan());
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn exp_keeps_nan_and_saturates_outside_the_range() {
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NEG_INFINITY) < 1.2e-38 && exp(f32::NEG_INFINITY) >= 0.0);
        assert!(exp(-1000.0) < 1.2e-38);
    }
}
