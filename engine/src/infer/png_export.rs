//! Writing a map as a PNG: one slice of the scan in grey with the map blended over it in a
//! colour map, and a vertical colour bar on the right. Slices are taken in RAS+ orientation and
//! shown in radiological convention (patient right on the image's left, anterior/superior up).

use super::colormap::{Colormap, colour};
use crate::volume::{Volume, reorient_to_canonical};
use std::path::Path;

/// A slicing axis of a RAS+ volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceAxis {
    /// Fixed S (z): an axial slice.
    Axial,
    /// Fixed A (y): a coronal slice.
    Coronal,
    /// Fixed R (x): a sagittal slice.
    Sagittal,
}

impl SliceAxis {
    /// Parses "axial", "coronal", "sagittal" (or z, y, x).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "axial" | "z" => Some(SliceAxis::Axial),
            "coronal" | "y" => Some(SliceAxis::Coronal),
            "sagittal" | "x" => Some(SliceAxis::Sagittal),
            _ => None,
        }
    }
}

/// Width of the colour bar in pixels, and the gap before it.
const BAR_WIDTH: usize = 12;
const BAR_GAP: usize = 4;

/// A 2-D slice `[rows][columns]` in display orientation, plus its size.
fn slice(volume: &Volume, axis: SliceAxis, index: usize) -> (Vec<f32>, usize, usize) {
    let [nx, ny, nz] = volume.shape();
    let (width, height) = match axis {
        SliceAxis::Axial => (nx, ny),
        SliceAxis::Coronal => (nx, nz),
        SliceAxis::Sagittal => (ny, nz),
    };
    let mut out = Vec::with_capacity(width * height);
    for row in 0..height {
        for column in 0..width {
            let value = match axis {
                SliceAxis::Axial => volume.at(nx - 1 - column, ny - 1 - row, index.min(nz - 1)),
                SliceAxis::Coronal => volume.at(nx - 1 - column, index.min(ny - 1), nz - 1 - row),
                SliceAxis::Sagittal => volume.at(index.min(nx - 1), column, nz - 1 - row),
            };
            out.push(value);
        }
    }
    (out, width, height)
}

/// Writes `map` over `scan` (both on the same grid) at `axis`/`index` (in RAS+ voxel indices;
/// `None` = middle) as a PNG, and returns the map's value range on that slice.
pub fn write_map_png(
    path: &Path,
    scan: &Volume,
    map: &Volume,
    axis: SliceAxis,
    index: Option<usize>,
    colormap: Colormap,
) -> std::io::Result<(f32, f32)> {
    let scan = reorient_to_canonical(&scan.select_channel(0));
    let map = reorient_to_canonical(map);
    let depth = match axis {
        SliceAxis::Axial => scan.shape()[2],
        SliceAxis::Coronal => scan.shape()[1],
        SliceAxis::Sagittal => scan.shape()[0],
    };
    let index = index.unwrap_or(depth / 2).min(depth - 1);
    let (grey, width, height) = slice(&scan, axis, index);
    let (heat, _, _) = slice(&map, axis, index);
    let range = |values: &[f32], low_q: f64, high_q: f64| {
        (
            crate::volume::percentile(values, low_q) as f32,
            crate::volume::percentile(values, high_q) as f32,
        )
    };
    let (grey_low, grey_high) = range(&grey, 1.0, 99.0);
    let (heat_low, heat_high) = range(&heat, 0.0, 100.0);
    let normalise = |v: f32, low: f32, high: f32| if high > low { (v - low) / (high - low) } else { 0.0 };
    let total_width = width + BAR_GAP + BAR_WIDTH;
    let mut pixels = vec![0u8; total_width * height * 3];
    for row in 0..height {
        for column in 0..width {
            let g = normalise(grey[row * width + column], grey_low, grey_high).clamp(0.0, 1.0);
            let h = colour(
                colormap,
                normalise(heat[row * width + column], heat_low, heat_high),
            );
            let at = (row * total_width + column) * 3;
            for c in 0..3 {
                // 60 % heat over 40 % anatomy: the map stays readable and the anatomy visible.
                pixels[at + c] = (0.6 * f32::from(h[c]) + 0.4 * g * 255.0).round() as u8;
            }
        }
        let bar = colour(colormap, 1.0 - row as f32 / (height.max(2) - 1) as f32);
        for column in width + BAR_GAP..total_width {
            pixels[(row * total_width + column) * 3..][..3].copy_from_slice(&bar);
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, total_width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer.write_image_data(&pixels).map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)?;
    Ok((heat_low, heat_high))
}
