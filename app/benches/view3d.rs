//! Times the 3D view on a 512 × 512 × 400 label (0.8 × 0.8 × 1.5 mm): making the surfaces of
//! each label (the engine's marching tetrahedra, as the view's thread does after a case opens or
//! an edit ends), clustering them to the software renderers' triangle budget, uploading them, and
//! drawing frames while the camera turns, on the wgpu pipeline the window uses (Mesa's lavapipe
//! on a machine without a GPU; the full surfaces too, as a real GPU draws them) and with the CPU
//! rasteriser the glow fallback uses. Prints milliseconds and frames per second
//! (medians). No criterion: `harness = false`, a plain `main`.
//!
//! Run: `cargo bench -p app --bench view3d` (add `xvfb-run -a` in front to run it as the window
//! does under Xvfb; the picture is drawn off screen either way).

// Printing the timings is the whole point of this binary.
#![allow(clippy::print_stdout)]

use app::viewer::surface_gpu::{DrawUniforms, GpuMesh, OffscreenTarget, SurfacePipeline, headless_device};
use app::viewer::surface_render::{BACKGROUND, Camera, Projection, Scene, render};
use app::viewer::view3d::{SOFTWARE_TRIANGLES, display_mesh};
use eframe::egui::Color32;
use engine::mesh::{Mesh, SurfaceOptions, label_surface};
use engine::volume::{Affine, Geometry, Volume};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The app's allocator (see `app/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHAPE: [usize; 3] = [512, 512, 400];
/// The maximised 3D view on a 1280 × 820 window, pixels.
const PICTURE: [usize; 2] = [1260, 760];
const FRAMES: usize = 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let affine = Affine::from_diagonal([0.8, 0.8, 1.5]);
    let geometry = Geometry {
        shape: SHAPE,
        world_from_voxel: affine,
    };
    // An organ: an ellipsoid (semi-axes 170, 130, 110 voxels) with a bumpy boundary, and five
    // lesions (label 2) inside and on its edge.
    let centre = SHAPE.map(|n| n as f32 / 2.0);
    let lesions = [
        ([0.0f32, 0.0, 0.0], 30.0f32),
        ([90.0, 40.0, 20.0], 18.0),
        ([-100.0, -30.0, -40.0], 22.0),
        ([40.0, -90.0, 50.0], 14.0),
        ([160.0, 0.0, 0.0], 20.0),
    ];
    let started = Instant::now();
    let volume = Volume::from_fn(&geometry, |x, y, z| {
        let d = [x as f32 - centre[0], y as f32 - centre[1], z as f32 - centre[2]];
        for (at, radius) in lesions {
            let r2: f32 = (0..3).map(|a| (d[a] - at[a]).powi(2)).sum();
            if r2 < radius * radius {
                return 2.0;
            }
        }
        let bump = 1.0 + 0.06 * (d[0] * 0.05).sin() * (d[1] * 0.04).cos() + 0.04 * (d[2] * 0.07).sin();
        let e = (d[0] / 170.0).powi(2) + (d[1] / 130.0).powi(2) + (d[2] / 110.0).powi(2);
        if e < bump * bump { 1.0 } else { 0.0 }
    });
    let Ok(label) = app::common::label::label_from_volume(&volume) else {
        println!("cannot build the label");
        return;
    };
    drop(volume);
    println!(
        "built a {SHAPE:?} label in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let never = AtomicBool::new(false);
    let mut meshes: Vec<(Mesh, Color32)> = Vec::new();
    for (value, colour) in [
        (1u32, Color32::from_rgb(230, 60, 60)),
        (2, Color32::from_rgb(60, 200, 90)),
    ] {
        let started = Instant::now();
        match label_surface(&label, SHAPE, value, &affine, &SurfaceOptions::default(), &never) {
            Ok(Some(mesh)) => {
                println!(
                    "surface of label {value}: {} triangles in {:.2} s",
                    mesh.triangles.len(),
                    started.elapsed().as_secs_f64()
                );
                meshes.push((mesh, colour));
            }
            Ok(None) => println!("label {value} is empty"),
            Err(e) => println!("label {value}: {e}"),
        }
    }
    let triangles: usize = meshes.iter().map(|(m, _)| m.triangles.len()).sum();
    let started = Instant::now();
    let clustered: Vec<(Mesh, Color32)> = meshes
        .iter()
        .map(|(mesh, colour)| (display_mesh(mesh, Some(SOFTWARE_TRIANGLES), 1.0), *colour))
        .collect();
    let shown_triangles: usize = clustered.iter().map(|(m, _)| m.triangles.len()).sum();
    println!(
        "clustered {triangles} triangles to {shown_triangles} (at most {SOFTWARE_TRIANGLES} per surface) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let last = SHAPE.map(|n| (n - 1) as f64);
    let scene = Scene {
        centre: affine.apply(last.map(|v| v / 2.0)),
        radius: affine.distance_mm([0.0; 3], last) / 2.0,
    };
    let camera_at = |frame: usize| Camera {
        yaw: -0.5 + frame as f64 * 0.05,
        pitch: 0.35,
        zoom: 1.3,
        pan: [0.0; 2],
    };

    match headless_device() {
        Err(why) => println!("wgpu: skipped ({why})"),
        Ok((adapter, device, queue)) => {
            let info = adapter.get_info();
            println!(
                "wgpu adapter: {} ({:?}, {:?})",
                info.name, info.backend, info.device_type
            );
            let mut pipeline = SurfacePipeline::new(&device, wgpu::TextureFormat::Rgba8Unorm);
            // As the window: one target, drawn into every frame (not read back).
            let target = OffscreenTarget::new(&device, PICTURE);
            for (what, set, frames) in [("clustered", &clustered, FRAMES), ("full", &meshes, 10)] {
                let count: usize = set.iter().map(|(m, _)| m.triangles.len()).sum();
                let started = Instant::now();
                let uploaded: Vec<(Arc<GpuMesh>, Color32)> = set
                    .iter()
                    .filter_map(|(mesh, colour)| {
                        GpuMesh::upload(&device, mesh).map(|m| (Arc::new(m), *colour))
                    })
                    .collect();
                let upload_s = started.elapsed().as_secs_f64();
                let mut times = Vec::new();
                for frame in 0..=frames {
                    let projection = Projection::new(&camera_at(frame), &scene, PICTURE);
                    let draws: Vec<(Arc<GpuMesh>, DrawUniforms)> = uploaded
                        .iter()
                        .map(|(mesh, colour)| {
                            let block =
                                DrawUniforms::new(&projection, PICTURE, 1.5 * scene.radius + 10.0, *colour);
                            (Arc::clone(mesh), block)
                        })
                        .collect();
                    let started = Instant::now();
                    if let Err(e) = target.draw(&device, &queue, &mut pipeline, BACKGROUND, &draws) {
                        println!("wgpu frame {frame}: {e}");
                        return;
                    }
                    // The first frame compiles the pipeline's shaders: not counted.
                    if frame > 0 {
                        times.push(started.elapsed().as_secs_f64() * 1e3);
                    }
                }
                let ms = median(times);
                println!(
                    "wgpu, {what}: {count} triangles (uploaded in {upload_s:.3} s) at {}×{}: {ms:.1} ms per frame (drawn, GPU waited for), {:.1} frames/s (median of {frames})",
                    PICTURE[0],
                    PICTURE[1],
                    1e3 / ms
                );
            }
        }
    }

    let shown: Vec<(&Mesh, Color32)> = clustered.iter().map(|(m, c)| (m, *c)).collect();
    // The CPU fallback draws at most 1024 pixels across.
    let size = [1024, 618];
    let mut times = Vec::new();
    for frame in 0..5 {
        let projection = Projection::new(&camera_at(frame), &scene, size);
        let started = Instant::now();
        let drawn = render(&shown, &projection, size);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(drawn);
    }
    let ms = median(times);
    println!(
        "CPU rasteriser, clustered: {shown_triangles} triangles at {}×{}: {ms:.1} ms per frame, {:.1} frames/s (median of 5)",
        size[0],
        size[1],
        1e3 / ms
    );
}
