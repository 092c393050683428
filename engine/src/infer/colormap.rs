//! Perceptually ordered colour maps for heat maps: matplotlib's inferno and viridis as 256-entry
//! tables committed in `assets/colormaps/` (written by `tools/make_colormaps.py`), interpolated
//! linearly between entries.

use std::sync::OnceLock;

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

const INFERNO_TEXT: &str = include_str!("../../../assets/colormaps/inferno.txt");
const VIRIDIS_TEXT: &str = include_str!("../../../assets/colormaps/viridis.txt");

/// The "R G B" lines (0-255) of a colour table such as the committed colour maps and label
/// palette; `#` comments, blank and malformed lines are skipped (the committed files have no
/// malformed line, as tests check).
pub fn parse_rgb_table(text: &str) -> Vec<[u8; 3]> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let channels: Vec<u8> = line.split_whitespace().filter_map(|c| c.parse().ok()).collect();
            match channels.as_slice() {
                [r, g, b] => Some([*r, *g, *b]),
                _ => None,
            }
        })
        .collect()
}

/// The table of `map` (empty for grey).
fn table(map: Colormap) -> &'static [[u8; 3]] {
    static INFERNO: OnceLock<Vec<[u8; 3]>> = OnceLock::new();
    static VIRIDIS: OnceLock<Vec<[u8; 3]>> = OnceLock::new();
    match map {
        Colormap::Inferno => INFERNO.get_or_init(|| parse_rgb_table(INFERNO_TEXT)),
        Colormap::Viridis => VIRIDIS.get_or_init(|| parse_rgb_table(VIRIDIS_TEXT)),
        Colormap::Grey => &[],
    }
}

/// The colour of `t` in [0, 1] (clamped; NaN is black).
pub fn colour(map: Colormap, t: f32) -> [u8; 3] {
    if t.is_nan() {
        return [0, 0, 0];
    }
    let t = t.clamp(0.0, 1.0);
    let entries = table(map);
    if entries.len() < 2 {
        return [round_to_u8(t * 255.0); 3];
    }
    let position = t * (entries.len() - 1) as f32;
    let low = (position.floor() as usize).min(entries.len() - 2);
    let w = position - low as f32;
    std::array::from_fn(|c| {
        round_to_u8(f32::from(entries[low][c]) * (1.0 - w) + f32::from(entries[low + 1][c]) * w)
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
    fn the_tables_are_matplotlibs_and_the_lookup_hits_their_entries() {
        // 256 entries each, every committed line parsed; the end points and the middle are
        // matplotlib's published values (inferno(0) = #000004, inferno(1) = #FCFFA4,
        // viridis(0) = #440154, viridis(1) = #FDE725, viridis(0.5) ≈ #21918C).
        for (map, text) in [
            (Colormap::Inferno, INFERNO_TEXT),
            (Colormap::Viridis, VIRIDIS_TEXT),
        ] {
            let data_lines = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(table(map).len(), 256, "{map:?}");
            assert_eq!(data_lines, 256, "{map:?}: a malformed line");
            // t = i / 255 lands on entry i exactly.
            for (i, entry) in table(map).iter().enumerate() {
                assert_eq!(colour(map, i as f32 / 255.0), *entry, "{map:?} entry {i}");
            }
        }
        assert_eq!(colour(Colormap::Inferno, 0.0), [0, 0, 4]);
        assert_eq!(colour(Colormap::Inferno, 1.0), [252, 255, 164]);
        assert_eq!(colour(Colormap::Viridis, 0.0), [68, 1, 84]);
        assert_eq!(colour(Colormap::Viridis, 1.0), [253, 231, 37]);
        let middle = colour(Colormap::Viridis, 0.5);
        for (found, expected) in middle.iter().zip([0x21u8, 0x91, 0x8C]) {
            assert!(found.abs_diff(expected) <= 1, "viridis(0.5) = {middle:?}");
        }
        // Halfway between two entries: their mean.
        let (a, b) = (table(Colormap::Inferno)[100], table(Colormap::Inferno)[101]);
        let between = colour(Colormap::Inferno, 100.5 / 255.0);
        for c in 0..3 {
            let mean = (f32::from(a[c]) + f32::from(b[c])) / 2.0;
            assert!(
                (f32::from(between[c]) - mean).abs() <= 0.5 + 1e-3,
                "{between:?} vs {a:?}, {b:?}"
            );
        }
        assert_eq!(colour(Colormap::Grey, 0.5), [128; 3]);
        assert_eq!(colour(Colormap::Inferno, f32::NAN), [0, 0, 0]);
    }

    #[test]
    fn brightness_rises_monotonically() {
        let luminance =
            |c: [u8; 3]| 0.2126 * f32::from(c[0]) + 0.7152 * f32::from(c[1]) + 0.0722 * f32::from(c[2]);
        for map in [Colormap::Inferno, Colormap::Viridis] {
            let steps: Vec<f32> = (0..=100)
                .map(|i| luminance(colour(map, i as f32 / 100.0)))
                .collect();
            assert!(steps.windows(2).all(|w| w[1] >= w[0] - 1.0), "{map:?} {steps:?}");
        }
    }
}
