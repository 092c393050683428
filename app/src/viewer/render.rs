//! Colouring a slice: window/level to grey, then the ground truth, prediction and difference
//! overlays blended on top, filled or outlined. Pure functions of their inputs: the views cache
//! the result by a key of exactly these inputs.

use crate::common::label::Label;
use crate::common::slice_geometry::{Axis, gather_label_slice, gather_slice, slice_size};
use crate::viewer::slice_pixels::{Blender, GreyRamp, hide_labels, in_bands, paint};
use eframe::egui::{Color32, ColorImage};
use engine::volume::Volume;
use std::collections::{BTreeMap, BTreeSet};

/// A display window: intensities `level ± width/2` map to black..white.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Width of the intensity range shown.
    pub width: f32,
    /// Centre of the intensity range shown.
    pub level: f32,
}

/// Narrowest window allowed (avoids dividing by zero).
pub use engine::volume::MIN_WINDOW_WIDTH;

impl Window {
    /// The grey value of an intensity.
    pub fn grey(self, value: f32) -> u8 {
        let width = self.width.max(MIN_WINDOW_WIDTH);
        let low = self.level - width / 2.0;
        ((value - low) * (255.0 / width)).clamp(0.0, 255.0) as u8
    }
}

/// Named windows: the CT presets, and the MRI auto window from the 1st–99th percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WindowPreset {
    /// CT soft tissue, W 400 / L 40.
    SoftTissue,
    /// CT lung, W 1500 / L −600.
    Lung,
    /// CT bone, W 2000 / L 300.
    Bone,
    /// CT brain, W 80 / L 40.
    Brain,
    /// The 1st–99th percentile range of the case (the MRI default).
    Auto,
}

impl WindowPreset {
    /// Every preset, in the order `W` cycles through them.
    pub const ALL: [WindowPreset; 5] = [
        WindowPreset::SoftTissue,
        WindowPreset::Lung,
        WindowPreset::Bone,
        WindowPreset::Brain,
        WindowPreset::Auto,
    ];

    /// Name shown on its button.
    pub fn name(self) -> &'static str {
        match self {
            WindowPreset::SoftTissue => "Soft tissue",
            WindowPreset::Lung => "Lung",
            WindowPreset::Bone => "Bone",
            WindowPreset::Brain => "Brain",
            WindowPreset::Auto => "Auto (1–99 %)",
        }
    }

    /// The window; `auto` is the case's percentile window.
    pub fn window(self, auto: Window) -> Window {
        let (width, level) = match self {
            WindowPreset::SoftTissue => (400.0, 40.0),
            WindowPreset::Lung => (1500.0, -600.0),
            WindowPreset::Bone => (2000.0, 300.0),
            WindowPreset::Brain => (80.0, 40.0),
            WindowPreset::Auto => return auto,
        };
        Window { width, level }
    }
}

/// The window spanning the 1st to 99th percentile of `values` (the engine's
/// `percentile_window`, shared with the CLI).
pub fn percentile_window(values: &[f32]) -> Window {
    let window = engine::volume::percentile_window(values);
    Window {
        width: window.width,
        level: window.level,
    }
}

/// How a label layer is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LayerStyle {
    /// Every labelled pixel is tinted.
    Fill,
    /// Only the pixels on the border of a region are tinted.
    Outline,
}

/// One overlay layer's switches.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// Whether it is drawn.
    pub visible: bool,
    /// Fill or outline.
    pub style: LayerStyle,
}

/// Everything about the overlays that changes the pixels of a slice.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OverlaySettings {
    /// Master switch (the `O` key): off hides every layer without forgetting which are on.
    pub enabled: bool,
    /// The ground-truth label.
    pub ground_truth: Layer,
    /// The predicted label.
    pub prediction: Layer,
    /// True positives, false positives and false negatives of the prediction.
    pub difference: Layer,
    /// Blend factor of overlay colours, 0 (invisible) to 1 (opaque).
    pub opacity: f32,
    /// Label values not drawn in any layer.
    pub hidden_labels: BTreeSet<u32>,
    /// Colours and opacities set in the legend, by label value (the palette's colour at full
    /// opacity otherwise). The shell keeps them per task.
    pub label_styles: BTreeMap<u32, LabelStyle>,
    /// Draw the prediction's uncertainty map as a heat layer (when the case has one and no
    /// activation map is shown).
    pub uncertainty: bool,
}

/// How one label is drawn, as set in the legend.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelStyle {
    /// Red, green, blue.
    pub colour: [u8; 3],
    /// Its opacity as a fraction of the overlay opacity, 0–1.
    pub opacity: f32,
}

impl OverlaySettings {
    /// The colour label `value` is drawn in: the legend's choice, or the palette's.
    pub fn label_colour(&self, value: u32) -> Color32 {
        self.label_styles.get(&value).map_or_else(
            || label_colour(value),
            |style| {
                let [r, g, b] = style.colour;
                Color32::from_rgb(r, g, b)
            },
        )
    }

    /// The opacity label `value` is blended at: the overlay opacity times the label's own.
    pub fn label_opacity(&self, value: u32) -> f32 {
        self.opacity.clamp(0.0, 1.0) * self.label_own_opacity(value)
    }

    /// The label's own opacity set in the legend (1 unless set): its surface's in the 3D view.
    pub fn label_own_opacity(&self, value: u32) -> f32 {
        self.label_styles
            .get(&value)
            .map_or(1.0, |style| style.opacity.clamp(0.0, 1.0))
    }
}

impl Default for OverlaySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ground_truth: Layer {
                visible: true,
                style: LayerStyle::Fill,
            },
            prediction: Layer {
                visible: true,
                style: LayerStyle::Outline,
            },
            difference: Layer {
                visible: false,
                style: LayerStyle::Fill,
            },
            opacity: 0.45,
            hidden_labels: BTreeSet::new(),
            label_styles: BTreeMap::new(),
            uncertainty: false,
        }
    }
}

/// The label palette as committed in `assets/label_palette.txt`: one "R G B" line per label
/// value 1, 2, …; `#` starts a comment.
const LABEL_PALETTE_TEXT: &str = include_str!("../../../assets/label_palette.txt");

/// Colours of label values 1, 2, … (0 is background and never drawn), from
/// [`LABEL_PALETTE_TEXT`]; at least 20 distinct ones before they repeat.
pub fn label_colours() -> &'static [Color32] {
    static COLOURS: std::sync::OnceLock<Vec<Color32>> = std::sync::OnceLock::new();
    COLOURS.get_or_init(|| parse_palette(LABEL_PALETTE_TEXT))
}

/// The colours of a palette text; a malformed line is skipped (the committed one has none, as a
/// test checks).
pub fn parse_palette(text: &str) -> Vec<Color32> {
    engine::infer::parse_rgb_table(text)
        .into_iter()
        .map(|[r, g, b]| Color32::from_rgb(r, g, b))
        .collect()
}

/// Difference colour of a voxel labelled in both ground truth and prediction, with the same value.
pub const TRUE_POSITIVE_COLOUR: Color32 = Color32::from_rgb(40, 200, 40);
/// Difference colour of a voxel the prediction labels and the ground truth does not (or differently).
pub const FALSE_POSITIVE_COLOUR: Color32 = Color32::from_rgb(255, 160, 0);
/// Difference colour of a voxel the ground truth labels and the prediction misses.
pub const FALSE_NEGATIVE_COLOUR: Color32 = Color32::from_rgb(40, 130, 255);

/// The colour of a label value (values above the palette wrap around).
pub fn label_colour(value: u32) -> Color32 {
    let colours = label_colours();
    colours
        .get(value.saturating_sub(1) as usize % colours.len().max(1))
        .copied()
        .unwrap_or(Color32::RED)
}

/// The volumes a slice is made from. Overlays of another shape than the image are ignored.
#[derive(Clone, Copy)]
pub struct SliceLayers<'a> {
    /// The scan (channel 0 shown).
    pub image: &'a Volume,
    /// Ground-truth label, same grid as the image.
    pub ground_truth: Option<&'a Label>,
    /// Predicted label, same grid as the image.
    pub prediction: Option<&'a Label>,
    /// An activation map drawn under the label overlays.
    pub heat: Option<&'a Heat>,
}

/// An activation map as a heat overlay: values from `low` to `high` through a colour map.
#[derive(Debug, Clone)]
pub struct Heat {
    /// The map, on the image's grid.
    pub volume: std::sync::Arc<Volume>,
    /// Value drawn with the colour map's first colour.
    pub low: f32,
    /// Value drawn with its last colour.
    pub high: f32,
    /// The colour map.
    pub colormap: engine::infer::Colormap,
    /// Blend over the slice, 0–1.
    pub opacity: f32,
}

impl Heat {
    /// The colour of a value.
    pub fn colour(&self, value: f32) -> Color32 {
        let span = self.high - self.low;
        let t = if span > 0.0 {
            (value - self.low) / span
        } else {
            0.5
        };
        let [r, g, b] = engine::infer::colour(self.colormap, t);
        Color32::from_rgb(r, g, b)
    }
}

impl Heat {
    /// The uncertainty map as a heat layer: 0 (certain) to 1 (even odds), inferno, over the
    /// slice at 0.6.
    pub fn uncertainty(volume: std::sync::Arc<Volume>) -> Self {
        Self {
            volume,
            low: 0.0,
            high: 1.0,
            colormap: engine::infer::Colormap::Inferno,
            opacity: 0.6,
        }
    }
}

/// Difference classes stored in a class slice.
const TRUE_POSITIVE: u8 = 1;
const FALSE_POSITIVE: u8 = 2;
const FALSE_NEGATIVE: u8 = 3;

/// Renders slice `slice` of `axis`: the windowed image with the visible overlays blended on top.
pub fn render_slice(
    layers: SliceLayers<'_>,
    axis: Axis,
    slice: usize,
    window: Window,
    overlays: &OverlaySettings,
) -> ColorImage {
    let image = layers.image;
    let shape = image.shape();
    let size = slice_size(shape, axis);
    let mut values = Vec::new();
    gather_slice(image.channel(0), shape, axis, slice, &mut values);
    if values.len() != size[0] * size[1] {
        return ColorImage::new([0, 0], Vec::new());
    }
    let ramp = GreyRamp::new(window.width, window.level, MIN_WINDOW_WIDTH);
    let mut pixels: Vec<Color32> = values
        .iter()
        .map(|&value| Color32::from_gray(ramp.grey(value)))
        .collect();
    if let Some(heat) = layers.heat.filter(|h| h.volume.shape() == shape) {
        gather_slice(heat.volume.channel(0), shape, axis, slice, &mut values);
        let blender = Blender::new(heat.opacity);
        in_bands(&mut pixels, &values, size[0], |pixels, values| {
            // Neighbouring voxels often hold the same value: reuse the last colour.
            let mut last: Option<(u32, Color32)> = None;
            for (pixel, &value) in pixels.iter_mut().zip(values) {
                let colour = match last {
                    Some((bits, colour)) if bits == value.to_bits() => colour,
                    _ => {
                        let colour = heat.colour(value);
                        last = Some((value.to_bits(), colour));
                        colour
                    }
                };
                *pixel = blender.blend(*pixel, colour);
            }
        });
    }
    if !overlays.enabled {
        return ColorImage::new(size, pixels);
    }
    let label_slice = |label: Option<&Label>| -> Option<Vec<u16>> {
        let label = label.filter(|l| l.shape() == shape)?;
        let mut labels = Vec::new();
        gather_label_slice(label, axis, slice, &mut labels);
        hide_labels(&mut labels, &overlays.hidden_labels);
        Some(labels)
    };
    let ground_truth = label_slice(layers.ground_truth);
    let prediction = label_slice(layers.prediction);
    for (layer, labels) in [
        (overlays.ground_truth, &ground_truth),
        (overlays.prediction, &prediction),
    ] {
        if layer.visible
            && let Some(labels) = labels
        {
            let outline = layer.style == LayerStyle::Outline;
            paint(&mut pixels, labels, size, outline, |v| {
                let value = u32::from(v);
                (overlays.label_colour(value), overlays.label_opacity(value))
            });
        }
    }
    if overlays.difference.visible
        && let (Some(truth), Some(predicted)) = (&ground_truth, &prediction)
    {
        let classes: Vec<u8> = truth
            .iter()
            .zip(predicted)
            .map(|(&t, &p)| difference_class(t, p))
            .collect();
        let outline = overlays.difference.style == LayerStyle::Outline;
        paint(&mut pixels, &classes, size, outline, |class| {
            (difference_colour(class), overlays.opacity)
        });
    }
    ColorImage::new(size, pixels)
}

/// TP when both agree on a foreground value, FP when the prediction adds or changes a value, FN
/// when the prediction misses a ground-truth voxel.
pub fn difference_class(truth: u16, predicted: u16) -> u8 {
    match (truth, predicted) {
        (0, 0) => 0,
        (t, p) if t == p => TRUE_POSITIVE,
        (_, 0) => FALSE_NEGATIVE,
        _ => FALSE_POSITIVE,
    }
}

/// The colour of a difference class.
pub fn difference_colour(class: u8) -> Color32 {
    match class {
        TRUE_POSITIVE => TRUE_POSITIVE_COLOUR,
        FALSE_POSITIVE => FALSE_POSITIVE_COLOUR,
        _ => FALSE_NEGATIVE_COLOUR,
    }
}

/// `under` mixed with `over` at `opacity` (0 keeps `under`, 1 gives `over`), rounded.
pub fn blend(under: Color32, over: Color32, opacity: f32) -> Color32 {
    let opacity = opacity.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - opacity) + f32::from(b) * opacity).round() as u8;
    Color32::from_rgb(
        mix(under.r(), over.r()),
        mix(under.g(), over.g()),
        mix(under.b(), over.b()),
    )
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
