//! PNG export of a view: the slice with its overlays, stretched to square pixels so the picture
//! has the scan's physical aspect ratio.

use crate::common::label::Label;
use crate::common::slice_geometry::{Axis, slice_size_mm};
use crate::viewer::render::{Heat, OverlaySettings, SliceLayers, Window, render_slice};
use eframe::egui::{Color32, ColorImage};
use engine::volume::Volume;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

/// Exported pictures are at least this many pixels on their longer side (small scans are
/// enlarged with nearest-neighbour so voxels stay sharp).
const MIN_EXPORT_SIDE: usize = 512;
/// And never more than this.
const MAX_EXPORT_SIDE: usize = 4096;

/// Resamples `image` (nearest neighbour) so it is `size_mm` in proportion.
pub fn to_physical_aspect(image: &ColorImage, size_mm: [f32; 2]) -> ColorImage {
    let [columns, rows] = image.size;
    if columns == 0 || rows == 0 || !(size_mm[0] > 0.0 && size_mm[1] > 0.0) {
        return image.clone();
    }
    let longer_mm = size_mm[0].max(size_mm[1]);
    let longer_side = columns.max(rows).clamp(MIN_EXPORT_SIDE, MAX_EXPORT_SIDE) as f32;
    let width = ((size_mm[0] / longer_mm * longer_side).round() as usize).max(1);
    let height = ((size_mm[1] / longer_mm * longer_side).round() as usize).max(1);
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = (y * rows / height).min(rows - 1);
        for x in 0..width {
            let column = (x * columns / width).min(columns - 1);
            pixels.push(image.pixels[row * columns + column]);
        }
    }
    ColorImage::new([width, height], pixels)
}

/// Width of the exported colour bar, and the gap before it, in pixels.
const BAR_WIDTH: usize = 16;
const BAR_GAP: usize = 8;

/// `image` with a vertical colour bar of `heat` on its right (high values at the top), on black.
pub fn with_colour_bar(image: &ColorImage, heat: &Heat) -> ColorImage {
    let [columns, rows] = image.size;
    let width = columns + BAR_GAP + BAR_WIDTH;
    let mut pixels = Vec::with_capacity(width * rows);
    for row in 0..rows {
        pixels.extend_from_slice(&image.pixels[row * columns..(row + 1) * columns]);
        pixels.extend(std::iter::repeat_n(Color32::BLACK, BAR_GAP));
        let t = if rows > 1 {
            1.0 - row as f32 / (rows - 1) as f32
        } else {
            1.0
        };
        let colour = heat.colour(heat.low + t * (heat.high - heat.low));
        pixels.extend(std::iter::repeat_n(colour, BAR_WIDTH));
    }
    ColorImage::new([width, rows], pixels)
}

/// Writes `image` as an 8-bit RGBA PNG, atomically.
pub fn write_png(path: &Path, image: &ColorImage) -> Result<(), String> {
    let [width, height] = image.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|p: &Color32| p.to_array()).collect();
    let too_big = |_| format!("{}: picture too large to export", path.display());
    let (width, height) = (
        u32::try_from(width).map_err(too_big)?,
        u32::try_from(height).map_err(too_big)?,
    );
    engine::volume::write_atomically(path, |writer| {
        let mut encoder = png::Encoder::new(writer, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut png_writer = encoder.write_header().map_err(std::io::Error::other)?;
        png_writer
            .write_image_data(&bytes)
            .map_err(std::io::Error::other)?;
        png_writer.finish().map_err(std::io::Error::other)
    })
    .map_err(|e| {
        format!(
            "cannot write {}: {e}; choose a folder you can write to",
            path.display()
        )
    })
}

/// What a PNG export needs, owned, so the export runs on its own thread.
pub struct ExportJob {
    /// The scan on the RAS+ grid.
    pub image: Arc<Volume>,
    /// The label being shown, if any.
    pub ground_truth: Option<Label>,
    /// The prediction, if any.
    pub prediction: Option<Label>,
    /// An activation map over the slice, with its colour bar.
    pub heat: Option<Heat>,
    /// The view exported.
    pub axis: Axis,
    /// Its slice.
    pub slice: usize,
    /// The display window.
    pub window: Window,
    /// The overlays as shown.
    pub overlays: OverlaySettings,
    /// Where the PNG goes.
    pub path: PathBuf,
}

/// Renders and writes the PNG on the `export` thread; the path written (or why not) comes back
/// over the returned channel, then `wake` runs. A panic becomes a message.
pub fn spawn_export(
    job: ExportJob,
    wake: impl Fn() + Send + 'static,
) -> mpsc::Receiver<Result<PathBuf, String>> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("export".into()).spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| export(&job)))
            .unwrap_or_else(|_| Err("the export failed unexpectedly; please report this".into()));
        let _ = sender.send(result);
        wake();
    });
    if let Err(error) = spawned {
        let (sender, failed) = mpsc::sync_channel(1);
        let _ = sender.send(Err(format!("cannot start the export thread: {error}")));
        return failed;
    }
    receiver
}

/// Renders the slice, stretches it to the physical aspect, adds the colour bar and writes it.
fn export(job: &ExportJob) -> Result<PathBuf, String> {
    let layers = SliceLayers {
        image: &job.image,
        ground_truth: job.ground_truth.as_ref(),
        prediction: job.prediction.as_ref(),
        heat: job.heat.as_ref(),
    };
    let slice = render_slice(layers, job.axis, job.slice, job.window, &job.overlays);
    let size_mm = slice_size_mm(job.image.shape(), job.image.spacing_mm(), job.axis);
    let mut picture = to_physical_aspect(&slice, size_mm);
    if let Some(heat) = &job.heat {
        picture = with_colour_bar(&picture, heat);
    }
    write_png(&job.path, &picture)?;
    Ok(job.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anisotropic_slice_is_stretched_to_its_physical_aspect() {
        // 2 × 2 pixels covering 10 mm × 20 mm: the picture is twice as tall as wide.
        let image = ColorImage::new(
            [2, 2],
            vec![Color32::RED, Color32::GREEN, Color32::BLUE, Color32::WHITE],
        );
        let out = to_physical_aspect(&image, [10.0, 20.0]);
        assert_eq!(out.size, [256, 512]);
        assert_eq!(out.pixels[0], Color32::RED);
        assert_eq!(out.pixels[255], Color32::GREEN);
        assert_eq!(out.pixels[256 * 511], Color32::BLUE);
        assert_eq!(out.pixels[256 * 512 - 1], Color32::WHITE);
    }

    #[test]
    fn colour_bar_runs_from_high_at_the_top_to_low_at_the_bottom() {
        let heat = crate::viewer::render::Heat {
            volume: std::sync::Arc::new(
                engine::volume::Volume::new([1, 1, 1], 1, vec![0.0], engine::volume::Affine::identity())
                    .expect("volume"),
            ),
            low: -1.0,
            high: 3.0,
            colormap: engine::infer::Colormap::Grey,
            opacity: 1.0,
        };
        let image = ColorImage::new([3, 5], vec![Color32::RED; 15]);
        let out = with_colour_bar(&image, &heat);
        assert_eq!(out.size, [3 + BAR_GAP + BAR_WIDTH, 5]);
        let width = out.size[0];
        assert_eq!(out.pixels[0], Color32::RED);
        assert_eq!(out.pixels[3], Color32::BLACK);
        assert_eq!(out.pixels[width - 1], Color32::WHITE, "top row is the high end");
        assert_eq!(
            out.pixels[4 * width + width - 1],
            Color32::BLACK,
            "bottom row is the low end"
        );
        // Middle row: t = 0.5 → grey 128 (Grey maps t to round(255 t)).
        assert_eq!(out.pixels[2 * width + width - 1], Color32::from_gray(128));
    }

    #[test]
    fn png_round_trips_through_the_png_decoder() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("view.png");
        let image = ColorImage::new([2, 1], vec![Color32::from_rgb(1, 2, 3), Color32::from_gray(200)]);
        write_png(&path, &image).map_err(anyhow::Error::msg)?;
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path)?));
        let mut reader = decoder.read_info()?;
        let mut buffer = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader.next_frame(&mut buffer)?;
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(&buffer[..8], &[1, 2, 3, 255, 200, 200, 200, 255]);
        Ok(())
    }
}
