//! Pixel tests of slice colouring against values worked out by hand.

use super::*;
use crate::common::slice_geometry::slice_size;
use engine::volume::{Affine, Geometry};

const SOFT_TISSUE: Window = Window {
    width: 400.0,
    level: 40.0,
};

fn volume(shape: [usize; 3], f: impl FnMut(usize, usize, usize) -> f32) -> Volume {
    let geometry = Geometry {
        shape,
        world_from_voxel: Affine::identity(),
    };
    Volume::from_fn(&geometry, f)
}

/// A label from voxel values, as the loader builds it from a file.
fn label(shape: [usize; 3], f: impl FnMut(usize, usize, usize) -> f32) -> Label {
    Label::from_values(shape, volume(shape, f).voxels()).expect("labels fit in u16")
}

fn only_difference() -> OverlaySettings {
    let mut settings = OverlaySettings {
        opacity: 1.0,
        ..OverlaySettings::default()
    };
    settings.ground_truth.visible = false;
    settings.prediction.visible = false;
    settings.difference.visible = true;
    settings
}

#[test]
fn window_maps_level_to_mid_grey_and_clamps() {
    // (40 - (40 - 200)) * 255 / 400 = 127.5, truncated.
    assert_eq!(SOFT_TISSUE.grey(40.0), 127);
    assert_eq!(SOFT_TISSUE.grey(-160.0), 0);
    assert_eq!(SOFT_TISSUE.grey(-1000.0), 0);
    assert_eq!(SOFT_TISSUE.grey(240.0), 255);
    assert_eq!(SOFT_TISSUE.grey(3000.0), 255);
}

#[test]
fn presets_have_the_published_values() {
    let auto = Window {
        width: 7.0,
        level: 3.0,
    };
    let pairs: Vec<(f32, f32)> = WindowPreset::ALL
        .iter()
        .map(|p| (p.window(auto).width, p.window(auto).level))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (400.0, 40.0),
            (1500.0, -600.0),
            (2000.0, 300.0),
            (80.0, 40.0),
            (7.0, 3.0)
        ]
    );
}

#[test]
fn percentile_window_spans_first_to_ninety_ninth_percentile() {
    let values: Vec<f32> = (0..=100).map(|v| v as f32).collect();
    let window = percentile_window(&values);
    assert!((window.width - 98.0).abs() < 1e-4, "{window:?}");
    assert!((window.level - 50.0).abs() < 1e-4, "{window:?}");
}

#[test]
fn ground_truth_fill_blends_at_opacity_on_the_right_pixel() {
    let image = volume([2, 2, 1], |_, _, _| 40.0);
    // Voxel (1, 1) is right and anterior: the top-left screen pixel of the axial view.
    let truth = label([2, 2, 1], |x, y, _| if (x, y) == (1, 1) { 1.0 } else { 0.0 });
    let settings = OverlaySettings {
        opacity: 0.5,
        ..OverlaySettings::default()
    };
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&truth),
        prediction: None,
        heat: None,
    };
    let slice = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &settings);
    // 0.5 · 127 + 0.5 · (230, 60, 60) = (178.5, 93.5, 93.5), rounded half away from zero.
    assert_eq!(slice.pixels[0], Color32::from_rgb(179, 94, 94));
    assert_eq!(slice.pixels[1..], [Color32::from_gray(127); 3]);

    let switched_off = OverlaySettings {
        enabled: false,
        ..settings.clone()
    };
    let plain = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &switched_off);
    assert_eq!(plain.pixels, vec![Color32::from_gray(127); 4]);

    let mut hidden = settings;
    hidden.hidden_labels.insert(1);
    let plain = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &hidden);
    assert_eq!(plain.pixels, vec![Color32::from_gray(127); 4]);
}

#[test]
fn difference_marks_true_positives_false_positives_and_false_negatives() {
    let image = volume([2, 2, 1], |_, _, _| 40.0);
    // Ground truth on the anterior row (y = 1); prediction on the right column (x = 1).
    let truth = label([2, 2, 1], |_, y, _| if y == 1 { 1.0 } else { 0.0 });
    let predicted = label([2, 2, 1], |x, _, _| if x == 1 { 1.0 } else { 0.0 });
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&truth),
        prediction: Some(&predicted),
        heat: None,
    };
    let slice = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &only_difference());
    // Screen pixel (c, r) shows voxel (1 - c, 1 - r).
    assert_eq!(
        slice.pixels,
        vec![
            TRUE_POSITIVE_COLOUR,    // voxel (1, 1): both
            FALSE_NEGATIVE_COLOUR,   // voxel (0, 1): truth only
            FALSE_POSITIVE_COLOUR,   // voxel (1, 0): prediction only
            Color32::from_gray(127), // voxel (0, 0): neither
        ]
    );
}

#[test]
fn outline_draws_only_the_border_of_a_region() {
    let image = volume([5, 5, 1], |_, _, _| 40.0);
    let square = label([5, 5, 1], |x, y, _| {
        if (1..=3).contains(&x) && (1..=3).contains(&y) {
            2.0
        } else {
            0.0
        }
    });
    let mut settings = OverlaySettings {
        opacity: 1.0,
        ..OverlaySettings::default()
    };
    settings.ground_truth.style = LayerStyle::Outline;
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&square),
        prediction: None,
        heat: None,
    };
    let slice = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &settings);
    let at = |column: usize, row: usize| slice.pixels[row * 5 + column];
    let grey = Color32::from_gray(127);
    assert_eq!(at(0, 0), grey);
    assert_eq!(at(2, 2), grey, "the inside of the square stays unpainted");
    for (column, row) in [(1, 1), (2, 1), (3, 1), (1, 2), (3, 2), (1, 3), (2, 3), (3, 3)] {
        assert_eq!(at(column, row), label_colour(2), "pixel ({column}, {row})");
    }
}

#[test]
fn overlays_of_another_shape_are_ignored() {
    let image = volume([2, 2, 1], |_, _, _| 40.0);
    let wrong = label([3, 2, 1], |_, _, _| 1.0);
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&wrong),
        prediction: Some(&wrong),
        heat: None,
    };
    let slice = render_slice(layers, Axis::Coronal, 0, SOFT_TISSUE, &OverlaySettings::default());
    assert_eq!(slice.pixels, vec![Color32::from_gray(127); 2]);
}

#[test]
fn heat_map_blends_its_colour_under_the_label_overlays() {
    // Image at the window's level (grey 127); map values 0..3 along x, range 0..3, grey colour
    // map, opacity 0.5: voxel x gives round((127 + 255 x / 3) / 2). The label on x = 3 is
    // painted over the heat at opacity 1. Columns run from x = 3 (left) to x = 0.
    let image = volume([4, 1, 1], |_, _, _| 40.0);
    let map = volume([4, 1, 1], |x, _, _| x as f32);
    let marked = label([4, 1, 1], |x, _, _| f32::from(x == 3));
    let heat = Heat {
        volume: std::sync::Arc::new(map),
        low: 0.0,
        high: 3.0,
        colormap: engine::infer::Colormap::Grey,
        opacity: 0.5,
    };
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&marked),
        prediction: None,
        heat: Some(&heat),
    };
    let settings = OverlaySettings {
        opacity: 1.0,
        ..OverlaySettings::default()
    };
    let slice = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &settings);
    let greys: Vec<u8> = slice.pixels[1..].iter().map(|p| p.r()).collect();
    assert_eq!(greys, vec![149, 106, 64]);
    assert_eq!(slice.pixels[0], label_colour(1));
    // A map on another grid is not drawn.
    let other = Heat {
        volume: std::sync::Arc::new(volume([2, 2, 1], |_, _, _| 3.0)),
        ..heat
    };
    let layers = SliceLayers {
        heat: Some(&other),
        ..layers
    };
    let slice = render_slice(layers, Axis::Axial, 0, SOFT_TISSUE, &settings);
    assert_eq!(slice.pixels[3], Color32::from_gray(127));
}

/// The straightforward per-pixel definition of a rendered slice, the reference for the fast
/// path: each screen pixel looks up its own voxel (`voxel_at_pixel`, `Volume::at`) in every
/// layer, colours it with `Window::grey`, `Heat::colour`, the hidden-label set and `blend` (which
/// rounds with `f32::round`), and tests the outline on its four screen neighbours.
fn reference_render(
    layers: SliceLayers<'_>,
    axis: Axis,
    slice: usize,
    window: Window,
    overlays: &OverlaySettings,
) -> Vec<Color32> {
    use crate::common::slice_geometry::voxel_at_pixel;
    let shape = layers.image.shape();
    let [columns, rows] = slice_size(shape, axis);
    let at = |volume: &Volume, column: usize, row: usize| {
        let [x, y, z] = voxel_at_pixel(shape, axis, slice, [column, row]);
        volume.at(x, y, z)
    };
    let label_at = |label: Option<&Label>, column: usize, row: usize| {
        label.map(|l| {
            let value = l
                .at(voxel_at_pixel(shape, axis, slice, [column, row]))
                .unwrap_or(0);
            if overlays.hidden_labels.contains(&u32::from(value)) {
                0
            } else {
                value
            }
        })
    };
    // The class of a pixel in a layer; `None` outside the slice or when the layer is missing.
    let class_at = |layer: usize, column: isize, row: isize| -> Option<u16> {
        if column < 0 || row < 0 || column >= columns as isize || row >= rows as isize {
            return None;
        }
        let (column, row) = (column as usize, row as usize);
        let truth = label_at(layers.ground_truth, column, row);
        let predicted = label_at(layers.prediction, column, row);
        match layer {
            0 => truth,
            1 => predicted,
            _ => Some(u16::from(difference_class(truth?, predicted?))),
        }
    };
    let mut pixels = Vec::new();
    for row in 0..rows {
        for column in 0..columns {
            let mut pixel = Color32::from_gray(window.grey(at(layers.image, column, row)));
            if let Some(heat) = layers.heat {
                pixel = blend(pixel, heat.colour(at(&heat.volume, column, row)), heat.opacity);
            }
            let styles = [overlays.ground_truth, overlays.prediction, overlays.difference];
            for (layer, settings) in styles.iter().enumerate() {
                let (c, r) = (column as isize, row as isize);
                let Some(value) = class_at(layer, c, r).filter(|v| *v != 0) else {
                    continue;
                };
                if !overlays.enabled || !settings.visible {
                    continue;
                }
                let border = [(c - 1, r), (c + 1, r), (c, r - 1), (c, r + 1)]
                    .iter()
                    .any(|&(nc, nr)| class_at(layer, nc, nr) != Some(value));
                if settings.style == LayerStyle::Outline && !border {
                    continue;
                }
                let (colour, opacity) = if layer == 2 {
                    (difference_colour(value as u8), overlays.opacity)
                } else {
                    // A legend style replaces the palette colour and scales the opacity.
                    match overlays.label_styles.get(&u32::from(value)) {
                        Some(style) => (
                            Color32::from_rgb(style.colour[0], style.colour[1], style.colour[2]),
                            overlays.opacity * style.opacity,
                        ),
                        None => (label_colour(u32::from(value)), overlays.opacity),
                    }
                };
                pixel = blend(pixel, colour, opacity);
            }
            pixels.push(pixel);
        }
    }
    pixels
}

#[test]
fn fast_rendering_matches_the_per_pixel_definition_on_every_axis_and_slice() {
    // Odd sizes on every axis; intensities across and beyond the window, NaN included; labels
    // read from values with fractions, negatives, NaN, a hidden value and the largest byte; a
    // continuous heat map with values outside its range.
    let shape = [7, 6, 5];
    let image = volume(shape, |x, y, z| match (x + 2 * y + 3 * z) % 11 {
        0 => f32::NAN,
        k => k as f32 * 47.3 - 230.0,
    });
    // The second set needs two bytes per voxel: labels above 255 side by side with small ones
    // (256 next to 255 and 4, whose colours are the same palette entry).
    let byte_values = [0.0, 1.0, 1.4, 1.6, 2.0, 3.0, -1.0, f32::NAN, 255.0, 0.49, 4.0];
    let wide_values = [
        0.0,
        1.0,
        300.0,
        301.0,
        2.0,
        65_535.0,
        256.0,
        f32::NAN,
        255.0,
        4.0,
        7.0,
    ];
    let labels = |values: &[f32; 11]| {
        let truth = label(shape, |x, y, z| values[(x * y + z) % values.len()]);
        let predicted = label(shape, |x, y, z| {
            if (x + y) % 3 == 0 || z == 2 {
                values[(x + y * z) % values.len()]
            } else {
                f32::from(x > 3)
            }
        });
        (truth, predicted)
    };
    let byte_labels = labels(&byte_values);
    let wide_labels = labels(&wide_values);
    assert!(matches!(byte_labels.0, Label::U8(_)));
    assert!(matches!(wide_labels.0, Label::U16(_)));
    let heat = Heat {
        volume: std::sync::Arc::new(volume(shape, |x, y, z| {
            (x as f32 * 0.37 - y as f32 * 0.21 + z as f32 * 0.13).sin() * 1.3
        })),
        low: -1.0,
        high: 1.0,
        colormap: engine::infer::Colormap::Inferno,
        opacity: 0.6,
    };
    let mut settings = Vec::new();
    for style in [LayerStyle::Fill, LayerStyle::Outline] {
        for (opacity, hidden, styled) in [(0.45, vec![], false), (0.3, vec![2, 255, 301], true)] {
            let mut s = OverlaySettings {
                opacity,
                hidden_labels: hidden.into_iter().collect(),
                ..OverlaySettings::default()
            };
            if styled {
                // Label 1 recoloured and half as opaque, label 4 opaque, label 256 invisible.
                for (value, colour, opacity) in [
                    (1, [10, 200, 30], 0.5),
                    (4, [250, 250, 0], 1.0),
                    (256, [0, 0, 255], 0.0),
                ] {
                    s.label_styles.insert(value, LabelStyle { colour, opacity });
                }
            }
            s.ground_truth.style = style;
            s.difference.visible = true;
            s.difference.style = style;
            settings.push(s.clone());
            s.enabled = false;
            settings.push(s);
        }
    }
    let mut compared = 0;
    for ((truth, predicted), heat) in [&byte_labels, &wide_labels]
        .into_iter()
        .flat_map(|labels| [(labels, None), (labels, Some(&heat))])
    {
        let layers = SliceLayers {
            image: &image,
            ground_truth: Some(truth),
            prediction: Some(predicted),
            heat,
        };
        for axis in Axis::ALL {
            for slice in 0..shape[axis.normal()] {
                for overlays in &settings {
                    let fast = render_slice(layers, axis, slice, SOFT_TISSUE, overlays);
                    let expected = reference_render(layers, axis, slice, SOFT_TISSUE, overlays);
                    assert_eq!(fast.size, slice_size(shape, axis));
                    assert_eq!(fast.pixels, expected, "{axis:?} slice {slice} {overlays:?}");
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 2 * 2 * (5 + 6 + 7) * 8);
}

/// A slice large enough to be coloured on several threads (`slice_pixels::in_bands`): the
/// axial slice of a 301 × 263 × 3 volume (79,163 pixels, rows not a multiple of any band count)
/// with a heat map under the overlays, against the per-pixel definition.
#[test]
fn a_large_slice_coloured_in_bands_matches_the_per_pixel_definition() {
    let shape = [301, 263, 3];
    let image = volume(shape, |x, y, z| ((x * 7 + y * 13 + z * 3) % 400) as f32 - 150.0);
    let truth = label(shape, |x, y, _| f32::from((x / 40 + y / 30) % 3 == 0));
    let predicted = label(
        shape,
        |x, y, _| if (x / 35 + y / 25) % 4 == 0 { 2.0 } else { 0.0 },
    );
    let heat = Heat {
        volume: std::sync::Arc::new(volume(shape, |x, y, z| {
            (x as f32 * 0.037 - y as f32 * 0.021 + z as f32 * 0.13).sin() * 1.3
        })),
        low: -1.0,
        high: 1.0,
        colormap: engine::infer::Colormap::Viridis,
        opacity: 0.6,
    };
    let layers = SliceLayers {
        image: &image,
        ground_truth: Some(&truth),
        prediction: Some(&predicted),
        heat: Some(&heat),
    };
    let mut overlays = OverlaySettings::default();
    overlays.difference.visible = true;
    let fast = render_slice(layers, Axis::Axial, 1, SOFT_TISSUE, &overlays);
    assert!(
        fast.pixels.len() >= 1 << 16,
        "the slice must be large enough to be threaded"
    );
    let expected = reference_render(layers, Axis::Axial, 1, SOFT_TISSUE, &overlays);
    assert!(
        fast.pixels == expected,
        "the banded colours differ from the per-pixel definition"
    );
}

#[test]
fn hidden_labels_become_background_and_others_stay() {
    use crate::viewer::slice_pixels::hide_labels;
    let mut labels: Vec<u16> = (0..=400).collect();
    hide_labels(&mut labels, &BTreeSet::from([1, 7, 255, 300, 70_000]));
    for (value, shown) in labels.iter().enumerate() {
        let expected = if [1, 7, 255, 300].contains(&value) {
            0
        } else {
            value as u16
        };
        assert_eq!(*shown, expected, "label {value}");
    }
}

#[test]
fn the_committed_palette_has_20_distinct_colours_before_it_repeats() {
    let colours = label_colours();
    let lines = LABEL_PALETTE_TEXT
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
        .count();
    assert_eq!(colours.len(), lines, "every palette line parses");
    assert!(colours.len() >= 20, "{} colours", colours.len());
    // "Redmean" distance (a cheap perceptual approximation); 100 is far apart on any slice.
    let distance = |a: Color32, b: Color32| {
        let mean_red = (f64::from(a.r()) + f64::from(b.r())) / 2.0;
        let [dr, dg, db] = [
            f64::from(a.r()) - f64::from(b.r()),
            f64::from(a.g()) - f64::from(b.g()),
            f64::from(a.b()) - f64::from(b.b()),
        ];
        ((2.0 + mean_red / 256.0) * dr * dr + 4.0 * dg * dg + (2.0 + (255.0 - mean_red) / 256.0) * db * db)
            .sqrt()
    };
    for (i, a) in colours.iter().enumerate() {
        for b in &colours[i + 1..] {
            assert!(distance(*a, *b) >= 100.0, "{a:?} and {b:?} are too alike");
        }
    }
    let n = colours.len() as u32;
    assert_eq!(label_colour(1), colours[0]);
    assert_eq!(label_colour(n), colours[colours.len() - 1]);
    assert_eq!(label_colour(n + 1), colours[0], "repeats after the last");
    assert_eq!(
        parse_palette("# comment\n1 2 3\nnot a colour\n4 5\n7 8 9\n"),
        [Color32::from_rgb(1, 2, 3), Color32::from_rgb(7, 8, 9)]
    );
}
