//! Times slice extraction + colouring (window/level, ground truth fill, prediction outline,
//! difference) for axial, coronal and sagittal slices of a 512 × 512 × 400 volume, and prints
//! milliseconds per slice; the same with an activation map blended under the overlays; and
//! the time to save an edited 512 × 512 × 400 label as .nii.gz in the scan's own (LPS) grid, as
//! the Save button does. No criterion: `harness = false`, a plain `main`.
//!
//! Run: `cargo bench -p app --bench slices --profile dev` (the dev profile builds the app at
//! opt-level 1; a release build is faster).

// Printing the timings is the whole point of this binary.
#![allow(clippy::print_stdout)]

use app::common::slice_geometry::Axis;
use app::viewer::render::{Heat, OverlaySettings, SliceLayers, Window, render_slice};
use engine::volume::{
    Affine, DataType, Geometry, Volume, WriteOptions, read_nifti, reorient_to_canonical, write_nifti,
};
use std::time::Instant;

/// The app's allocator (see `app/src/main.rs`), so the volumes live where they live in the app.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHAPE: [usize; 3] = [512, 512, 400];
const SLICES_PER_AXIS: usize = 20;

fn main() {
    let geometry = Geometry {
        shape: SHAPE,
        world_from_voxel: Affine::from_diagonal([0.8, 0.8, 1.5]),
    };
    let centre = SHAPE.map(|n| n as f32 / 2.0);
    let ball = |shift: f32, radius: f32| {
        Volume::from_fn(&geometry, move |x, y, z| {
            let d = [
                x as f32 - centre[0] - shift,
                y as f32 - centre[1],
                z as f32 - centre[2],
            ];
            let r2 = d.iter().map(|v| v * v).sum::<f32>();
            if r2 < (radius / 2.0).powi(2) {
                2.0
            } else if r2 < radius * radius {
                1.0
            } else {
                0.0
            }
        })
    };
    let started = Instant::now();
    let image = Volume::from_fn(&geometry, |x, y, z| {
        ((x * 7 + y * 13 + z * 3) % 400) as f32 - 150.0
    });
    let as_label = |volume: Volume| app::common::label::label_from_volume(&volume);
    let (Ok(ground_truth), Ok(prediction)) = (as_label(ball(0.0, 120.0)), as_label(ball(15.0, 110.0))) else {
        println!("cannot build the labels");
        return;
    };
    println!(
        "built 3 volumes of {SHAPE:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let heat = Heat {
        volume: std::sync::Arc::new(ball(-10.0, 150.0)),
        low: 0.0,
        high: 2.0,
        colormap: engine::infer::Colormap::Inferno,
        opacity: 0.6,
    };
    let mut layers = SliceLayers {
        image: &image,
        ground_truth: Some(&ground_truth),
        prediction: Some(&prediction),
        heat: None,
    };
    let window = Window {
        width: 400.0,
        level: 40.0,
    };
    let mut overlays = OverlaySettings::default();
    overlays.difference.visible = true;
    time_slices(layers, window, &overlays, "");
    layers.heat = Some(&heat);
    time_slices(layers, window, &overlays, " + activation map");
    time_save(&ground_truth);
}

fn time_slices(layers: SliceLayers<'_>, window: Window, overlays: &OverlaySettings, what: &str) {
    for axis in Axis::ALL {
        let count = SHAPE[axis.normal()];
        // Slices through the labelled middle, where every layer has work to do.
        let slices: Vec<usize> = (0..SLICES_PER_AXIS)
            .map(|i| count / 2 - SLICES_PER_AXIS / 2 + i)
            .collect();
        let started = Instant::now();
        let mut checksum = 0u64;
        for slice in &slices {
            let picture = render_slice(layers, axis, *slice, window, overlays);
            checksum += u64::from(picture.pixels[picture.pixels.len() / 2].r());
        }
        let per_slice_ms = started.elapsed().as_secs_f64() * 1000.0 / slices.len() as f64;
        let [columns, rows] = app::common::slice_geometry::slice_size(SHAPE, axis);
        println!(
            "{:<8} {columns:>3} × {rows:>3} px{what}: {per_slice_ms:7.2} ms per slice (checksum {checksum})",
            axis.name()
        );
    }
}

/// Saves `label` (on the RAS+ grid) into an LPS scan's geometry, as the Save button does.
fn time_save(label: &app::common::label::Label) {
    let Ok(dir) = tempfile::tempdir() else {
        println!("no temporary folder: save not timed");
        return;
    };
    // An LPS scan: the viewer's RAS+ label must be flipped back on two axes before writing.
    let scan_grid = Geometry {
        shape: SHAPE,
        world_from_voxel: Affine::from_diagonal([-0.8, -0.8, 1.5]),
    };
    let scan = Volume::zeros(&scan_grid);
    let scan_path = dir.path().join("scan.nii.gz");
    let written = write_nifti(&scan_path, &scan, None, WriteOptions::new(DataType::I16));
    let Ok(header) = written.and_then(|()| read_nifti(&scan_path)).map(|s| s.header) else {
        println!("cannot write the scan: save not timed");
        return;
    };
    let Ok(in_scan_grid) = Volume::new(SHAPE, 1, label.to_f32(), scan_grid.world_from_voxel) else {
        println!("cannot build the label: save not timed");
        return;
    };
    let Ok(canonical) = app::common::label::label_from_volume(&reorient_to_canonical(&in_scan_grid)) else {
        println!("cannot build the label: save not timed");
        return;
    };
    let path = dir.path().join("labelsCorrected").join("case.nii.gz");
    let started = Instant::now();
    match app::io::label_io::save_label(&path, &canonical, &scan_grid, &header) {
        Ok(()) => println!(
            "save 512 × 512 × 400 label (reorient + uint8 .nii.gz, atomic): {:.0} ms, {:.1} MB",
            started.elapsed().as_secs_f64() * 1000.0,
            std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6)
        ),
        Err(error) => println!("save failed: {error:#}"),
    }
}
