//! Perceptually ordered colour maps for heat maps (piecewise-linear through anchor colours
//! sampled from matplotlib's maps).

/// A colour map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Black → purple → orange → yellow.
    Inferno,
    /// Purple → teal → yellow.
    Viridis,
    /// Black → white.
    Grey,
}

const INFERNO: [[u8; 3]; 6] = [
    [0, 0, 4],
    [66, 10, 104],
    [147, 38, 103],
    [221, 81, 58],
    [252, 165, 10],
    [252, 255, 164],
];
const VIRIDIS: [[u8; 3]; 6] = [
    [68, 1, 84],
    [65, 68, 135],
    [42, 120, 142],
    [34, 168, 132],
    [122, 209, 81],
    [253, 231, 37],
];

/// The colour of `t` in [0, 1] (clamped; NaN is black).
pub fn colour(map: Colormap, t: f32) -> [u8; 3] {
    if t.is_nan() {
        return [0, 0, 0];
    }
    let t = t.clamp(0.0, 1.0);
    let anchors: &[[u8; 3]] = match map {
        Colormap::Inferno => &INFERNO,
        Colormap::Viridis => &VIRIDIS,
        Colormap::Grey => return [round_to_u8(t * 255.0); 3],
    };
    let position = t * (anchors.len() - 1) as f32;
    let low = (position.floor() as usize).min(anchors.len() - 2);
    let w = position - low as f32;
    std::array::from_fn(|c| {
        round_to_u8(f32::from(anchors[low][c]) * (1.0 - w) + f32::from(anchors[low + 1][c]) * w)
    })
}

/// `x.round() as u8` (half away from zero, saturating at 0 and 255, NaN to 0) without the
/// `roundf` library call that `f32::round` compiles to on baseline x86-64: slice rendering
/// rounds several channels per pixel, and the call was most of its cost.
#[inline]
pub fn round_to_u8(x: f32) -> u8 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= 255.0 {
        return 255;
    }
    // 0 < x < 255: truncation and the fraction `x - whole` are exact in f32.
    let whole = x as u32;
    let rounded = whole + u32::from(x - whole as f32 >= 0.5);
    rounded as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_u8_matches_std_round_on_every_float_from_minus_two_to_three_hundred() {
        // Every f32 bit pattern in [0, 300] and [-2, 0], plus the specials, against the standard
        // library's rounding and saturating cast.
        let positives = 0u32..=300f32.to_bits();
        let negatives = 0x8000_0000u32..=(-2f32).to_bits();
        for bits in positives.step_by(61).chain(negatives.step_by(61)) {
            let x = f32::from_bits(bits);
            assert_eq!(round_to_u8(x), x.round() as u8, "{x:e}");
        }
        for x in [
            0.5,
            1.5,
            2.5,
            254.5,
            255.0,
            255.49,
            255.5,
            0.499_999_97,
            f32::INFINITY,
        ] {
            assert_eq!(round_to_u8(x), x.round() as u8, "{x:e}");
        }
        assert_eq!(round_to_u8(f32::NAN), 0);
        assert_eq!(round_to_u8(f32::NEG_INFINITY), 0);
    }

    #[test]
    fn endpoints_and_monotone_brightness() {
        assert_eq!(colour(Colormap::Inferno, 0.0), INFERNO[0]);
        assert_eq!(colour(Colormap::Inferno, 1.0), INFERNO[5]);
        assert_eq!(colour(Colormap::Grey, 0.5), [128; 3]);
        let luminance =
            |c: [u8; 3]| 0.2126 * f32::from(c[0]) + 0.7152 * f32::from(c[1]) + 0.0722 * f32::from(c[2]);
        for map in [Colormap::Inferno, Colormap::Viridis] {
            let steps: Vec<f32> = (0..=20)
                .map(|i| luminance(colour(map, i as f32 / 20.0)))
                .collect();
            assert!(steps.windows(2).all(|w| w[1] >= w[0] - 1.0), "{map:?} {steps:?}");
        }
    }
}
