use super::*;
use std::collections::HashMap;
use std::f64::consts::PI;

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// V − E + F of the mesh (2 per closed sphere-like surface), after checking that it is closed and
/// consistently wound: every edge lies on exactly two triangles that run along it in opposite
/// directions.
fn euler_characteristic_of_closed(mesh: &Mesh) -> i64 {
    let mut directed: HashMap<(u32, u32), usize> = HashMap::new();
    for t in &mesh.triangles {
        for k in 0..3 {
            *directed.entry((t[k], t[(k + 1) % 3])).or_default() += 1;
        }
    }
    for (&(a, b), &count) in &directed {
        assert_eq!(count, 1, "edge {a}→{b} runs the same way in {count} triangles");
        assert_eq!(
            directed.get(&(b, a)),
            Some(&1),
            "edge {a}–{b} is open or wound inconsistently"
        );
    }
    let edges = directed.len() as i64 / 2;
    mesh.positions.len() as i64 - edges + mesh.triangles.len() as i64
}

/// The distance field `R − |p − c|` sampled on an `n`³ grid of unit spacing (x fastest): its 0
/// level is the sphere of radius `radius` about `centre` (voxel coordinates).
pub(super) fn sphere_field(n: usize, radius: f64, centre: [f64; 3]) -> Vec<f32> {
    (0..n * n * n)
        .map(|i| {
            let p = [(i % n) as f64, (i / n % n) as f64, (i / (n * n)) as f64];
            let d = p
                .iter()
                .zip(centre)
                .map(|(v, c)| (v - c).powi(2))
                .sum::<f64>()
                .sqrt();
            (radius - d) as f32
        })
        .collect()
}

fn relative_error(found: f64, expected: f64) -> f64 {
    (found - expected).abs() / expected
}

#[test]
fn the_isosurface_of_a_distance_field_is_a_closed_sphere_of_the_closed_form_area_and_volume() {
    // f = R − |p − c| sampled on a 32³ grid: its 0 level is the sphere of radius R. Linear
    // interpolation along edges cuts the sphere's chords, so the mesh lies slightly inside: both
    // errors are of order h²/R² (h = 1 voxel, R = 10), under 1 %.
    let (n, radius, centre) = (32usize, 10.0f64, [15.3f64, 16.1, 15.7]);
    let field = sphere_field(n, radius, centre);
    let mesh = isosurface(&field, [n; 3], 0.0, &Affine::identity(), &never()).expect("mesh");
    assert_eq!(euler_characteristic_of_closed(&mesh), 2);
    let area = mesh.area_mm2();
    let volume = mesh.enclosed_volume_mm3();
    assert!(
        relative_error(area, 4.0 * PI * radius.powi(2)) < 0.01,
        "area {area}"
    );
    assert!(
        relative_error(volume, 4.0 / 3.0 * PI * radius.powi(3)) < 0.01,
        "volume {volume}"
    );
    // Every vertex lies on the sphere to within the interpolation's error (a chord's sagitta,
    // under h²/(8R) plus the diagonal's length: 3h²/(8R) = 0.04 voxel).
    for p in &mesh.positions {
        let d = (0..3)
            .map(|a| (f64::from(p[a]) - centre[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((d - radius).abs() < 0.04, "vertex at distance {d}");
    }
    // Normals point outwards: along p − c.
    for (p, normal) in mesh.positions.iter().zip(&mesh.normals) {
        let radial: Vec<f64> = (0..3).map(|a| f64::from(p[a]) - centre[a]).collect();
        let along = (0..3).map(|a| radial[a] * f64::from(normal[a])).sum::<f64>() / radius;
        assert!(along > 0.95, "normal {normal:?} at {p:?}");
    }
}

/// A label grid holding value `value` at the voxels whose world centre lies within `radius`
/// millimetres of `centre`.
fn voxelised_ball(shape: [usize; 3], affine: &Affine, centre: [f64; 3], radius: f64, value: u16) -> Vec<u16> {
    let [nx, ny, nz] = shape;
    let mut voxels = vec![0u16; nx * ny * nz];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let p = affine.apply([x as f64, y as f64, z as f64]);
                let d2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
                if d2 <= radius * radius {
                    voxels[(z * ny + y) * nx + x] = value;
                }
            }
        }
    }
    voxels
}

#[test]
fn a_voxelised_ball_gives_a_closed_surface_of_the_balls_area_and_volume_in_millimetres() {
    // Anisotropic voxels (0.8 × 1.0 × 1.5 mm), mirrored in x as radiological scans often are, and
    // translated: the surface is measured in world millimetres, so it is the ball's whatever the
    // grid. The voxel steps are smoothed away by the Gaussian (σ = 1 voxel): the volume within
    // 2.5 % and the area within 4 % of 4/3·πR³ and 4πR² (R = 12 mm).
    let affine = Affine::from_parts(
        [[-0.8, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.5]],
        [10.0, -20.0, 5.0],
    );
    let shape = [40, 34, 24];
    let centre = affine.apply([19.2, 16.6, 11.4]);
    let radius = 12.0;
    let voxels = voxelised_ball(shape, &affine, centre, radius, 3);
    let mesh = label_surface(&voxels, shape, 3, &affine, &SurfaceOptions::default(), &never())
        .expect("mesh")
        .expect("the label has voxels");
    assert_eq!(euler_characteristic_of_closed(&mesh), 2);
    let volume = mesh.enclosed_volume_mm3();
    let area = mesh.area_mm2();
    assert!(
        volume > 0.0,
        "outward winding through a mirroring affine: {volume}"
    );
    assert!(
        relative_error(volume, 4.0 / 3.0 * PI * radius.powi(3)) < 0.025,
        "volume {volume}"
    );
    assert!(
        relative_error(area, 4.0 * PI * radius.powi(2)) < 0.04,
        "area {area}"
    );
    // Without smoothing the staircase shows: the area is far larger than the sphere's, while the
    // volume still counts the voxels.
    let blocky = label_surface(
        &voxels,
        shape,
        3,
        &affine,
        &SurfaceOptions { sigma_voxels: 0.0 },
        &never(),
    )
    .expect("mesh")
    .expect("voxels");
    assert_eq!(euler_characteristic_of_closed(&blocky), 2);
    assert!(
        blocky.area_mm2() > 1.1 * 4.0 * PI * radius.powi(2),
        "{}",
        blocky.area_mm2()
    );
    let voxel_volume = 0.8 * 1.0 * 1.5;
    let counted = voxels.iter().filter(|&&v| v == 3).count() as f64 * voxel_volume;
    assert!(relative_error(blocky.enclosed_volume_mm3(), counted) < 0.05);
}

#[test]
fn two_balls_and_a_label_on_the_border_give_one_closed_surface_each() {
    let shape = [30, 16, 16];
    let affine = Affine::identity();
    let mut voxels = voxelised_ball(shape, &affine, [6.0, 7.5, 7.5], 4.0, 1);
    let second = voxelised_ball(shape, &affine, [22.0, 7.5, 7.5], 5.0, 1);
    for (v, s) in voxels.iter_mut().zip(&second) {
        *v = (*v).max(*s);
    }
    // Another label cut by the grid's border (a half ball on x = 0 ... no: on z = 0): still closed.
    let border = voxelised_ball(shape, &affine, [15.0, 8.0, 0.0], 3.0, 2);
    for (v, b) in voxels.iter_mut().zip(&border) {
        if *b == 2 && *v == 0 {
            *v = 2;
        }
    }
    let options = SurfaceOptions::default();
    let balls = label_surface(&voxels, shape, 1, &affine, &options, &never())
        .expect("present")
        .expect("present");
    assert_eq!(euler_characteristic_of_closed(&balls), 4, "two spheres");
    // Smoothing moves a curved surface inwards by about σ²·(mean curvature) = σ²/R: small balls
    // shrink (R = 4 voxels: by a quarter voxel, 18 % of the volume). Within 3 % of that first-order
    // closed form.
    let shrunk = |r: f64| 4.0 / 3.0 * PI * (r - 1.0 / r).powi(3);
    let expected = shrunk(4.0) + shrunk(5.0);
    let found = balls.enclosed_volume_mm3();
    assert!(
        relative_error(found, expected) < 0.03,
        "{found} mm³ for {expected}"
    );
    assert!(
        relative_error(balls.enclosed_volume_mm3(), expected) < 0.08,
        "{}",
        balls.enclosed_volume_mm3()
    );
    let cut = label_surface(&voxels, shape, 2, &affine, &options, &never())
        .expect("present")
        .expect("present");
    assert_eq!(euler_characteristic_of_closed(&cut), 2);
    let (low, _) = cut.bounds().expect("vertices");
    assert!(low[2] < 0.0, "closed beyond the border: {low:?}");
    assert_eq!(
        label_surface(&voxels, shape, 7, &affine, &options, &never()),
        Ok(None)
    );
}

#[test]
fn smoothing_neither_removes_a_one_slice_stroke_nor_bridges_a_one_voxel_gap() {
    let shape = [20, 12, 9];
    let affine = Affine::identity();
    // A disc painted on one slice: the Gaussian alone brings its centre to 0.4, under the level.
    let mut voxels = vec![0u16; 20 * 12 * 9];
    let disc: Vec<usize> = (0..20 * 12)
        .filter(|i| ((i % 20) as f64 - 5.0).powi(2) + ((i / 20) as f64 - 6.0).powi(2) <= 9.0)
        .map(|i| 4 * 20 * 12 + i)
        .collect();
    for &i in &disc {
        voxels[i] = 1;
    }
    let options = SurfaceOptions::default();
    let stroke = label_surface(&voxels, shape, 1, &affine, &options, &never())
        .expect("present")
        .expect("present");
    assert_eq!(euler_characteristic_of_closed(&stroke), 2);
    let volume = stroke.enclosed_volume_mm3();
    assert!(
        volume > 0.1 * disc.len() as f64 && volume < disc.len() as f64,
        "{volume} mm³"
    );
    // Two blocks of label 2 with one unlabelled voxel between them stay two surfaces.
    let mut blocks = vec![0u16; 20 * 12 * 9];
    for z in 2..7 {
        for y in 3..9 {
            for x in (2..9).chain(10..17) {
                blocks[(z * 12 + y) * 20 + x] = 2;
            }
        }
    }
    let apart = label_surface(&blocks, shape, 2, &affine, &options, &never())
        .expect("present")
        .expect("present");
    assert_eq!(
        euler_characteristic_of_closed(&apart),
        4,
        "two closed surfaces, not one"
    );
}

#[test]
fn wrong_sizes_and_cancelling_are_errors() {
    let affine = Affine::identity();
    let wrong = isosurface(&[0.0; 7], [2, 2, 2], 0.5, &affine, &never());
    assert!(matches!(
        wrong,
        Err(MeshError::WrongSize {
            expected: 8,
            found: 7,
            ..
        })
    ));
    let label = vec![1u16; 27];
    let stopped = label_surface(
        &label,
        [3, 3, 3],
        1,
        &affine,
        &SurfaceOptions::default(),
        &AtomicBool::new(true),
    );
    assert_eq!(stopped, Err(MeshError::Cancelled));
    let short = label_surface(
        &label,
        [4, 3, 3],
        1,
        &affine,
        &SurfaceOptions::default(),
        &never(),
    );
    assert!(matches!(short, Err(MeshError::WrongSize { .. })));
}

#[test]
fn gaussian_smoothing_spreads_an_impulse_as_the_sampled_normalised_gaussian() {
    // The response to a unit impulse away from the border is the product of three sampled,
    // normalised 1-D Gaussians (cut at ⌈3σ⌉ = 5 for σ = 1.5), computed here directly.
    let (n, sigma) = (15usize, 1.5f64);
    let mut field = vec![0.0f32; n * n * n];
    let c = 7usize;
    field[(c * n + c) * n + c] = 1.0;
    let smooth = gaussian_smooth(&field, [n; 3], sigma);
    let g = |d: i64| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp();
    let total: f64 = (-5..=5).map(g).sum();
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let d = [x, y, z].map(|v| v as i64 - c as i64);
                let expected = if d.iter().all(|v| v.abs() <= 5) {
                    d.iter().map(|&v| g(v) / total).product::<f64>()
                } else {
                    0.0
                };
                let found = f64::from(smooth[(z * n + y) * n + x]);
                assert!((found - expected).abs() < 1e-6, "{d:?}: {found} vs {expected}");
            }
        }
    }
    assert_eq!(gaussian_smooth(&field, [n; 3], 0.0), field);
}

#[test]
fn meshes_are_written_as_binary_stl_and_obj_that_read_back() {
    let shape = [12, 12, 12];
    let voxels = voxelised_ball(shape, &Affine::identity(), [5.5, 5.5, 5.5], 3.5, 1);
    let mesh = label_surface(
        &voxels,
        shape,
        1,
        &Affine::identity(),
        &SurfaceOptions::default(),
        &never(),
    )
    .expect("present")
    .expect("present");
    let folder = tempfile::tempdir().expect("temp dir");
    let stl = folder.path().join("ball.STL");
    write_mesh(&stl, &mesh).expect("stl");
    let bytes = std::fs::read(&stl).expect("read");
    let count = u32::from_le_bytes(bytes[80..84].try_into().expect("present")) as usize;
    assert_eq!(count, mesh.triangles.len());
    assert_eq!(bytes.len(), 84 + 50 * count);
    // The first triangle's first vertex, after its normal.
    let float = |at: usize| f32::from_le_bytes(bytes[at..at + 4].try_into().expect("present"));
    let first = mesh.positions[mesh.triangles[0][0] as usize];
    assert_eq!([float(96), float(100), float(104)], first);

    let obj = folder.path().join("ball.obj");
    write_mesh(&obj, &mesh).expect("obj");
    let text = std::fs::read_to_string(&obj).expect("read");
    let lines = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(lines("v "), mesh.positions.len());
    assert_eq!(lines("vn "), mesh.normals.len());
    assert_eq!(lines("f "), mesh.triangles.len());
    let error = write_mesh(&folder.path().join("ball.ply"), &mesh).expect_err("unknown format");
    assert!(error.contains("ball.ply") && error.contains(".stl"), "{error}");
}
