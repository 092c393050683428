//! The inner loops of slice rendering, written for speed at the dev profile's opt-level 1:
//! window/level and blends as plain arithmetic with the engine's call-free rounding, label
//! decoding with a fast path for "nothing hidden", outlines tested on row slices. The strided
//! gather is `common::slice_geometry::gather_slice`. Every function gives exactly the pixels of
//! the per-pixel definitions in [`super::render`] (`Window::grey`, `blend`, `Heat::colour`);
//! `render_tests.rs` checks that on every axis.

use eframe::egui::Color32;
use engine::infer::round_to_u8;
use std::collections::BTreeSet;

/// Window/level as precomputed constants: the same arithmetic as `Window::grey`.
#[derive(Clone, Copy)]
pub struct GreyRamp {
    low: f32,
    scale: f32,
}

impl GreyRamp {
    /// The ramp of a window `level ± width/2` (width at least `min_width`).
    pub fn new(width: f32, level: f32, min_width: f32) -> Self {
        let width = width.max(min_width);
        Self {
            low: level - width / 2.0,
            scale: 255.0 / width,
        }
    }

    /// The grey value of an intensity (truncated, clamped to 0–255, NaN black).
    #[inline]
    pub fn grey(self, value: f32) -> u8 {
        ((value - self.low) * self.scale).clamp(0.0, 255.0) as u8
    }
}

/// Blending at one opacity: `under · (1 − opacity) + over · opacity`, rounded per channel.
#[derive(Clone, Copy)]
pub struct Blender {
    keep: f32,
    opacity: f32,
}

impl Blender {
    /// A blender at `opacity`, clamped to 0–1.
    pub fn new(opacity: f32) -> Self {
        let opacity = opacity.clamp(0.0, 1.0);
        Self {
            keep: 1.0 - opacity,
            opacity,
        }
    }

    /// `under` mixed with `over`.
    #[inline]
    pub fn blend(self, under: Color32, over: Color32) -> Color32 {
        let mix = |a: u8, b: u8| round_to_u8(f32::from(a) * self.keep + f32::from(b) * self.opacity);
        Color32::from_rgb(
            mix(under.r(), over.r()),
            mix(under.g(), over.g()),
            mix(under.b(), over.b()),
        )
    }
}

/// Label values of a slice of raw voxel values: rounded, background (0) for negatives, NaN,
/// infinities and hidden labels. Written into `out`, which is cleared first.
pub fn decode_labels(values: &[f32], hidden: &BTreeSet<u32>, out: &mut Vec<u32>) {
    out.clear();
    out.reserve(values.len());
    if hidden.is_empty() {
        out.extend(values.iter().map(|&value| label_of(value)));
    } else {
        out.extend(values.iter().map(|&value| {
            let label = label_of(value);
            if label != 0 && hidden.contains(&label) {
                0
            } else {
                label
            }
        }));
    }
}

/// The rounded label of a voxel value, 0 for background, negatives, NaN and infinities.
#[inline]
fn label_of(value: f32) -> u32 {
    if value.is_nan() || value < 0.5 || value == f32::INFINITY {
        return 0;
    }
    if value >= 255.0 {
        // Rare large labels: the standard rounding (saturating like `as u32`).
        return value.round() as u32;
    }
    u32::from(round_to_u8(value))
}

/// Blends `colour_of(value)` into every non-zero pixel (`outline == false`) or only into the
/// pixels on a region's border (a 4-neighbour holds another value or lies outside the slice).
pub fn paint(
    pixels: &mut [Color32],
    values: &[u32],
    [columns, rows]: [usize; 2],
    outline: bool,
    blender: Blender,
    colour_of: impl Fn(u32) -> Color32,
) {
    if values.len() != columns * rows || pixels.len() != values.len() {
        return;
    }
    for row in 0..rows {
        let start = row * columns;
        let line = &values[start..start + columns];
        let line_pixels = &mut pixels[start..start + columns];
        for column in 0..columns {
            let value = line[column];
            if value == 0 {
                continue;
            }
            if outline {
                let edge = column == 0 || row == 0 || column + 1 == columns || row + 1 == rows;
                let border = edge
                    || line[column - 1] != value
                    || line[column + 1] != value
                    || values[start - columns + column] != value
                    || values[start + columns + column] != value;
                if !border {
                    continue;
                }
            }
            line_pixels[column] = blender.blend(line_pixels[column], colour_of(value));
        }
    }
}
