//! The inner loops of slice rendering, written for speed at the dev profile's opt-level 1:
//! window/level and blends as plain arithmetic with the engine's call-free rounding, hidden
//! labels through a table, outlines tested on row slices. The strided
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

/// Slices with at least this many pixels are coloured on several threads.
const MIN_THREADED_PIXELS: usize = 1 << 16;
/// At most this many threads colour one slice.
const MAX_COLOUR_THREADS: usize = 8;

/// Runs `work` over matching bands of `pixels` and `values` (whole rows of `columns`), on
/// several threads when the slice is large (one per core, at most [`MAX_COLOUR_THREADS`]),
/// on the calling thread otherwise. A sagittal activation map's per-pixel colours were most of
/// that slice's time on one thread (issue 14).
pub fn in_bands<T: Sync>(
    pixels: &mut [Color32],
    values: &[T],
    columns: usize,
    work: impl Fn(&mut [Color32], &[T]) + Sync,
) {
    let rows = pixels.len().min(values.len()) / columns.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_COLOUR_THREADS)
        .min(rows.max(1));
    if threads <= 1 || pixels.len() < MIN_THREADED_PIXELS {
        work(pixels, values);
        return;
    }
    let band = rows.div_ceil(threads) * columns;
    std::thread::scope(|scope| {
        for (pixels, values) in pixels.chunks_mut(band).zip(values.chunks(band)) {
            let work = &work;
            scope.spawn(move || work(pixels, values));
        }
    });
}

/// Sets hidden label values to background (0), through a table of the values up to the
/// slice's largest.
pub fn hide_labels(labels: &mut [u16], hidden: &BTreeSet<u32>) {
    if hidden.is_empty() {
        return;
    }
    let highest = labels.iter().copied().max().unwrap_or(0);
    let shown: Vec<u16> = (0..=highest)
        .map(|value| {
            if hidden.contains(&u32::from(value)) {
                0
            } else {
                value
            }
        })
        .collect();
    for label in labels {
        *label = shown[usize::from(*label)];
    }
}

/// [`Blender::blend`] with one `over` colour, precomputed for every `under` channel value: the
/// same arithmetic, done 3 × 256 times per colour instead of once per pixel.
struct BlendTable([[u8; 256]; 3]);

impl BlendTable {
    fn new(blender: Blender, over: Color32) -> Self {
        let over = [over.r(), over.g(), over.b()];
        let mut table = [[0u8; 256]; 3];
        for (channel, row) in table.iter_mut().enumerate() {
            for (under, out) in row.iter_mut().enumerate() {
                let mixed = blender.blend(Color32::from_gray(under as u8), Color32::from_gray(over[channel]));
                *out = mixed.r();
            }
        }
        Self(table)
    }

    #[inline]
    fn blend(&self, under: Color32) -> Color32 {
        let [r, g, b] = &self.0;
        Color32::from_rgb(
            r[usize::from(under.r())],
            g[usize::from(under.g())],
            b[usize::from(under.b())],
        )
    }
}

/// Blends `style_of(value)`'s colour at its opacity into every non-zero pixel (`outline ==
/// false`) or only into the pixels on a region's border (a 4-neighbour holds another value or
/// lies outside the slice).
pub fn paint<T: Copy + Eq + Into<usize>>(
    pixels: &mut [Color32],
    values: &[T],
    [columns, rows]: [usize; 2],
    outline: bool,
    style_of: impl Fn(T) -> (Color32, f32),
) {
    if values.len() != columns * rows || pixels.len() != values.len() {
        return;
    }
    // One table per label value met, built on first use.
    let highest = values.iter().map(|&v| v.into()).max().unwrap_or(0);
    let mut tables: Vec<Option<Box<BlendTable>>> = (0..=highest).map(|_| None).collect();
    for row in 0..rows {
        let start = row * columns;
        let line = &values[start..start + columns];
        let line_pixels = &mut pixels[start..start + columns];
        for column in 0..columns {
            let value = line[column];
            let index: usize = value.into();
            if index == 0 {
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
            let table = tables[index].get_or_insert_with(|| {
                let (colour, opacity) = style_of(value);
                Box::new(BlendTable::new(Blender::new(opacity), colour))
            });
            line_pixels[column] = table.blend(line_pixels[column]);
        }
    }
}
