use super::*;
use crate::viewer::surface_render::tests::sphere;
use crate::viewer::surface_render::{BACKGROUND, Camera, Rendered, Scene, render};

/// `meshes` drawn by the wgpu pipeline (Mesa's lavapipe here) and by the independent CPU
/// rasteriser from an oblique camera: the GPU's pixels (RGBA) and the CPU's picture; `None`, with
/// the reason printed, when wgpu finds no adapter.
fn draw_both(meshes: &[(Mesh, Color32)]) -> Option<(Vec<u8>, Rendered)> {
    let (_adapter, device, queue) = match headless_device() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("skipped: the wgpu surface pipeline needs an adapter ({why})");
            return None;
        }
    };
    let scene = Scene {
        centre: [3.0, -2.0, 1.0],
        radius: 24.0,
    };
    let camera = Camera {
        yaw: 0.7,
        pitch: -0.3,
        zoom: 1.2,
        pan: [5.0, -4.0],
    };
    let projection = Projection::new(&camera, &scene, SIZE);
    let mut pipeline = SurfacePipeline::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let draws: Vec<(Arc<GpuMesh>, DrawUniforms)> = meshes
        .iter()
        .map(|(mesh, colour)| {
            let gpu = GpuMesh::upload(&device, mesh).expect("triangles");
            (
                Arc::new(gpu),
                DrawUniforms::new(&projection, SIZE, 2.0 * scene.radius, *colour),
            )
        })
        .collect();
    let gpu = draw_offscreen(&device, &queue, &mut pipeline, SIZE, BACKGROUND, &draws).expect("read back");
    assert_eq!(gpu.len(), SIZE[0] * SIZE[1] * 4);
    let shown: Vec<(&Mesh, Color32)> = meshes.iter().map(|(m, c)| (m, *c)).collect();
    Some((gpu, render(&shown, &projection, SIZE)))
}

const SIZE: [usize; 2] = [160, 120];

/// Pixels covered by the CPU and by the GPU, and pixels whose colours differ by more than
/// `levels` in a channel; each within its bound (silhouettes and the curves where surfaces meet
/// may differ).
fn assert_alike(gpu: &[u8], cpu: &Rendered, levels: u8) {
    let (mut covered_cpu, mut covered_gpu, mut differing) = (0, 0, 0);
    for (i, expected) in cpu.image.pixels.iter().enumerate() {
        let found = &gpu[4 * i..4 * i + 3];
        covered_cpu += usize::from(*expected != BACKGROUND);
        covered_gpu += usize::from(found != [BACKGROUND.r(), BACKGROUND.g(), BACKGROUND.b()]);
        let channels = [expected.r(), expected.g(), expected.b()];
        if channels.iter().zip(found).any(|(a, b)| a.abs_diff(*b) > levels) {
            differing += 1;
        }
    }
    assert!(covered_cpu > 2000, "the balls cover {covered_cpu} pixels");
    assert!(
        covered_cpu.abs_diff(covered_gpu) * 200 <= covered_cpu,
        "covered: CPU {covered_cpu}, GPU {covered_gpu}"
    );
    assert!(
        differing * 50 <= covered_cpu,
        "{differing} of {covered_cpu} pixels differ by more than {levels} levels"
    );
}

#[test]
fn the_gpu_draws_the_same_picture_as_the_cpu_rasteriser() {
    // Two overlapping balls in two colours: the same pixels are covered and shaded alike, and the
    // nearer ball hides the farther one in both.
    let meshes = [
        (sphere([0.0, 0.0, 0.0], 12.0), Color32::from_rgb(230, 60, 60)),
        (sphere([9.0, -6.0, 4.0], 8.0), Color32::from_rgb(70, 120, 240)),
    ];
    let Some((gpu, cpu)) = draw_both(&meshes) else {
        return;
    };
    assert_alike(&gpu, &cpu, 2);
    // Which ball shows: the red channel dominates on the first, the blue on the second.
    let (mut red, mut blue) = (0, 0);
    for found in gpu.chunks(4) {
        let (r, b) = (i32::from(found[0]), i32::from(found[2]));
        if r > b + 20 {
            red += 1;
        } else if b > r + 20 {
            blue += 1;
        }
    }
    assert!(red > 500 && blue > 300, "red {red}, blue {blue} pixels");
}

#[test]
fn the_gpu_blends_a_translucent_surface_as_the_cpu_rasteriser_does() {
    // A 40 %-opaque red ball around an opaque blue one, listed first: both renderers draw the
    // blue ball, then the red one's near side blended over it (one level more of rounding).
    let meshes = [
        (
            sphere([0.0, 0.0, 0.0], 14.0),
            Color32::from_rgba_unmultiplied(230, 60, 60, 102),
        ),
        (sphere([2.0, -1.0, 1.0], 6.0), Color32::from_rgb(70, 120, 240)),
    ];
    let Some((gpu, cpu)) = draw_both(&meshes) else {
        return;
    };
    assert_alike(&gpu, &cpu, 3);
    // The picture stays opaque where the translucent ball is drawn over the cleared background.
    assert!(
        gpu.chunks(4).all(|p| p[3] == 255),
        "alpha below 1 written into the frame"
    );
    // The blue ball shows through: purple pixels (both red and blue well above the background).
    let purple = gpu.chunks(4).filter(|p| p[0] > 90 && p[2] > 90).count();
    assert!(
        purple > 800,
        "{purple} pixels show the inner ball through the outer"
    );
}
