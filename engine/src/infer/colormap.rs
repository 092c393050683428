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
        Colormap::Grey => return [(t * 255.0).round() as u8; 3],
    };
    let position = t * (anchors.len() - 1) as f32;
    let low = (position.floor() as usize).min(anchors.len() - 2);
    let w = position - low as f32;
    std::array::from_fn(|c| {
        (f32::from(anchors[low][c]) * (1.0 - w) + f32::from(anchors[low + 1][c]) * w).round() as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
