use super::*;
use crate::viewer::surface_render::tests::sphere;
use crate::viewer::surface_render::{BACKGROUND, Camera, Scene, render};

#[test]
fn the_gpu_draws_the_same_picture_as_the_cpu_rasteriser() {
    // Two overlapping balls in two colours, seen from an oblique camera, drawn by the wgpu
    // pipeline (Mesa's lavapipe here) and by the independent CPU rasteriser: the same pixels are
    // covered and shaded alike, and the nearer ball hides the farther one in both.
    let (_adapter, device, queue) = match headless_device() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("skipped: the wgpu surface pipeline needs an adapter ({why})");
            return;
        }
    };
    let meshes = [
        (sphere([0.0, 0.0, 0.0], 12.0), Color32::from_rgb(230, 60, 60)),
        (sphere([9.0, -6.0, 4.0], 8.0), Color32::from_rgb(70, 120, 240)),
    ];
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
    let size = [160, 120];
    let projection = Projection::new(&camera, &scene, size);
    let mut pipeline = SurfacePipeline::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let draws: Vec<(Arc<GpuMesh>, DrawUniforms)> = meshes
        .iter()
        .map(|(mesh, colour)| {
            let gpu = GpuMesh::upload(&device, mesh).expect("triangles");
            (
                Arc::new(gpu),
                DrawUniforms::new(&projection, size, 2.0 * scene.radius, *colour),
            )
        })
        .collect();
    let gpu = draw_offscreen(&device, &queue, &mut pipeline, size, BACKGROUND, &draws).expect("read back");
    let shown: Vec<(&Mesh, Color32)> = meshes.iter().map(|(m, c)| (m, *c)).collect();
    let cpu = render(&shown, &projection, size);
    assert_eq!(gpu.len(), size[0] * size[1] * 4);
    let (mut covered_cpu, mut covered_gpu, mut differing) = (0, 0, 0);
    let (mut red, mut blue) = (0, 0);
    for (i, expected) in cpu.image.pixels.iter().enumerate() {
        let found = &gpu[4 * i..4 * i + 3];
        covered_cpu += usize::from(*expected != BACKGROUND);
        covered_gpu += usize::from(found != [BACKGROUND.r(), BACKGROUND.g(), BACKGROUND.b()]);
        let channels = [expected.r(), expected.g(), expected.b()];
        if channels.iter().zip(found).any(|(a, b)| a.abs_diff(*b) > 2) {
            differing += 1;
        }
        // Which ball shows: the red channel dominates on the first, the blue on the second.
        let (r, b) = (i32::from(found[0]), i32::from(found[2]));
        if r > b + 20 {
            red += 1;
        } else if b > r + 20 {
            blue += 1;
        }
    }
    assert!(covered_cpu > 2000, "the balls cover {covered_cpu} pixels");
    assert!(
        covered_cpu.abs_diff(covered_gpu) * 200 <= covered_cpu,
        "covered: CPU {covered_cpu}, GPU {covered_gpu}"
    );
    // Only pixels on silhouettes and on the curve where the balls meet may differ.
    assert!(
        differing * 50 <= covered_cpu,
        "{differing} of {covered_cpu} pixels differ by more than 2 levels"
    );
    assert!(red > 500 && blue > 300, "red {red}, blue {blue} pixels");
}
